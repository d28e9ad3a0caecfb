//! The stream transport: one long-lived connection per peer and direction, carrying batches of
//! Raft messages in length-prefixed, checksummed frames (see docs/peer-transport.md).
//!
//! Each node dials its peers and only ever writes to the connections it dialled; it receives on
//! the connections its peers dialled ([`listener`]). So the link from `a` to `b` is `a`'s
//! connection to `b`'s peer listener, and cutting one direction (a proxy per directed link, as
//! the tests do) cuts only that direction, as with the HTTP transport. Per peer there are two
//! such connections, [`Lane`]s: one for every message but InstallSnapshot, one for snapshot
//! chunks, so a chunk of a megabyte never sits in front of a heartbeat.
//!
//! The writer of a lane waits for a message, takes everything else already queued (up to a
//! batch limit) and writes it as one frame, without waiting for any answer: frames follow one
//! another as fast as the connection takes them, and TCP keeps them in order. A connection that
//! fails, or a write that takes longer than the slowest link allowed for, is dropped and dialled
//! again with a backoff; what was queued meanwhile is counted as failed (Raft resends).

pub mod frame;
pub mod handshake;
pub mod listener;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use self::frame::{SessionKey, write_frame};
use self::handshake::{Challenge, Lane, Welcome};
use super::client::{PeerResolver, TransportConfig, TransportError, request_timeout};
use super::queue::{Counters, PeerQueue, PeerStats, Queued};
use super::tls::{PeerTls, TlsError};

/// A byte stream to a peer: TCP, or TLS over TCP.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIo for T {}

/// Messages in one frame at most (a frame also stops growing past [`MAX_BATCH_BYTES`]).
const MAX_BATCH_MESSAGES: usize = 256;
/// Estimated bytes in one frame at most, unless a single message is larger.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The first pause after a failed dial; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// The longest pause between dials: short against an election timeout, so a restarted peer
/// hears from its leader soon after it listens again.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How long a handshake may take, each way.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a node's lanes share.
struct Shared {
    from: NodeId,
    resolver: Arc<dyn PeerResolver>,
    config: TransportConfig,
    tls: Option<Arc<PeerTls>>,
}

/// Core's [`Transport`] over peer streams. `send` never blocks: it puts the message in the
/// queue of its peer's lane (or drops and counts it) and the lane's writer sends it.
pub struct StreamTransport {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    /// Created on the first message to each peer and lane.
    lanes: BTreeMap<(NodeId, Lane), PeerQueue>,
}

impl StreamTransport {
    /// A transport sending as `from`, finding peers through `resolver`, over TLS when `tls`
    /// is given. Must be called inside a tokio runtime: the writers are spawned on it.
    pub fn new(
        from: NodeId,
        resolver: impl PeerResolver,
        config: TransportConfig,
        tls: Option<Arc<PeerTls>>,
    ) -> Result<Self, TransportError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        Ok(StreamTransport {
            shared: Arc::new(Shared {
                from,
                resolver: Arc::new(resolver),
                config,
                tls,
            }),
            runtime,
            lanes: BTreeMap::new(),
        })
    }

    /// The counters of `peer`, both lanes together (zero for a peer never sent to).
    pub fn stats(&self, peer: &NodeId) -> PeerStats {
        self.lanes
            .iter()
            .filter(|((id, _), _)| id == peer)
            .fold(PeerStats::default(), |s, (_, q)| {
                s.plus(q.counters.snapshot())
            })
    }

    /// The counters of every peer sent to so far.
    pub fn all_stats(&self) -> BTreeMap<NodeId, PeerStats> {
        let mut out: BTreeMap<NodeId, PeerStats> = BTreeMap::new();
        for ((id, _), q) in &self.lanes {
            let s = out.entry(id.clone()).or_default();
            *s = s.plus(q.counters.snapshot());
        }
        out
    }

    /// Ends the writers of peers not in `keep`; returns the peers dropped.
    pub fn retain_peers(&mut self, keep: &BTreeSet<NodeId>) -> Vec<NodeId> {
        let gone: BTreeSet<NodeId> = self
            .lanes
            .keys()
            .filter(|(id, _)| !keep.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        self.lanes.retain(|(id, _), _| !gone.contains(id));
        self.shared.config.counters.retain(|id| !gone.contains(id));
        gone.into_iter().collect()
    }

    fn queue(&mut self, to: &NodeId, lane: Lane) -> &PeerQueue {
        let key = (to.clone(), lane);
        self.lanes.entry(key).or_insert_with(|| {
            let c = &self.shared.config;
            let (queue, rx) = PeerQueue::new(c.queue_capacity, c.queue_bytes);
            c.counters.add(to, &queue.counters);
            self.runtime.spawn(run_lane(
                to.clone(),
                lane,
                rx,
                Arc::clone(&self.shared),
                Arc::clone(&queue.counters),
            ));
            queue
        })
    }
}

