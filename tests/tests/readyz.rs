//! `GET /readyz` on real kvserver processes: every node of a healthy cluster is ready; a
//! follower cut off from the others stops being ready, with the reason, while the rest stay
//! ready; healed, it is ready again. Every wait polls with a deadline.

use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig, Reply};
use reqwest::Method;

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

async fn readyz(c: &Cluster, i: usize) -> Result<Reply, String> {
    c.client(i).request(Method::GET, "/readyz", None).await
}

/// Waits until node `i`'s /readyz answers `status`; returns that answer.
async fn wait_readyz(c: &Cluster, i: usize, status: u16) -> Reply {
    let what = format!("{} /readyz to answer {status}", c.id(i));
    poll_until(&what, CONVERGE_TIMEOUT, || async move {
        let r = readyz(c, i).await?;
        Ok((r.status == status).then_some(r))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(i)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_follower_is_not_ready_until_healed() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.expect("a leader");
    for i in 0..3 {
        let r = wait_readyz(&c, i, 200).await;
        assert_eq!(r.body["ok"], true, "{r:?}");
    }
    assert!(c.client(leader).put("ready", "1").await.unwrap().ok());

    let f = (0..3).find(|i| *i != leader).expect("a follower");
    c.isolate(f);
    let r = wait_readyz(&c, f, 503).await;
    assert_eq!(r.body["ok"], false, "{r:?}");
    assert_eq!(r.body["err_code"], "not_ready", "{r:?}");
    let reason = r.body["err_msg"].as_str().unwrap_or_default();
    eprintln!("{} cut off: /readyz says {reason:?}", c.id(f));
    assert!(
        reason.starts_with("no leader known") || reason.starts_with("leader not heard from for"),
        "{reason}"
    );
    // The other two still make a quorum: both stay ready (the leader keeps its lease).
    for i in (0..3).filter(|i| *i != f) {
        let r = readyz(&c, i).await.unwrap();
        assert_eq!(
            r.status,
            200,
            "{} while {} is cut off: {r:?}",
            c.id(i),
            c.id(f)
        );
    }

    c.heal_all();
    wait_readyz(&c, f, 200).await;
    // Ready again means caught up: it holds the write made before it was cut off.
    assert_eq!(
        c.client(f).get("ready").await.unwrap().as_deref(),
        Some("1")
    );
}
