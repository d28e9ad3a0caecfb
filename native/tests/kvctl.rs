//! The kvctl binary against an in-process single-node server: output, exit codes, deduplication
//! of a forced (client_id, seq), failover to the next endpoint, and 307 redirects.

mod kv_support;

use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::any;
use kv_support::TestServer;
use serde_json::{Value, json};

/// Runs kvctl with `args` against `endpoints`.
async fn kvctl(endpoints: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kvctl"))
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .output()
        .await
        .expect("kvctl runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "kvctl failed: {}", stderr(o));
}

#[tokio::test]
async fn kvctl_put_then_get_prints_the_value() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let put = kvctl(&ep, &["put", "dir/ключ", "hello world"]).await;
    assert_ok(&put);
    assert_eq!(stdout(&put), "OK\n");
    let get = kvctl(&ep, &["get", "dir/ключ"]).await;
    assert_ok(&get);
    assert_eq!(stdout(&get), "hello world\n");

    let json = kvctl(&ep, &["--json", "get", "dir/ключ"]).await;
    assert_ok(&json);
    let body: Value = serde_json::from_str(&stdout(&json)).expect("--json prints JSON");
    assert_eq!(body, json!({"ok": true, "value": "hello world"}));
}

#[tokio::test]
async fn kvctl_retried_seq_is_deduplicated() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let first = kvctl(
        &ep,
        &["put", "k", "v1", "--client-id", "alice", "--seq", "1"],
    )
    .await;
    assert_ok(&first);
    // The same (client_id, seq) again, with another value: answered from the dedupe table.
    let retry = kvctl(
        &ep,
        &["put", "k", "v2", "--client-id", "alice", "--seq", "1"],
    )
    .await;
    assert_ok(&retry);
    assert_eq!(stdout(&retry), "OK\n");
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v1\n");

    // A new seq is a new write.
    let next = kvctl(
        &ep,
        &["put", "k", "v3", "--client-id", "alice", "--seq", "2"],
    )
    .await;
    assert_ok(&next);
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v3\n");

    // Without --seq a fixed client id still makes new writes (seq follows the clock).
    assert_ok(&kvctl(&ep, &["put", "k", "v4", "--client-id", "alice"]).await);
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v4\n");
}

#[tokio::test]
async fn kvctl_batch_commands_and_status() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let mput = kvctl(&ep, &["mput", "a=1", "b=x=y", "c="]).await;
    assert_ok(&mput);
    let mget = kvctl(&ep, &["mget", "a", "b", "c", "zzz"]).await;
    assert_ok(&mget);
    assert_eq!(stdout(&mget), "a = 1\nb = x=y\nc = \nzzz (not found)\n");

    let mdel = kvctl(&ep, &["mdelete", "a", "zzz"]).await;
    assert_eq!(stdout(&mdel), "deleted 1\n");
    let del = kvctl(&ep, &["delete", "b"]).await;
    assert_eq!(stdout(&del), "deleted 1\n");

    let cas = kvctl(&ep, &["cas", "c", "", "new"]).await;
    assert_ok(&cas);
    assert_eq!(stdout(&kvctl(&ep, &["get", "c"]).await), "new\n");

    let status = kvctl(&ep, &["status"]).await;
    assert_ok(&status);
    let out = stdout(&status);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("ENDPOINT"), "{out}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    // ENDPOINT ID ROLE TERM LEADER COMMIT APPLIED LAST_LOG SNAPSHOT
    // (the leader's no-op and four writes)
    assert_eq!(
        row,
        [ep.as_str(), "n1", "leader", "1", "n1", "5", "5", "5", "0"]
    );
}