impl Transport<raftkv_core::Command> for StreamTransport {
    fn send(&mut self, to: &NodeId, msg: Message) {
        let lane = match msg {
            Message::InstallSnapshot(_) => Lane::Snapshot,
            _ => Lane::Raft,
        };
        self.queue(to, lane).push(msg);
    }
}

/// An authenticated connection to a peer's listener.
struct Conn {
    io: Box<dyn PeerIo>,
    key: Option<SessionKey>,
}

/// Why a dial did not give a connection.
#[derive(Debug, thiserror::Error)]
enum DialError {
    #[error("no address known")]
    Unresolved,
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("refused by the peer: {0}")]
    Refused(String),
}

/// The `host:port` of an address from the resolver (which may be a URL).
fn host_port(addr: &str) -> &str {
    let addr = addr.trim_end_matches('/');
    addr.strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr)
}

/// Dials `to`'s listener and runs the handshake for `lane`.
async fn dial(shared: &Shared, to: &NodeId, lane: Lane) -> Result<Conn, DialError> {
    let addr = shared.resolver.resolve(to).ok_or(DialError::Unresolved)?;
    let addr = host_port(&addr).to_string();
    let tcp = tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(&addr))
        .await
        .map_err(|_| DialError::Connect(std::io::ErrorKind::TimedOut.into()))?
        .map_err(DialError::Connect)?;
    // Heartbeats and votes are small: send them at once.
    let _ = tcp.set_nodelay(true);
    let mut io: Box<dyn PeerIo> = match &shared.tls {
        Some(tls) => Box::new(tls.connect(to, tcp).await?),
        None => Box::new(tcp),
    };
    let key = tokio::time::timeout(HANDSHAKE_TIMEOUT, greet(shared, to, lane, &mut io))
        .await
        .map_err(|_| DialError::Handshake("timed out".into()))??;
    Ok(Conn { io, key })
}

/// The dialler's half of the handshake (see [`handshake`]).
async fn greet(
    shared: &Shared,
    to: &NodeId,
    lane: Lane,
    io: &mut Box<dyn PeerIo>,
) -> Result<Option<SessionKey>, DialError> {
    let challenge: Challenge = handshake::receive(io, "challenge")
        .await
        .map_err(DialError::Handshake)?;
    let auth = &shared.config.auth;
    let hello = handshake::hello(
        auth,
        &shared.from,
        to,
        lane,
        shared.config.client_addr.clone(),
        &challenge,
    );
    handshake::send(io, &hello)
        .await
        .map_err(DialError::Handshake)?;
    let welcome: Welcome = handshake::receive(io, "welcome")
        .await
        .map_err(DialError::Handshake)?;
    if !welcome.ok {
        return Err(DialError::Refused(welcome.error.unwrap_or_default()));
    }
    Ok(handshake::session_key(auth, &challenge.nonce, &hello.mac))
}

/// Logs a failed dial the first time it fails for a reason, and when it recovers: a peer that
/// is down for a minute costs two lines, not a line per attempt.
#[derive(Default)]
struct DialLog {
    last: Option<String>,
}

