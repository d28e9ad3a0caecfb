//! Sending Raft messages: one bounded queue and one worker task per peer, so a dead or slow
//! peer only ever delays (and then drops) its own messages, never another peer's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use tokio::sync::mpsc;

use super::auth::{PeerAuth, wall_clock_ms};
use super::path_for;
use super::queue::{Counters, PeerQueue, PeerStats, Queued, SendCounters};
use super::wire::Envelope;

/// Maps a peer to the address its Raft routes are served on: `host:port` or a base URL
/// (`http://host:port`). Asked before every send, so an address may change over time.
pub trait PeerResolver: Send + Sync + 'static {
    /// The address of `peer`, or `None` when it is unknown (the message is dropped).
    fn resolve(&self, peer: &NodeId) -> Option<String>;
}

impl<F> PeerResolver for F
where
    F: Fn(&NodeId) -> Option<String> + Send + Sync + 'static,
{
    fn resolve(&self, peer: &NodeId) -> Option<String> {
        self(peer)
    }
}

/// A fixed peer list, as given by kvserver's `--peers`.
#[derive(Clone, Debug, Default)]
pub struct StaticPeers(pub BTreeMap<NodeId, String>);

impl PeerResolver for StaticPeers {
    fn resolve(&self, peer: &NodeId) -> Option<String> {
        self.0.get(peer).cloned()
    }
}

/// Tuning of [`HttpTransport`].
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Messages waiting per peer before new ones are dropped. Small: a message that waited
    /// long is stale (Raft resends), and a dead peer must not pile up memory.
    pub queue_capacity: usize,
    /// Bytes (estimated wire size) waiting per peer before new messages are dropped, beside
    /// the count. 256 MiB by default: 8 MiB made a lagging follower of 1 MiB entries stall
    /// under load (dropped appends meet a core bug, see docs/snapshots.md).
    pub queue_bytes: usize,
    /// The whole-request timeout; a peer that accepts connections but never answers costs at
    /// most this per message.
    pub request_timeout: Duration,
    /// The TCP connect timeout.
    pub connect_timeout: Duration,
    /// The slowest link a large message is given time for: a body of `n` bytes may take
    /// `request_timeout + n / slowest_link_bytes_per_sec` seconds, so a 1 MiB snapshot chunk
    /// is not cut off on a slow link and then sent again forever (etcd#16377). 0: no
    /// allowance.
    pub slowest_link_bytes_per_sec: u64,
    /// The credentials every request carries (see [`super::auth`]).
    pub auth: Arc<PeerAuth>,
    /// Where this node serves clients, told to peers (so their redirects can point here)
    /// when it differs from where they reach it.
    pub client_addr: Option<String>,
    /// Where the transport registers each peer queue's counters, for `/metrics`.
    pub counters: SendCounters,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            queue_capacity: 256,
            queue_bytes: 256 * 1024 * 1024,
            request_timeout: Duration::from_millis(1000),
            connect_timeout: Duration::from_millis(500),
            slowest_link_bytes_per_sec: 256 * 1024,
            auth: Arc::new(PeerAuth::default()),
            client_addr: None,
            counters: SendCounters::default(),
        }
    }
}

/// Why the transport could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `HttpTransport::new` was called outside a tokio runtime.
    #[error("the HTTP transport must be created inside a tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// What every worker shares.
struct Shared {
    from: NodeId,
    client: reqwest::Client,
    resolver: Arc<dyn PeerResolver>,
    config: TransportConfig,
}

/// Core's [`Transport`] over HTTP. `send` never blocks: it puts the message in the peer's queue
/// (or drops and counts it) and a per-peer worker POSTs it. Messages to one peer go out in
/// order, one request at a time. Dropping the transport ends the workers once their queues
/// drain.
pub struct HttpTransport {
    shared: Arc<Shared>,
    config: TransportConfig,
    runtime: tokio::runtime::Handle,
    /// Created on the first message to each peer.
    peers: BTreeMap<NodeId, PeerQueue>,
}

