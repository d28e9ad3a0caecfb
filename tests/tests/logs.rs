//! kvserver's logs on real processes with `--log-format json`: every line is one JSON object;
//! role and leader changes are logged at INFO with the node's id and the term; a client
//! request's id is echoed in `x-request-id` and is on its log line; a failover's refusals (503)
//! are not logged at ERROR. Every wait polls with a deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use serde_json::{Value, json};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// Node `i`'s log, each line parsed; panics naming the first line that is not JSON.
fn json_lines(c: &Cluster, i: usize) -> Vec<Value> {
    c.log_of(i)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: a log line that is not JSON ({e}): {l}", c.id(i)))
        })
        .collect()
}

/// Whether `line` is a role change of node `id` to `role`.
fn is_role_change(line: &Value, id: &str, role: &str) -> bool {
    line["fields"]["message"] == "role changed"
        && line["fields"]["role"] == role
        && line["span"]["id"] == id
        && line["fields"]["term"].as_u64().is_some_and(|t| t > 0)
        && line["level"] == "INFO"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_node_term_and_request_id_and_a_failover_logs_no_error() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = [
        "--log-format",
        "json",
        "--election-timeout-ms",
        "300-600",
        "--heartbeat-ms",
        "50",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every request's line too (they are DEBUG).
    cfg.env = vec![(
        "RUST_LOG".into(),
        "info,raftkv_native::request_log=debug".into(),
    )];
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.expect("a leader");
    let leader_id = c.id(leader).to_string();
    poll_until(
        "the leader's role change in its log",
        LEADER_TIMEOUT,
        || {
            let c = &c;
            let id = leader_id.clone();
            async move {
                Ok(json_lines(c, leader)
                    .iter()
                    .any(|l| is_role_change(l, &id, "Leader"))
                    .then_some(()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(leader)));

    // A request id: the client's own is echoed and logged; without one, the node makes one.
    // Straight at the node, no redirect followed: the answer (and an id it makes) is its own
    // even if leadership moved meanwhile (a 307 then, not the leader's 404).
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("http://{}/kv/no-such-key", c.addr(leader));
    let resp = direct
        .get(&url)
        .header("x-request-id", "logs-test-7")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert!(status == 404 || status == 307, "{status}");
    assert_eq!(resp.headers()["x-request-id"], "logs-test-7");
    let resp = direct.get(&url).send().await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(made.starts_with(&format!("{leader_id}-")), "{made}");
    poll_until("the request's line in the log", LEADER_TIMEOUT, || {
        let c = &c;
        let leader_id = &leader_id;
        async move {
            Ok(json_lines(c, leader)
                .iter()
                .any(|l| {
                    l["fields"]["message"] == "request answered"
                        && l["fields"]["status"] == status
                        && l["fields"]["term"].as_u64().is_some_and(|t| t > 0)
                        && l["span"]["request_id"] == "logs-test-7"
                        && l["span"]["node"] == leader_id.as_str()
                        && l["span"]["path"] == "/kv/no-such-key"
                })
                .then_some(()))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(leader)));

    // A failover under writes: the leader dies, one of the others takes over.
    c.kill(leader).expect("kill the leader");
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let attempts = AtomicUsize::new(0);
    // Straight at node `i`, no redirect followed: the status is that node's own answer.
    let addrs: Vec<_> = (0..3).map(|i| c.addr(i)).collect();
    let put = |i: usize| {
        let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let req = direct
            .put(format!("http://{}/kv/failover", addrs[i]))
            // A client of its own per attempt: one session's writes go in sequence.
            .json(&json!({"value": "x", "client_id": format!("logs-test-{n}"), "seq": 1}));
        async move { req.send().await.map(|r| r.status().as_u16()) }
    };
    let new_leader = poll_until("a new leader taking writes", LEADER_TIMEOUT, || {
        let (survivors, put) = (&survivors, &put);
        async move {
            for &i in survivors {
                if let Ok(200) = put(i).await {
                    return Ok(Some(i));
                }
            }
            Ok(None)
        }
    })
    .await
    .expect("a new leader");
    let new_id = c.id(new_leader).to_string();
    assert!(
        json_lines(&c, new_leader)
            .iter()
            .any(|l| is_role_change(l, &new_id, "Leader")),
        "{new_id} logged no role change to Leader"
    );

    // Then the third node dies: the new leader has no quorum, steps down, and refuses every
    // write with 503 (a follower redirects to its old leader until its election timer fires).
    let last = (0..3)
        .find(|i| *i != leader && *i != new_leader)
        .expect("a third node");
    c.kill(last).expect("kill the third node");
    let refused = AtomicUsize::new(0);
    poll_until("writes refused with 503", LEADER_TIMEOUT, || {
        let (put, refused) = (&put, &refused);
        async move {
            if let Ok(503) = put(new_leader).await {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            Ok((refused.load(Ordering::Relaxed) >= 3).then_some(()))
        }
    })
    .await
    .expect("no quorum, no writes");
    let refused = refused.into_inner();
    let lines = json_lines(&c, new_leader);
    let logged_503 = lines
        .iter()
        .filter(|l| l["fields"]["status"] == 503 && l["level"] == "DEBUG")
        .count();
    assert!(
        logged_503 >= refused,
        "{refused} refusals, {logged_503} logged at DEBUG"
    );
    for &i in &survivors {
        let lines = json_lines(&c, i);
        let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
        assert!(
            errors.is_empty(),
            "{}: {} ERROR lines in a failover: {errors:#?}",
            c.id(i),
            errors.len()
        );
    }
    eprintln!("failover: {refused} writes refused with 503 and logged at DEBUG, no ERROR line");
}
