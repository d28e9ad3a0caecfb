//! The driver under the KV service (and, for health checks, the HTTP API), over in-memory
//! stores: what a request sees of group commit, of a slow fsync on a lone node and of a storage failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftkv_core::kvraft::{LogEntry, MemLogStore, Stores};
use raftkv_core::raft::{Config, Index, LogStore, Role, SnapshotMeta, StorageError, Term};
use raftkv_core::{ApplyResult, Command, NodeId, ReadPolicy, WriteMode};
use tower::ServiceExt;

use crate::dkv::{DistributedKv, DkvConfig, WriteReply};
use crate::driver::{DriverConfig, DriverThread, RaftNode, start};
use crate::node_port::NodeError;
use crate::peers::PeerTable;
use crate::shared_sm::SharedSm;
use crate::transport::{HttpTransport, StaticPeers, TransportConfig};

/// An in-memory log whose `sync` runs a hook the test controls: a dying or slow disk.
struct HookedLog<F> {
    inner: MemLogStore,
    on_sync: F,
}

impl<F: FnMut() -> Result<(), StorageError> + Send> LogStore<Command> for HookedLog<F> {
    fn base(&self) -> SnapshotMeta {
        self.inner.base()
    }
    fn last_index(&self) -> Index {
        self.inner.last_index()
    }
    fn term_at(&self, index: Index) -> Result<Term, StorageError> {
        self.inner.term_at(index)
    }
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.inner.append(entries)
    }
    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.read_range(lo, hi)
    }
    fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
        self.inner.delete_from(index)
    }
    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        self.inner.truncate_prefix(upto, term)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        (self.on_sync)()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_reads_never_see_a_write_before_its_fsync() {
    let hold = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let mut stores = Stores::in_memory();
    // Once `hold` is set, the next sync reports that it started and waits to be released:
    // a slow fsync the test controls.
    stores.log = Box::new(HookedLog {
        inner: MemLogStore::default(),
        on_sync: {
            let hold = Arc::clone(&hold);
            move || {
                if hold.swap(false, Ordering::Relaxed) {
                    let _ = entered_tx.send(());
                    let _ = release_rx.recv();
                }
                Ok(())
            }
        },
    });
    let (_node, thread, dkv) = single_node(stores);
    dkv.write(Command::put("a", "1").with_client("c", 1))
        .await
        .unwrap();
    hold.store(true, Ordering::Relaxed);
    let writer = tokio::spawn({
        let dkv = Arc::clone(&dkv);
        async move { dkv.write(Command::put("a", "2").with_client("c", 2)).await }
    });
    // The driver has appended "2" and is now in its fsync: nothing is committed or applied
    // before the fsync returns (a lone leader counts itself only for what is durable).
    tokio::task::spawn_blocking(move || entered.recv())
        .await
        .unwrap()
        .unwrap();
    // A read meanwhile is answered at once (no gate), and from before the write.
    let during = tokio::time::timeout(
        Duration::from_secs(5),
        dkv.get("a", Some(ReadPolicy::Stale)),
    )
    .await
    .expect("a read waited for the fsync")
    .unwrap();
    assert_eq!(
        during.value.as_deref(),
        Some("1"),
        "a write seen before its fsync"
    );
    assert!(
        !writer.is_finished(),
        "a write acknowledged before its fsync"
    );
    release.send(()).unwrap();
    assert!(writer.await.unwrap().is_ok());
    let after = dkv.get("a", Some(ReadPolicy::Stale)).await.unwrap();
    assert_eq!(after.value.as_deref(), Some("2"));
    thread.stop().await;
}

fn single_node(stores: Stores) -> (RaftNode, DriverThread, Arc<DistributedKv>) {
    single_node_with(stores, |_| {})
}