impl HttpTransport {
    /// A transport sending as `from`, finding peers through `resolver`. Must be called inside
    /// a tokio runtime: the workers are spawned on it.
    pub fn new(
        from: NodeId,
        resolver: impl PeerResolver,
        config: TransportConfig,
    ) -> Result<Self, TransportError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            // Peers are on the cluster network: never route them through an HTTP proxy from
            // the environment.
            .no_proxy()
            .build()
            .map_err(|e| TransportError::Client(e.to_string()))?;
        Ok(HttpTransport {
            shared: Arc::new(Shared {
                from,
                client,
                resolver: Arc::new(resolver),
                config: config.clone(),
            }),
            config,
            runtime,
            peers: BTreeMap::new(),
        })
    }

    /// The counters of `peer` (zero for a peer never sent to).
    pub fn stats(&self, peer: &NodeId) -> PeerStats {
        self.peers
            .get(peer)
            .map(|q| q.counters.snapshot())
            .unwrap_or_default()
    }

    /// The counters of every peer sent to so far.
    pub fn all_stats(&self) -> BTreeMap<NodeId, PeerStats> {
        self.peers
            .iter()
            .map(|(id, q)| (id.clone(), q.counters.snapshot()))
            .collect()
    }

    /// Ends the workers of peers not in `keep` (members that left the configuration): their
    /// queues are dropped, so each worker stops once it has sent what it already holds. A
    /// later message to such a peer starts a new worker. Returns the peers dropped.
    pub fn retain_peers(&mut self, keep: &BTreeSet<NodeId>) -> Vec<NodeId> {
        let gone: Vec<NodeId> = self
            .peers
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        for id in &gone {
            self.peers.remove(id);
        }
        self.config.counters.retain(|id| keep.contains(id));
        gone
    }

    /// The queue of `to`, starting its worker on first use.
    fn queue(&mut self, to: &NodeId) -> &PeerQueue {
        self.peers.entry(to.clone()).or_insert_with(|| {
            let (queue, rx) = PeerQueue::new(self.config.queue_capacity, self.config.queue_bytes);
            self.config.counters.add(to, &queue.counters);
            self.runtime.spawn(run_peer(
                to.clone(),
                rx,
                self.shared.clone(),
                queue.counters.clone(),
            ));
            queue
        })
    }
}

impl Transport<raftkv_core::Command> for HttpTransport {
    fn send(&mut self, to: &NodeId, msg: Message) {
        self.queue(to).push(msg);
    }
}

/// The base URL for an address from the resolver.
fn base_url(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The timeout of a request whose body has `len` bytes: the configured one, plus the time the
/// slowest link allowed for takes to carry the body.
pub fn request_timeout(config: &TransportConfig, len: usize) -> Duration {
    let extra = match config.slowest_link_bytes_per_sec {
        0 => Duration::ZERO,
        rate => Duration::from_secs_f64(len as f64 / rate as f64),
    };
    config.request_timeout + extra
}

/// `request` with the headers `auth` signs for a Raft request from `from` to `to` on `path`
/// whose body is `body`, sent now (see [`super::auth`]).
pub fn with_peer_headers(
    mut request: reqwest::RequestBuilder,
    auth: &PeerAuth,
    from: &NodeId,
    to: &NodeId,
    path: &str,
    body: &[u8],
) -> reqwest::RequestBuilder {
    for (name, value) in auth.sign(from, to, path, wall_clock_ms(), body) {
        request = request.header(name, value);
    }
    request
}

/// The header in which a sender says where it serves clients (read only once the request is
/// authenticated).
pub const CLIENT_ADDR_HEADER: &str = "x-raftkv-client-addr";

/// One peer's worker: POSTs its queued messages in order until the queue's sender is gone.
async fn run_peer(
    to: NodeId,
    mut rx: mpsc::Receiver<Queued>,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
) {
    while let Some(Queued { msg, .. }) = rx.recv().await {
        let Some(addr) = shared.resolver.resolve(&to) else {
            Counters::add(&counters.unresolved, 1);
            continue;
        };
        let path = path_for(&msg);
        let url = format!("{}{path}", base_url(&addr));
        let kind = msg.kind();
        let body = match serde_json::to_vec(&Envelope::new(shared.from.clone(), msg)) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(peer = %to, kind, error = %e, "cannot encode raft message");
                Counters::add(&counters.failed, 1);
                continue;
            }
        };
        let timeout = request_timeout(&shared.config, body.len());
        let request = shared
            .client
            .post(&url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        let mut request =
            with_peer_headers(request, &shared.config.auth, &shared.from, &to, path, &body);
        if let Some(a) = &shared.config.client_addr {
            request = request.header(CLIENT_ADDR_HEADER, a);
        }
        let sent_bytes = body.len();
        let res = request.body(body).send().await;
        match res {
            Ok(resp) if resp.status().is_success() => {
                // Reading the (tiny) body lets the connection go back to the pool.
                let _ = resp.bytes().await;
                Counters::add(&counters.delivered, 1);
                Counters::add(&counters.sent_bytes, sent_bytes);
            }
            Ok(resp) => {
                tracing::debug!(peer = %to, kind, status = %resp.status(), "raft message refused");
                Counters::add(&counters.failed, 1);
            }
            Err(e) => {
                tracing::debug!(peer = %to, kind, error = %e, "raft message not delivered");
                Counters::add(&counters.failed, 1);
            }
        }
    }
}
