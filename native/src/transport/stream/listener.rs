//! The receiving end of peer streams: accepts connections on the peer listener, challenges
//! each one (see [`super::handshake`]), and delivers the messages of accepted ones to the
//! node's inbox as sent by the authenticated peer.
//!
//! A connection that fails the handshake gets a refusal and is closed: it delivers nothing.
//! Handshakes are bounded in time ([`super::HANDSHAKE_TIMEOUT`]) and connections in number
//! ([`MAX_CONNECTIONS`]), so strangers cannot hold the node's memory or sockets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use raftkv_core::types::NodeId;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::frame::{HEADER_BYTES, SessionKey, TAG_BYTES, read_frame};
use super::handshake::{self, Challenge, Hello, NONCE_BYTES, VERSION, Welcome};
use super::{HANDSHAKE_TIMEOUT, PeerIo};
use rustls::pki_types::CertificateDer;

use crate::transport::auth::{AuthError, PeerAuth};
use crate::transport::queue::wire_estimate;
use crate::transport::tls::PeerTls;
use crate::transport::{InboxError, RaftInbox};

/// Connections open at once, authenticated or not, beyond which new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;

/// Told of every accepted connection's peer and the client address it gave.
pub type OnHello = Arc<dyn Fn(&NodeId, &str) + Send + Sync>;

/// What the listener needs.
pub struct ListenerConfig {
    /// The node the listener belongs to: hellos must be addressed to it.
    pub me: NodeId,
    /// The cluster's credentials.
    pub auth: Arc<PeerAuth>,
    /// Where messages go.
    pub inbox: Arc<dyn RaftInbox>,
    /// The largest frame taken (a batch at its limit, or a snapshot chunk).
    pub frame_limit: usize,
    /// TLS, when peers use it.
    pub tls: Option<Arc<PeerTls>>,
    /// Learns each peer's client address.
    pub on_hello: Option<OnHello>,
}

/// What the listener has seen, for tests and operators.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections whose handshake was accepted.
    pub accepted: AtomicU64,
    /// Connections refused (failed handshake, or over [`MAX_CONNECTIONS`]).
    pub refused: AtomicU64,
    /// Messages delivered to the inbox.
    pub delivered: AtomicU64,
    /// Messages dropped because the inbox was full.
    pub dropped_full: AtomicU64,
    /// Frames that broke their connection (bad checksum, tag or encoding).
    pub bad_frames: AtomicU64,
    /// What each authenticated peer sent, by the peer's id. The lock is taken once per
    /// connection (and per scrape), never per frame.
    pub received: Mutex<BTreeMap<NodeId, Arc<Received>>>,
}

/// What one peer sent this listener, over all its connections.
#[derive(Debug, Default)]
pub struct Received {
    /// Messages decoded from its frames.
    pub messages: AtomicU64,
    /// Bytes of its frames (header, payload and tag; TLS records not counted).
    pub bytes: AtomicU64,
}

impl ListenerStats {
    /// The counters of `peer`, created on its first connection.
    fn received_from(&self, peer: &NodeId) -> Arc<Received> {
        let mut all = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(all.entry(peer.clone()).or_default())
    }

    /// What every peer sent so far: (messages, bytes) by peer.
    pub fn received(&self) -> BTreeMap<NodeId, (u64, u64)> {
        let all = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter()
            .map(|(id, r)| {
                let m = r.messages.load(Ordering::Relaxed);
                (id.clone(), (m, r.bytes.load(Ordering::Relaxed)))
            })
            .collect()
    }
}