#[tokio::test]
async fn kvctl_errors_exit_nonzero_with_the_server_message() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let missing = kvctl(&ep, &["get", "nope"]).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("not_found"),
        "{}",
        stderr(&missing)
    );
    assert!(
        stderr(&missing).contains("\"nope\" not found"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(stdout(&missing), "");

    assert_ok(&kvctl(&ep, &["put", "k", "v"]).await);
    let cas = kvctl(&ep, &["--json", "cas", "k", "wrong", "x"]).await;
    assert!(!cas.status.success());
    assert!(stderr(&cas).contains("cas_failed"), "{}", stderr(&cas));
    // --json still prints the server's body.
    let body: Value = serde_json::from_str(&stdout(&cas)).expect("JSON body");
    assert_eq!(body["err_code"], "cas_failed");

    let bad_pair = kvctl(&ep, &["mput", "novalue"]).await;
    assert!(!bad_pair.status.success());
    assert!(
        stderr(&bad_pair).contains("KEY=VALUE"),
        "{}",
        stderr(&bad_pair)
    );
    assert_eq!(t.entries().len(), 1);
}

#[tokio::test]
async fn kvctl_member_commands_print_the_configuration_and_the_refusals() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let list = kvctl(&ep, &["member", "list"]).await;
    assert_ok(&list);
    let out = stdout(&list);
    assert!(
        out.starts_with(&format!(
            "leader n1 at {ep}, term 1\nvoters n1; learners none\n"
        )),
        "{out}"
    );
    assert!(out.contains("ID  ADDR"), "{out}");

    let add = kvctl(&ep, &["member", "add-learner", "n2", "127.0.0.1:9"]).await;
    assert_ok(&add);
    let out = stdout(&add);
    assert!(
        out.starts_with("added learner n2 at 127.0.0.1:9 (configuration entry "),
        "{out}"
    );
    assert!(out.contains("voters n1; learners n2\n"), "{out}");

    // Refusals exit 1 with the server's code and message; --json prints the body too.
    for (args, code) in [
        (
            &["member", "promote", "n9"][..],
            "unknown_node: unknown node n9",
        ),
        (&["member", "remove", "n1"], "last_voter"),
        (
            &["member", "add-learner", "n2", "127.0.0.1:9"],
            "already_member",
        ),
        (
            &["member", "add-learner", "n3", "no port"],
            "bad_request: addr: expected host:port",
        ),
    ] {
        let o = kvctl(&ep, args).await;
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains(&format!("kvctl: {code}")),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let json = kvctl(&ep, &["--json", "member", "list"]).await;
    assert_ok(&json);
    let body: Value = serde_json::from_str(&stdout(&json)).expect("--json prints JSON");
    assert_eq!(
        (&body["voters"], &body["learners"]),
        (&json!(["n1"]), &json!(["n2"]))
    );
    assert_eq!(body["members"][1]["addr"], "127.0.0.1:9");
}

/// An address on which nothing listens: bind a port, then free it.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr.to_string()
}

#[tokio::test]
async fn kvctl_fails_over_to_the_next_endpoint() {
    let t = TestServer::start().await;
    let eps = format!("{},{}", dead_endpoint(), t.endpoint());
    assert_ok(&kvctl(&eps, &["put", "k", "v", "--client-id", "bob", "--seq", "1"]).await);
    assert_eq!(stdout(&kvctl(&eps, &["get", "k"]).await), "v\n");
    // The write reached the server once, with the seq it was given.
    // (Entry 1 is the leader's no-op.)
    assert_eq!(t.server.service().status().raft.last_applied, 2);

    // Nothing listens: after its retry window kvctl gives up with the transport error.
    let none = kvctl(&dead_endpoint(), &["--retry-ms", "200", "get", "k"]).await;
    assert!(!none.status.success());
    assert!(
        stderr(&none).contains("no endpoint reachable"),
        "{}",
        stderr(&none)
    );
}

/// A stand-in node in the middle of an election: answers the first `leaderless` requests with
/// 503 `not_leader` and no leader hint, then 200 `{"ok":true}`; records the bodies it got.
async fn electing_node(leaderless: usize) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    refusing_node(leaderless, "not_leader", None).await
}