impl DialLog {
    fn failed(&mut self, to: &NodeId, lane: Lane, e: &DialError) {
        let why = e.to_string();
        if self.last.as_deref() != Some(why.as_str()) {
            match e {
                DialError::Refused(_) => {
                    tracing::warn!(peer = %to, lane = lane.as_str(), error = %why, "peer refused our connection")
                }
                _ => {
                    tracing::info!(peer = %to, lane = lane.as_str(), error = %why, "cannot reach peer")
                }
            }
            self.last = Some(why);
        }
    }

    fn connected(&mut self, to: &NodeId, lane: Lane) {
        if self.last.take().is_some() {
            tracing::info!(peer = %to, lane = lane.as_str(), "connected to peer");
        }
    }
}

/// One lane's writer: dials, then writes its queue as batches until the queue's sender is
/// gone.
async fn run_lane(
    to: NodeId,
    lane: Lane,
    mut rx: mpsc::Receiver<Queued>,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
) {
    let mut conn: Option<Conn> = None;
    let mut backoff = MIN_BACKOFF;
    let mut log = DialLog::default();
    loop {
        let first = match &mut conn {
            None => rx.recv().await,
            // While idle, watch the connection: the peer closes it when it stops, and the
            // next batch should go to a fresh one rather than into a dead socket.
            Some(c) => {
                let mut probe = [0u8; 1];
                tokio::select! {
                    m = rx.recv() => m,
                    _ = c.io.read(&mut probe) => {
                        conn = None;
                        continue;
                    }
                }
            }
        };
        let Some(first) = first else { return };
        let batch = drain(first, &mut rx);
        if conn.is_none() {
            match dial(&shared, &to, lane).await {
                Ok(c) => {
                    log.connected(&to, lane);
                    backoff = MIN_BACKOFF;
                    conn = Some(c);
                }
                Err(e) => {
                    let counter = match e {
                        DialError::Unresolved => &counters.unresolved,
                        _ => &counters.failed,
                    };
                    Counters::add(counter, batch.len());
                    log.failed(&to, lane, &e);
                    drop(batch);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    // What queued during the pause is older than a backoff: drop it too, so
                    // the next dial carries fresh messages only.
                    while let Ok(q) = rx.try_recv() {
                        drop(q);
                        Counters::add(&counters.failed, 1);
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let n = batch.len();
        match write_batch(&shared, c, batch).await {
            Ok(bytes) => {
                Counters::add(&counters.delivered, n);
                Counters::add(&counters.sent_bytes, bytes);
            }
            Err(e) => {
                tracing::debug!(peer = %to, lane = lane.as_str(), error = %e, "peer connection lost");
                Counters::add(&counters.failed, n);
                conn = None;
            }
        }
    }
}

/// `first` and whatever else is queued, up to the batch limits.
fn drain(first: Queued, rx: &mut mpsc::Receiver<Queued>) -> Vec<Queued> {
    let mut bytes = first.size;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(q) => {
                bytes = bytes.saturating_add(q.size);
                batch.push(q);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Encodes `batch` as one frame and writes it, within the time the slowest link allowed for
/// needs for its size. The budget shares are given back once the frame is written. Answers
/// the bytes written (the frame's header, body and tag).
async fn write_batch(shared: &Shared, c: &mut Conn, batch: Vec<Queued>) -> std::io::Result<usize> {
    let (msgs, _budget): (Vec<Message>, Vec<_>) =
        batch.into_iter().map(|q| (q.msg, q._budget)).unzip();
    let body = super::wire::encode_batch(msgs).map_err(std::io::Error::other)?;
    let timeout = request_timeout(&shared.config, body.len());
    let tag = if c.key.is_some() { frame::TAG_BYTES } else { 0 };
    let bytes = frame::HEADER_BYTES + body.len() + tag;
    let write = async {
        write_frame(&mut c.io, &body, c.key.as_mut()).await?;
        c.io.flush().await
    };
    tokio::time::timeout(timeout, write)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(bytes)
}