/// Serves peer streams on `listener` until the returned task is aborted (which ends every
/// connection it serves too).
pub fn spawn(
    listener: TcpListener,
    config: ListenerConfig,
) -> (tokio::task::JoinHandle<()>, Arc<ListenerStats>) {
    let stats = Arc::new(ListenerStats::default());
    let task = tokio::spawn(accept_loop(listener, Arc::new(config), Arc::clone(&stats)));
    (task, stats)
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<ListenerConfig>,
    stats: Arc<ListenerStats>,
) {
    // Owned here: aborting this task drops the set, which aborts every connection's task.
    let mut conns = JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(error = %e, "peer listener cannot accept");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (config, stats) = (Arc::clone(&config), Arc::clone(&stats));
                conns.spawn(async move {
                    serve(tcp, remote, &config, &stats).await;
                    drop(slot);
                });
            }
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// One connection: TLS if configured, the handshake, then frames until it closes.
async fn serve(
    tcp: tokio::net::TcpStream,
    remote: std::net::SocketAddr,
    config: &ListenerConfig,
    stats: &ListenerStats,
) {
    let mut cert = None;
    let mut io: Box<dyn PeerIo> = match &config.tls {
        Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
            Ok(Ok(s)) => {
                cert = PeerTls::peer_cert(&s);
                Box::new(s)
            }
            Ok(Err(e)) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                tls.log_refusal(&remote, &e);
                return;
            }
            Err(_) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
        },
        None => Box::new(tcp),
    };
    let accepted =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, challenge(&mut io, config, cert.as_ref())).await;
    let (from, mut key) = match accepted {
        Ok(Some(a)) => a,
        _ => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    stats.accepted.fetch_add(1, Ordering::Relaxed);
    let received = stats.received_from(&from);
    let tag_bytes = if key.is_some() { TAG_BYTES } else { 0 };
    loop {
        let frame = match read_frame(&mut io, config.frame_limit, key.as_mut()).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                count_bad(stats, &from, &e);
                return;
            }
        };
        let frame_bytes = HEADER_BYTES + frame.len() + tag_bytes;
        received
            .bytes
            .fetch_add(frame_bytes as u64, Ordering::Relaxed);
        let msgs = match crate::transport::wire::decode_batch(&frame) {
            Ok(m) => m,
            Err(e) => {
                count_bad(stats, &from, &e);
                return;
            }
        };
        received
            .messages
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
        for msg in msgs {
            let size = wire_estimate(&msg);
            match config.inbox.deliver(from.clone(), msg, size) {
                Ok(()) => stats.delivered.fetch_add(1, Ordering::Relaxed),
                Err(InboxError::Full) => stats.dropped_full.fetch_add(1, Ordering::Relaxed),
                // The node is stopping.
                Err(InboxError::Closed) => return,
            };
        }
    }
}

fn count_bad(stats: &ListenerStats, from: &NodeId, e: &dyn std::fmt::Display) {
    stats.bad_frames.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(peer = %from, error = %e, "closing a peer connection after a bad frame");
}

/// The acceptor's half of the handshake: the authenticated sender and the session key, or
/// `None` after a refusal (sent to the dialler, logged once by the auth).
async fn challenge(
    io: &mut Box<dyn PeerIo>,
    config: &ListenerConfig,
    cert: Option<&CertificateDer<'static>>,
) -> Option<(NodeId, Option<SessionKey>)> {
    let mut nonce = vec![0u8; NONCE_BYTES];
    if let Err(e) = getrandom::fill(&mut nonce) {
        tracing::error!(error = %e, "no randomness for a peer handshake");
        return None;
    }
    let challenge = Challenge {
        version: VERSION,
        nonce,
    };
    handshake::send(io, &challenge).await.ok()?;
    let hello: Hello = match handshake::receive(io, "hello").await {
        Ok(h) => h,
        Err(e) => {
            refuse(io, &e).await;
            return None;
        }
    };
    if let Err(e) = handshake::check(&config.auth, &config.me, &hello, &challenge.nonce) {
        refuse(io, &e.to_string()).await;
        return None;
    }
    // With certificates, the claimed sender must be the node the certificate names.
    if config.tls.is_some() && !cert.is_some_and(|c| PeerTls::names(c, &hello.from)) {
        let e = AuthError::Forbidden("a certificate that does not name the sender");
        config.auth.log_once(&hello.from.0, &e);
        refuse(io, &e.to_string()).await;
        return None;
    }
    let welcome = Welcome {
        ok: true,
        error: None,
    };
    handshake::send(io, &welcome).await.ok()?;
    if let (Some(on_hello), Some(addr)) = (&config.on_hello, &hello.client_addr) {
        on_hello(&hello.from, addr);
    }
    let key = handshake::session_key(&config.auth, &challenge.nonce, &hello.mac);
    Some((hello.from, key))
}

/// Tells the dialler why, then lets the connection close.
async fn refuse(io: &mut Box<dyn PeerIo>, why: &str) {
    let welcome = Welcome {
        ok: false,
        error: Some(why.to_string()),
    };
    // The dialler may be gone already; it is refused either way.
    let _ = handshake::send(io, &welcome).await;
}