/// A stand-in node that answers the first `refusals` requests with 503 `code` (and a
/// `Retry-After` when given), then 200 `{"ok":true}`; records the bodies it got.
async fn refusing_node(
    refusals: usize,
    code: &'static str,
    retry_after: Option<&'static str>,
) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let app = Router::new().fallback(any(move |body: Bytes| {
        let seen = Arc::clone(&seen2);
        async move {
            let mut seen = seen.lock().expect("lock");
            seen.push(body);
            if seen.len() <= refusals {
                let body = json!({"ok": false, "err_code": code,
                    "err_msg": "not now", "leader_id": "", "leader_addr": ""});
                let mut resp = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                if let Some(secs) = retry_after {
                    let v = header::HeaderValue::from_static(secs);
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                resp
            } else {
                (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
            }
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// Asserts that every body a stand-in node got carries client `client_id` and `seq`: the
/// retries re-sent the same write.
#[track_caller]
fn assert_same_write(bodies: &[Bytes], client_id: &str, seq: u64) {
    for b in bodies {
        let body: Value = serde_json::from_slice(b).expect("JSON body");
        assert_eq!(
            (&body["client_id"], &body["seq"]),
            (&json!(client_id), &json!(seq))
        );
    }
}

#[tokio::test]
async fn kvctl_retries_through_an_election_with_the_same_seq() {
    let (node, seen) = electing_node(3).await;
    let put = kvctl(
        &node,
        &["put", "k", "v", "--client-id", "ann", "--seq", "9"],
    )
    .await;
    assert_ok(&put);
    assert_eq!(stdout(&put), "OK\n");
    let bodies = seen.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 4, "three leaderless answers, then the write");
    assert_same_write(&bodies, "ann", 9);

    // With retries off, the first leaderless answer is final.
    let (node, seen) = electing_node(3).await;
    let put = kvctl(&node, &["--retry-ms", "0", "put", "k", "v"]).await;
    assert!(!put.status.success());
    assert!(stderr(&put).contains("not_leader"), "{}", stderr(&put));
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn kvctl_waits_out_an_overloaded_leader_for_its_retry_after() {
    let (node, seen) = refusing_node(1, "overloaded", Some("1")).await;
    let started = std::time::Instant::now();
    let put = kvctl(
        &node,
        &["put", "k", "v", "--client-id", "ann", "--seq", "4"],
    )
    .await;
    assert_ok(&put);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "retried before the Retry-After"
    );
    let bodies = seen.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2, "one overloaded answer, then the write");
    assert_same_write(&bodies, "ann", 4);

    // A Retry-After beyond the retry window: the overloaded answer is final at once.
    let (node, seen) = refusing_node(1, "overloaded", Some("1")).await;
    let put = kvctl(&node, &["--retry-ms", "500", "put", "k", "v"]).await;
    assert!(!put.status.success());
    assert!(stderr(&put).contains("overloaded"), "{}", stderr(&put));
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

/// A stand-in follower: answers every request with a 307 towards `leader` (itself when `None`),
/// either with a `Location` header or only with the leader hint in the body, and records the
/// bodies it got.
async fn fake_follower(
    leader: Option<String>,
    with_location: bool,
) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let leader = leader.unwrap_or_else(|| addr.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let app = Router::new().fallback(any(move |uri: axum::http::Uri, body: Bytes| {
        let seen = Arc::clone(&seen2);
        let leader = leader.clone();
        async move {
            seen.lock().expect("lock").push(body);
            let hint = json!({"ok": false, "err_code": "not_leader", "err_msg": "not the leader",
                "leader_id": "n1", "leader_addr": leader});
            let mut resp = (StatusCode::TEMPORARY_REDIRECT, axum::Json(hint)).into_response();
            if with_location {
                let loc = format!("http://{leader}{}", uri.path());
                if let Ok(v) = loc.parse() {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
            }
            resp
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test]
async fn kvctl_follows_307_to_the_leader_with_the_same_body() {
    let t = TestServer::start().await;
    for (i, with_location) in [true, false].into_iter().enumerate() {
        let (follower, seen) = fake_follower(Some(t.endpoint()), with_location).await;
        let seq = (i + 1).to_string();
        let key = format!("k/{i}");
        let put = kvctl(
            &follower,
            &["put", &key, "v", "--client-id", "eve", "--seq", &seq],
        )
        .await;
        assert_ok(&put);
        assert_eq!(t.entries().get(&key).map(String::as_str), Some("v"));
        // The follower saw the same (client_id, seq) that the leader applied.
        let bodies = seen.lock().expect("lock").clone();
        assert_eq!(bodies.len(), 1);
        let body: Value = serde_json::from_slice(&bodies[0]).expect("JSON body");
        assert_eq!(body["client_id"], "eve");
        assert_eq!(body["seq"], i as u64 + 1);
    }

    // A redirect loop ends with an error after a bounded number of hops.
    let (looping, seen) = fake_follower(None, true).await;
    let put = kvctl(&looping, &["put", "k", "v"]).await;
    assert!(!put.status.success());
    assert!(stderr(&put).contains("redirects"), "{}", stderr(&put));
    assert_eq!(
        seen.lock().expect("lock").len(),
        1 + raftkv_native::client::MAX_REDIRECTS
    );
}

#[tokio::test]
async fn kvctl_bench_runs_a_counted_mix_and_reports() {
    let t = TestServer::start().await;
    let out = kvctl(
        &t.endpoint(),
        &[
            "bench",
            "--concurrency",
            "4",
            "--count",
            "200",
            "--mix",
            "put=50,get=30,cas=20",
            "--keys",
            "10",
            "--value-size",
            "8",
        ],
    )
    .await;
    assert_ok(&out);
    let report = stdout(&out);
    assert!(report.contains("ops: 200 in"), "{report}");
    assert!(report.contains("latency (ms): p50"), "{report}");
    assert!(report.contains("p999"), "{report}");
    // Every op was answered: each worker's CAS keys are its own, so CAS succeeds too.
    assert!(report.contains("errors: none"), "{report}");
    assert!(!report.contains("cas_failed"), "{report}");
    // The puts are in the store.
    assert!(t.entries().keys().any(|k| k.starts_with("bench-")));

    // Gets read at readindex unless told otherwise; each consistency is answered.
    assert!(report.contains("readindex gets"), "{report}");
    for c in ["stale", "lease"] {
        let args = [
            "bench",
            "--count",
            "40",
            "--mix",
            "get=1",
            "--consistency",
            c,
        ];
        let out = kvctl(&t.endpoint(), &args).await;
        assert_ok(&out);
        let report = stdout(&out);
        assert!(report.contains(&format!("{c} gets")), "{report}");
        assert!(report.contains("errors: none"), "{report}");
    }

    let bad = kvctl(&t.endpoint(), &["bench", "--mix", "scan=1"]).await;
    assert!(!bad.status.success());
}

#[tokio::test]
async fn kvctl_bench_verify_reads_every_acknowledged_put_back() {
    let args = [
        "bench",
        "--verify",
        "--concurrency",
        "3",
        "--count",
        "150",
        "--mix",
        "put=70,get=30",
        "--keys",
        "20",
    ];
    let t = TestServer::start().await;
    let out = kvctl(&t.endpoint(), &args).await;
    assert_ok(&out);
    let report = stdout(&out);
    assert!(report.contains("lost 0, unreadable 0"), "{report}");
    let verify = report.lines().find(|l| l.starts_with("verify: ")).unwrap();
    let keys: u64 = verify["verify: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(keys > 20, "three workers with 20 keys each: {verify}");

    // A "server" that acknowledges every put and forgets it: verify must say so and fail.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forgetful = listener.local_addr().unwrap().to_string();
    let app = Router::new().fallback(any(|method: axum::http::Method| async move {
        if method == axum::http::Method::GET {
            let body = json!({"ok": false, "err_code": "not_found", "err_msg": "not found"});
            (StatusCode::NOT_FOUND, axum::Json(body))
        } else {
            (StatusCode::OK, axum::Json(json!({"ok": true})))
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = kvctl(&forgetful, &args).await;
    assert!(
        !out.status.success(),
        "verify passed a store that loses writes"
    );
    let err = stderr(&out);
    assert!(err.contains("last acknowledged"), "{err}");
    assert!(!err.contains("lost 0,"), "{err}");
}

#[tokio::test]
async fn kvctl_json_writes_print_their_index_and_get_min_index_reads_at_it() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    let put = kvctl(&ep, &["--json", "put", "k", "v"]).await;
    assert_ok(&put);
    let body: Value = serde_json::from_str(&stdout(&put)).expect("--json prints JSON");
    let index = body["index"].as_u64().expect("the write's index");
    assert_eq!(body, json!({"ok": true, "index": index}));
    let cas = kvctl(&ep, &["--json", "cas", "k", "v", "w"]).await;
    let body: Value = serde_json::from_str(&stdout(&cas)).expect("JSON");
    assert_eq!(body["index"], index + 1);
    let at = (index + 1).to_string();
    for consistency in ["stale", "readindex", "lease"] {
        let get = kvctl(
            &ep,
            &["get", "k", "--consistency", consistency, "--min-index", &at],
        )
        .await;
        assert_ok(&get);
        assert_eq!(stdout(&get), "w\n", "{consistency}");
    }
    let mget = kvctl(&ep, &["mget", "k", "--min-index", &at]).await;
    assert_eq!(stdout(&mget), "k = w\n");
    // An index that will not be applied: the server's not_caught_up, within kvctl's timeout.
    let far = kvctl(
        &ep,
        &[
            "--retry-ms",
            "0",
            "--timeout-ms",
            "1000",
            "get",
            "k",
            "--min-index",
            "999999",
        ],
    )
    .await;
    assert!(!far.status.success());
    assert!(stderr(&far).contains("not_caught_up"), "{}", stderr(&far));
}

#[tokio::test]
async fn kvctl_retries_a_transferring_leader_with_the_same_seq_without_waiting_whole_seconds() {
    let (node, seen) = refusing_node(3, "transferring", Some("1")).await;
    let started = std::time::Instant::now();
    let put = kvctl(
        &node,
        &["put", "k", "v", "--client-id", "ann", "--seq", "5"],
    )
    .await;
    assert_ok(&put);
    // Three refusals, each retried after kvctl's own short pause, not the Retry-After second.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let bodies = seen.lock().expect("lock").clone();
    assert_eq!(
        bodies.len(),
        4,
        "three transferring answers, then the write"
    );
    assert_same_write(&bodies, "ann", 5);
    // Without a retry window the refusal is final.
    let (node, _) = refusing_node(1, "transferring", Some("1")).await;
    let put = kvctl(&node, &["--retry-ms", "0", "put", "k", "v"]).await;
    assert!(!put.status.success());
    assert!(stderr(&put).contains("transferring"), "{}", stderr(&put));
}

#[tokio::test]
async fn kvctl_leader_transfer_reports_the_refusal_or_the_leader() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    // One voter: nobody to hand over to.
    let out = kvctl(&ep, &["leader", "transfer"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no_candidate"), "{}", stderr(&out));
    let out = kvctl(&ep, &["leader", "transfer", "n1"]).await;
    assert_ok(&out);
    assert_eq!(stdout(&out), format!("n1 leads ({ep})\n"));
    let out = kvctl(&ep, &["--json", "leader", "transfer", "n1"]).await;
    let body: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(body["leader_id"], "n1");
}

#[tokio::test]
async fn kvctl_starts_a_new_session_when_the_servers_forgot_it() {
    let t = TestServer::start_with(|c| c.session_limits.ttl = 300).await;
    let ep = t.endpoint();
    // A new --client-id without --seq: the clock seq is refused, seq 1 starts the session.
    assert_ok(&kvctl(&ep, &["put", "k", "v1", "--client-id", "bob"]).await);
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v1\n");
    // The session idles past the ttl (another write moves the log time on) and is dropped;
    // kvctl starts it again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_ok(&kvctl(&ep, &["put", "other", "x"]).await);
    assert_ok(&kvctl(&ep, &["put", "k", "v2", "--client-id", "bob"]).await);
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v2\n");
    // An explicit --seq above 1 for an unknown session is refused with a clear message.
    let out = kvctl(
        &ep,
        &["put", "k", "v3", "--client-id", "carol", "--seq", "5"],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("session_expired"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--seq 1"), "{}", stderr(&out));
    assert_eq!(stdout(&kvctl(&ep, &["get", "k"]).await), "v2\n");
}

#[tokio::test]
async fn kvctl_bench_recovers_from_sessions_dropped_over_the_cap() {
    // One session kept for four workers: each one's next write finds its session gone.
    let t = TestServer::start_with(|c| c.session_limits.max = 1).await;
    let out = kvctl(
        &t.endpoint(),
        &[
            "bench",
            "--concurrency",
            "4",
            "--count",
            "100",
            "--mix",
            "put=100",
            "--keys",
            "5",
            "--value-size",
            "8",
            "--verify",
        ],
    )
    .await;
    assert_ok(&out);
    let report = stdout(&out);
    assert!(report.contains("ops: 100 in"), "{report}");
    assert!(report.contains("errors: none"), "{report}");
    assert!(report.contains("lost 0"), "{report}");
}

#[tokio::test]
async fn kvctl_get_prefix_and_scan_follow_every_page_or_print_one() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    // 250 keys: more than two pages of the default 100.
    let mut args = vec!["mput".to_string()];
    for i in 0..250 {
        args.push(format!("p{i:03}=v{i}"));
    }
    args.push("q=x".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_ok(&kvctl(&ep, &args).await);

    let one = kvctl(&ep, &["get", "--prefix", "p", "--limit", "3"]).await;
    assert_ok(&one);
    assert_eq!(
        stdout(&one),
        "p000 = v0\np001 = v1\np002 = v2\n(more: continue at \"p003\")\n"
    );
    let all = kvctl(&ep, &["get", "--prefix", "p"]).await;
    assert_ok(&all);
    let want: String = (0..250).map(|i| format!("p{i:03} = v{i}\n")).collect();
    assert_eq!(stdout(&all), want);

    let scan = kvctl(&ep, &["scan", "p248", "r"]).await;
    assert_ok(&scan);
    assert_eq!(stdout(&scan), "p248 = v248\np249 = v249\nq = x\n");
    let json = kvctl(&ep, &["--json", "scan", "p", "--limit", "20"]).await;
    assert_ok(&json);
    let page: Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(page["kvs"].as_array().unwrap().len(), 20);
    assert_eq!(page["more"], json!(true));
    assert_eq!(page["next"], json!("p020"));
}

/// Runs kvctl with `args` and the variables `vars` (no --endpoints of its own).
async fn kvctl_env(vars: &[(&str, &str)], args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kvctl"))
        .env_remove("RAFTKV_OUTPUT")
        .env_remove("RAFTKV_ENDPOINTS")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .await
        .expect("kvctl runs")
}

#[tokio::test]
async fn kvctl_takes_endpoints_and_output_from_variables_and_prints_tables() {
    let t = TestServer::start().await;
    let ep = t.endpoint();
    assert_ok(&kvctl(&ep, &["mput", "a=1", "bb=22"]).await);

    let vars = [("RAFTKV_ENDPOINTS", ep.as_str()), ("RAFTKV_OUTPUT", "json")];
    let get = kvctl_env(&vars, &["get", "a"]).await;
    assert_ok(&get);
    let body: Value = serde_json::from_str(&stdout(&get)).expect("RAFTKV_OUTPUT=json");
    assert_eq!(body, json!({"ok": true, "value": "1"}));
    // The flags win over the variables.
    let dead = dead_endpoint();
    let vars = [
        ("RAFTKV_ENDPOINTS", dead.as_str()),
        ("RAFTKV_OUTPUT", "json"),
    ];
    let get = kvctl_env(&vars, &["--endpoints", &ep, "--output", "text", "get", "a"]).await;
    assert_ok(&get);
    assert_eq!(stdout(&get), "1\n");

    let scan = kvctl(&ep, &["--output", "table", "scan", "a"]).await;
    assert_ok(&scan);
    assert_eq!(stdout(&scan), "KEY  VALUE\na    1\nbb   22\n");
    let one = kvctl(
        &ep,
        &["get", "--prefix", "", "--limit", "1", "--output", "table"],
    )
    .await;
    assert_eq!(
        stdout(&one),
        "KEY  VALUE\na    1\n(more: continue at \"bb\")\n"
    );
    let mget = kvctl(&ep, &["--output", "table", "mget", "bb", "zz"]).await;
    assert_eq!(stdout(&mget), "KEY  VALUE\nbb   22\nzz   (not found)\n");
    let status = kvctl(&ep, &["--output", "table", "status"]).await;
    assert!(
        stdout(&status).starts_with("ENDPOINT"),
        "{}",
        stdout(&status)
    );
    for args in [&["--output", "json", "status"][..], &["--json", "status"]] {
        let status = kvctl(&ep, args).await;
        let body: Value = serde_json::from_str(stdout(&status).trim()).expect("JSON status");
        assert_eq!(body["ok"], json!(true));
    }

    // A bad value from a variable is refused naming it.
    let bad = kvctl_env(
        &[("RAFTKV_ENDPOINTS", ep.as_str()), ("RAFTKV_OUTPUT", "yaml")],
        &["status"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).starts_with("kvctl: RAFTKV_OUTPUT: invalid value 'yaml'"),
        "{}",
        stderr(&bad)
    );
}
