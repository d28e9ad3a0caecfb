//! The registry renders every family with its type, and the HTTP layer labels requests by
//! matched route.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use raftkv_core::NodeId;
use raftkv_core::raft::{Membership, Role, SnapshotStats, Status};
use tower::ServiceExt;

use super::*;
use crate::driver::NodeView;

fn view() -> NodeView {
    NodeView {
        status: Status {
            id: NodeId::from("n1"),
            role: Role::Leader,
            term: 7,
            voted_for: None,
            leader_id: Some(NodeId::from("n1")),
            commit_index: 42,
            last_applied: 41,
            last_log_index: 43,
            last_log_term: 7,
            snapshot_index: 0,
            election_timer_start: 0,
            election_deadline: 0,
            membership: Membership::default(),
            transfer_to: None,
            lease_until: None,
        },
        stopped: false,
    }
}

/// `# TYPE <name> <type>` lines of `text`, by name.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_registry_renders_every_family_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    std::fs::write(dir.path().join("log").join("1.seg"), [0u8; 100]).unwrap();
    std::fs::write(dir.path().join("snapshot"), [0u8; 7]).unwrap();
    let inst = Instruments::default();
    let sent = SendCounters::default();
    let listener = Arc::new(ListenerStats::default());
    let metrics = Metrics::new(
        &inst,
        Sources {
            view: Arc::new(view),
            sent,
            listener: Some(listener),
            data_dir: dir.path().to_path_buf(),
        },
    );
    inst.raft.leader_changes.inc();
    inst.raft.proposals_pending.inc();
    inst.raft.turn_seconds.observe(0.002);
    inst.fsync_seconds.observe(0.003);
    inst.raft
        .round_trip_seconds
        .get_or_create(&[("To", "n2".to_string())])
        .observe(0.0005);
    // A family without series renders nothing at all: give the HTTP ones one each.
    let route = |n: &'static str| (n, "/kv/{*key}".to_string());
    inst.http
        .requests
        .get_or_create(&[
            ("method", "PUT".to_string()),
            route("route"),
            ("status", "200".to_string()),
        ])
        .inc();
    inst.http
        .duration_seconds
        .get_or_create(&[("method", "PUT".to_string()), route("route")])
        .observe(0.001);
    inst.raft.snapshots.set(&SnapshotStats {
        receptions_completed: 2,
        ..SnapshotStats::default()
    });
    let text = metrics.render().unwrap();
    let types = types(&text);
    let expect = [
        ("etcd_server_has_leader", "gauge"),
        ("etcd_server_is_leader", "gauge"),
        ("etcd_server_leader_changes_seen_total", "counter"),
        ("etcd_server_proposals_committed_total", "gauge"),
        ("etcd_server_proposals_applied_total", "gauge"),
        ("etcd_server_proposals_pending", "gauge"),
        ("etcd_server_proposals_failed_total", "counter"),
        ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
        ("etcd_network_peer_sent_bytes_total", "counter"),
        ("etcd_network_peer_received_bytes_total", "counter"),
        ("etcd_network_peer_sent_failures_total", "counter"),
        ("etcd_network_peer_round_trip_time_seconds", "histogram"),
        ("etcd_debug_mvcc_db_total_size_in_bytes", "gauge"),
        ("raftkv_raft_term", "gauge"),
        ("raftkv_raft_commit_index", "gauge"),
        ("raftkv_raft_applied_index", "gauge"),
        ("raftkv_driver_turn_duration_seconds", "histogram"),
        ("raftkv_disk_log_size_bytes", "gauge"),
        ("raftkv_disk_snapshot_size_bytes", "gauge"),
        ("raftkv_snapshot_installed_total", "counter"),
        ("raftkv_snapshot_sends_started_total", "counter"),
        ("raftkv_network_peer_queue_dropped_total", "counter"),
        ("raftkv_peer_listener_accepted_connections_total", "counter"),
        ("raftkv_http_requests_total", "counter"),
        ("raftkv_http_request_duration_seconds", "histogram"),
    ];
    for (name, ty) in expect {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(ty),
            "{name} in:\n{text}"
        );
    }
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(has("etcd_server_is_leader 1"), "{text}");
    assert!(has("raftkv_raft_term 7"), "{text}");
    assert!(has("etcd_server_proposals_committed_total 42"), "{text}");
    assert!(has("etcd_server_leader_changes_seen_total 1"), "{text}");
    assert!(has("raftkv_snapshot_installed_total 2"), "{text}");
    assert!(has("raftkv_disk_log_size_bytes 100"), "{text}");
    assert!(has("raftkv_disk_snapshot_size_bytes 7"), "{text}");
    assert!(
        has("etcd_disk_wal_fsync_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        has("etcd_network_peer_round_trip_time_seconds_count{To=\"n2\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn requests_are_counted_by_matched_route_never_by_raw_path() {
    let inst = HttpInstruments::default();
    let app = Router::new()
        .route("/kv/{*key}", get(|| async { "v" }))
        .layer(axum::middleware::from_fn_with_state(
            inst.clone(),
            http::track,
        ));
    for path in ["/kv/a", "/kv/b/c", "/nowhere"] {
        let req = axum::http::Request::get(path).body(Body::empty()).unwrap();
        app.clone().oneshot(req).await.unwrap();
    }
    let mut registry = Registry::default();
    http::register(&mut registry, &inst);
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("raftkv_http_requests_total{"))
        .collect();
    assert_eq!(series.len(), 2, "{text}");
    assert!(
        series.iter().any(|l| l.contains("route=\"/kv/{*key}\"")
            && l.contains("status=\"200\"")
            && l.ends_with(" 2")),
        "{text}"
    );
    assert!(
        series.iter().any(|l| l.contains("route=\"unmatched\"")
            && l.contains("status=\"404\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    assert!(!text.contains("/kv/a"), "{text}");
}
