//! The pieces of a multi-node kvserver fitting together in one process: core's Raft node on
//! disk stores, talking through the HTTP transport. Each node runs the loop a driver would:
//! feed messages, ticks and proposals to the node, `persist` (group commit), then hand the
//! produced messages to the transport. Nodes are stopped and restarted from their data dirs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftkv_core::KvStateMachine;
use raftkv_core::kvraft::Message;
use raftkv_core::raft::{Config, Host, Role, Status};
use raftkv_core::types::{Command, NodeId};
use raftkv_native::disk;
use raftkv_native::transport::{self, HttpTransport, StaticPeers, TransportConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the test sees of a node: its status and its state machine's contents.
type View = Arc<Mutex<Option<(Status, BTreeMap<String, String>)>>>;

struct TestNode {
    id: NodeId,
    addr: SocketAddr,
    dir: PathBuf,
    view: View,
    /// Proposals to the node; dropping it stops the driver.
    proposals: Option<mpsc::UnboundedSender<Command>>,
    driver: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
}

struct TestCluster {
    nodes: Vec<TestNode>,
    peers: BTreeMap<NodeId, String>,
    origin: Instant,
    _root: tempfile::TempDir,
}

/// The driver loop of one node.
async fn drive(
    node: &mut Host<KvStateMachine>,
    origin: Instant,
    mut inbox: mpsc::UnboundedReceiver<(NodeId, Message)>,
    mut proposals: mpsc::UnboundedReceiver<Command>,
    mut transport: HttpTransport,
    view: View,
) {
    let now = || origin.elapsed().as_millis() as u64;
    loop {
        let wake = origin + Duration::from_millis(node.next_deadline());
        // Core's host loop sends through the transport, fsyncing each Ready before the
        // messages that depend on it leave.
        tokio::select! {
            Some((from, msg)) = inbox.recv() => node.step(now(), &from, msg, &mut transport).unwrap(),
            cmd = proposals.recv() => match cmd {
                // Not the leader (any more): the test retries elsewhere.
                Some(cmd) => { let _ = node.propose(now(), cmd, &mut transport); }
                None => return,
            },
            () = tokio::time::sleep_until(wake) => node.tick(now(), &mut transport).unwrap(),
        }
        node.take_events();
        *view.lock().unwrap() = Some((node.status(), node.state_machine().entries()));
    }
}

impl TestCluster {
    async fn start(n: usize) -> TestCluster {
        let root = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        let mut peers = BTreeMap::new();
        for i in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            peers.insert(NodeId(format!("n{i}")), l.local_addr().unwrap().to_string());
            listeners.push(l);
        }
        let mut c = TestCluster {
            nodes: Vec::new(),
            peers,
            origin: Instant::now(),
            _root: root,
        };
        for (i, l) in listeners.into_iter().enumerate() {
            let id = NodeId(format!("n{}", i + 1));
            c.nodes.push(TestNode {
                addr: l.local_addr().unwrap(),
                dir: c._root.path().join(&id.0),
                id,
                view: Arc::new(Mutex::new(None)),
                proposals: None,
                driver: None,
                server: None,
            });
            c.run(i, l);
        }
        c
    }

    /// Starts node `i` from its data dir, serving on `listener`.
    fn run(&mut self, i: usize, listener: TcpListener) {
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let (prop_tx, prop_rx) = mpsc::unbounded_channel();
        let node = &mut self.nodes[i];
        let app = transport::router(Arc::new(inbox_tx));
        node.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        let cfg = Config::new(node.id.clone(), self.peers.keys().cloned().collect());
        let stores = disk::open_stores(&node.dir).unwrap();
        let origin = self.origin;
        let now = origin.elapsed().as_millis() as u64;
        let mut raft = Host::new(cfg, stores, KvStateMachine::new(), i as u64 + 1, now).unwrap();
        let transport = HttpTransport::new(
            node.id.clone(),
            StaticPeers(self.peers.clone()),
            TransportConfig {
                request_timeout: Duration::from_millis(500),
                ..TransportConfig::default()
            },
        )
        .unwrap();
        let view = node.view.clone();
        node.proposals = Some(prop_tx);
        node.driver = Some(tokio::spawn(async move {
            drive(&mut raft, origin, inbox_rx, prop_rx, transport, view).await;
            // Dropping the node closes its stores (and releases the data dir's lock).
            drop(raft);
        }));
    }

    async fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.proposals = None;
        if let Some(s) = node.server.take() {
            s.abort();
        }
        if let Some(d) = node.driver.take() {
            d.await.unwrap();
        }
        *node.view.lock().unwrap() = None;
    }

    async fn restart(&mut self, i: usize) {
        let l = TcpListener::bind(self.nodes[i].addr).await.unwrap();
        self.run(i, l);
    }

    fn view(&self, i: usize) -> Option<(Status, BTreeMap<String, String>)> {
        self.nodes[i].view.lock().unwrap().clone()
    }

    /// The running leader that every running node in its term agrees on.
    async fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let views: Vec<_> = (0..self.nodes.len())
                .filter_map(|i| self.view(i).map(|v| (i, v.0)))
                .collect();
            if let Some((l, ls)) = views.iter().find(|(_, s)| s.role == Role::Leader)
                && views
                    .iter()
                    .all(|(_, s)| s.term == ls.term && s.leader_id == Some(ls.id.clone()))
            {
                return *l;
            }
            assert!(Instant::now() < deadline, "no agreed leader: {views:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Puts `key` through the leader, retrying (same client id and seq) across leader
    /// changes until the leader has applied it.
    async fn put(&self, seq: u64, key: &str, value: &str) {
        let mut cmd = Command::put(key, value);
        cmd.client_id = "test".into();
        cmd.seq = seq;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = self.leader(Duration::from_secs(10)).await;
            if let Some(p) = &self.nodes[l].proposals {
                let _ = p.send(cmd.clone());
            }
            let attempt_end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < attempt_end {
                if self
                    .view(l)
                    .is_some_and(|(_, kv)| kv.get(key).map(String::as_str) == Some(value))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(Instant::now() < deadline, "put {key} never applied");
        }
    }

    /// Waits until every running node's state machine holds exactly `want`.
    async fn converged(&self, want: &BTreeMap<String, String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Every running node must report: a restarted node that has not yet run one turn
            // does not count as converged.
            let running: Vec<_> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].driver.is_some())
                .map(|i| self.view(i))
                .collect();
            if running
                .iter()
                .all(|v| v.as_ref().is_some_and(|(_, kv)| kv == want))
            {
                return;
            }
            assert!(Instant::now() < deadline, "not converged: {running:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_over_http_on_disk_replicates_and_survives_restarts() {
    let mut c = TestCluster::start(3).await;
    let mut want = BTreeMap::new();
    let mut seq = 0;
    let mut put = async |c: &TestCluster, want: &mut BTreeMap<String, String>, k: String| {
        seq += 1;
        let v = format!("v{seq}");
        c.put(seq, &k, &v).await;
        want.insert(k, v);
    };
    for i in 0..10 {
        put(&c, &mut want, format!("a{i}")).await;
    }
    c.converged(&want).await;

    // A follower misses writes while down, then catches up from its own disk plus the leader.
    let leader = c.leader(Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;
    c.stop(follower).await;
    {
        // What it wrote is on disk: the 10 puts plus the leader's no-op(s), and its term.
        let stores = disk::open_stores(&c.nodes[follower].dir).unwrap();
        assert!(stores.log.last_index() >= 11, "{}", stores.log.last_index());
        let puts = stores
            .log
            .read_range(1, stores.log.last_index() + 1)
            .unwrap();
        assert_eq!(
            puts.iter()
                .filter(|e| e.payload.command().is_some())
                .count(),
            10
        );
        assert!(stores.stable.current_term().unwrap() >= 1);
    }
    for i in 0..5 {
        put(&c, &mut want, format!("b{i}")).await;
    }
    c.restart(follower).await;
    c.converged(&want).await;

    // The leader goes down: the other two elect a new one and keep serving; the old leader
    // comes back as a follower with everything.
    c.stop(leader).await;
    let new_leader = c.leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    for i in 0..5 {
        put(&c, &mut want, format!("c{i}")).await;
    }
    c.restart(leader).await;
    c.converged(&want).await;
    let (status, _) = c.view(leader).unwrap();
    assert!(status.last_log_index >= 20, "{status:?}");
}