/// A lone node `n1` (at 127.0.0.1:1) with fast timers over `stores`, its configuration
/// adjusted by `tune`, and the KV service over it.
pub(crate) fn single_node_with(
    stores: Stores,
    tune: impl FnOnce(&mut Config),
) -> (RaftNode, DriverThread, Arc<DistributedKv>) {
    let id = NodeId::from("n1");
    let addrs = BTreeMap::from([(id.clone(), "127.0.0.1:1".to_string())]);
    let peers = Arc::new(PeerTable::new(id.clone(), addrs, None));
    let mut raft = Config::new(id.clone(), vec![id.clone()]);
    raft.election_timeout_min = 20;
    raft.election_timeout_max = 40;
    raft.heartbeat_interval = 10;
    tune(&mut raft);
    let sm = SharedSm::new();
    let (_inbox_tx, inbox_rx) = crate::transport::inbox::inbox(8, 1 << 20);
    let transport = HttpTransport::new(
        id.clone(),
        StaticPeers::default(),
        TransportConfig::default(),
    )
    .unwrap();
    let cfg = DriverConfig {
        raft,
        peers: Arc::clone(&peers),
        propose_timeout: Duration::from_secs(5),
        transfer_timeout: Duration::from_secs(5),
        metrics: Default::default(),
    };
    let (node, thread) = start(
        cfg,
        stores,
        sm.clone(),
        inbox_rx,
        crate::transport::PeerTransport::Http(transport),
    )
    .unwrap();
    let dkv = DistributedKv::new(
        Arc::new(node.clone()),
        sm,
        DkvConfig {
            id,
            peers,
            read_policy: ReadPolicy::ReadIndex,
            write_mode: WriteMode::Sync,
            op_ttl: Duration::from_secs(60),
            leader_wait: Duration::from_secs(5),
            min_index_timeout: Duration::from_secs(5),
            apply_wait: Duration::from_secs(5),
        },
    );
    (node, thread, dkv)
}

#[tokio::test]
async fn driver_answers_writes_after_apply_and_reads_through_read_index() {
    let (node, thread, dkv) = single_node(Stores::in_memory());
    let r = dkv
        .write(Command::put("a", "1").with_client("c", 1))
        .await
        .unwrap();
    // Its index: after the leader's no-op at 1.
    assert_eq!(
        r,
        WriteReply::Done(ApplyResult {
            index: Some(2),
            ..ApplyResult::ok()
        })
    );
    // The reply came after apply: the published status already covers it.
    let s = node.view().status;
    assert_eq!(s.role, Role::Leader);
    assert!(s.last_applied >= 2, "{s:?}");
    let got = dkv.get("a", None).await.unwrap();
    assert_eq!(got.value.as_deref(), Some("1"));
    thread.stop().await;
    // Stopped: callers are told, not left hanging.
    assert!(matches!(
        dkv.write(Command::put("b", "1").with_client("c", 2)).await,
        Err(NodeError::Unavailable(_))
    ));
}

#[tokio::test]
async fn storage_failure_stops_the_node_and_requests_get_503_codes() {
    let broken = Arc::new(AtomicBool::new(false));
    let mut stores = Stores::in_memory();
    // Once `broken` is set, every sync fails: a disk that died.
    stores.log = Box::new(HookedLog {
        inner: MemLogStore::default(),
        on_sync: {
            let broken = Arc::clone(&broken);
            move || match broken.load(Ordering::Relaxed) {
                true => Err(StorageError::Io("disk on fire".into())),
                false => Ok(()),
            }
        },
    });
    let (node, thread, dkv) = single_node(stores);
    dkv.write(Command::put("a", "1").with_client("c", 1))
        .await
        .unwrap();
    broken.store(true, Ordering::Relaxed);
    // The entry was accepted but could not be made durable: its outcome is unknown.
    let got = dkv.write(Command::put("a", "2").with_client("c", 2)).await;
    assert!(matches!(got, Err(NodeError::UnknownOutcome(_))), "{got:?}");
    assert!(node.wait_for(Duration::from_secs(5), |v| v.stopped).await);
    let got = dkv.write(Command::put("a", "3").with_client("c", 3)).await;
    assert!(matches!(got, Err(NodeError::Unavailable(_))), "{got:?}");
    assert!(matches!(
        dkv.get("a", Some(ReadPolicy::Stale)).await,
        Err(NodeError::Unavailable(_))
    ));
    assert!(dkv.status().stopped);
    // Health checks see it too, so traffic goes elsewhere.
    let health = crate::api::router(Arc::clone(&dkv), 1 << 20)
        .oneshot(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(health.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    thread.stop().await;
}
