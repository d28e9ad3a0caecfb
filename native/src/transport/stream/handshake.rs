//! How a peer connection starts: the accepting node challenges, the dialling node proves.
//!
//! ```text
//! dialler (sends Raft)                      acceptor (receives Raft)
//!   connect ------------------------------>
//!           <------------------------------ Challenge { version, nonce: 32 random bytes }
//!   Hello { version, cluster, from, to,
//!           lane, client_addr, mac } ------>  checks cluster, to == itself, mac
//!           <------------------------------ Welcome { ok, error }
//!   frames of messages (tagged) ---------->  delivered as from `from`
//! ```
//!
//! With a cluster secret, `mac` is HMAC-SHA256(secret, [`hello_bytes`] + nonce): fresh for every
//! connection, so a recorded handshake cannot be replayed, and the secret never crosses the
//! wire. Both sides then derive a session key from the secret, the nonce and the mac, and every
//! later frame carries a tag under it (see [`super::frame`]), so nothing can be injected into
//! an authenticated connection either. Without a secret only the ids are checked (two clusters
//! with different ids never talk). Each message frame then carries messages whose sender is,
//! by construction, the authenticated `from`: the sender is not in the frame at all.

use hmac::{Hmac, KeyInit, Mac};
use raftkv_core::types::NodeId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::frame::{SessionKey, read_frame, write_frame};
use crate::transport::auth::{AuthError, PeerAuth};

/// The protocol version both sides must speak.
pub const VERSION: u32 = 1;
/// The largest handshake frame read (ids, an address and a mac are far smaller).
pub const HANDSHAKE_LIMIT: usize = 4096;
/// Bytes of a challenge's nonce.
pub const NONCE_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Which connection of a pair of peers: Raft's small messages, or snapshot chunks, which get a
/// connection of their own so that a chunk never waits in front of a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Everything but InstallSnapshot.
    Raft,
    /// InstallSnapshot chunks.
    Snapshot,
}

impl Lane {
    /// The lane's name, as in logs and the mac.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Raft => "raft",
            Lane::Snapshot => "snapshot",
        }
    }
}

/// The acceptor's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// [`VERSION`].
    pub version: u32,
    /// Fresh random bytes the dialler's mac must cover.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
}

/// The dialler's answer: who it is, whom it wants, and the proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`VERSION`].
    pub version: u32,
    /// The dialler's cluster id.
    pub cluster: String,
    /// The dialler's node id: the sender of every message on this connection.
    pub from: NodeId,
    /// The node it means to reach.
    pub to: NodeId,
    /// Which connection this is.
    pub lane: Lane,
    /// Where the dialler serves clients (for redirects to it), if it says.
    pub client_addr: Option<String>,
    /// With a secret: HMAC-SHA256(secret, [`hello_bytes`] + nonce); empty without.
    #[serde(with = "serde_bytes")]
    pub mac: Vec<u8>,
}

/// The acceptor's verdict; after a refusal it closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Whether the connection is accepted.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Writes one handshake message as a frame and flushes it.
pub async fn send<T: Serialize>(io: &mut (impl AsyncWrite + Unpin), msg: &T) -> Result<(), String> {
    let body = rmp_serde::to_vec_named(msg).map_err(|e| e.to_string())?;
    write_frame(io, &body, None)
        .await
        .map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())
}

/// Reads one handshake message `what` (at most [`HANDSHAKE_LIMIT`] bytes).
pub async fn receive<T: DeserializeOwned>(
    io: &mut (impl AsyncRead + Unpin),
    what: &str,
) -> Result<T, String> {
    let bytes = read_frame(io, HANDSHAKE_LIMIT, None)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("closed before the {what}"))?;
    rmp_serde::from_slice(&bytes).map_err(|e| format!("a malformed {what}: {e}"))
}

/// What the mac covers before the nonce: a version tag, then each field followed by a zero
/// byte (ids, lanes and addresses hold none, so fields cannot be shifted into one another).
pub fn hello_bytes(cluster: &str, from: &str, to: &str, lane: Lane, client_addr: &str) -> Vec<u8> {
    let mut out = b"raftkv-stream-v1\0".to_vec();
    for field in [cluster, from, to, lane.as_str(), client_addr] {
        out.extend_from_slice(field.as_bytes());
        out.push(0);
    }
    out
}

fn hmac(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// The mac of a hello with these fields answering `nonce`, or `None` without a secret.
fn hello_mac(auth: &PeerAuth, h: &Hello, nonce: &[u8]) -> Option<HmacSha256> {
    let secret = auth.secret()?;
    let mut mac = hmac(secret);
    let addr = h.client_addr.as_deref().unwrap_or("");
    mac.update(&hello_bytes(&h.cluster, &h.from.0, &h.to.0, h.lane, addr));
    mac.update(nonce);
    Some(mac)
}

/// The session key both sides derive after a hello with `mac` answered `nonce`, or `None`
/// without a secret.
pub fn session_key(auth: &PeerAuth, nonce: &[u8], mac: &[u8]) -> Option<SessionKey> {
    let mut k = hmac(auth.secret()?);
    k.update(b"raftkv-stream-session-v1\0");
    k.update(nonce);
    k.update(mac);
    Some(SessionKey::new(k.finalize().into_bytes().into()))
}

/// The dialler's hello from `from` to `to` on `lane`, answering `challenge`.
pub fn hello(
    auth: &PeerAuth,
    from: &NodeId,
    to: &NodeId,
    lane: Lane,
    client_addr: Option<String>,
    challenge: &Challenge,
) -> Hello {
    let mut h = Hello {
        version: VERSION,
        cluster: auth.cluster_id().to_string(),
        from: from.clone(),
        to: to.clone(),
        lane,
        client_addr,
        mac: Vec::new(),
    };
    if let Some(mac) = hello_mac(auth, &h, &challenge.nonce) {
        h.mac = mac.finalize().into_bytes().to_vec();
    }
    h
}

/// Checks a hello that reached node `me` after it sent `nonce`; refusals are logged once per
/// claimed sender and reason by `auth`.
pub fn check(auth: &PeerAuth, me: &NodeId, h: &Hello, nonce: &[u8]) -> Result<(), AuthError> {
    let checked = check_fields(auth, me, h, nonce);
    if let Err(e) = &checked {
        auth.log_once(&h.from.0, e);
    }
    checked
}

/// The deliberate break (`protocol-breaks` only): when set, a hello's mac is not checked, so a
/// peer without the secret gets in. `native/tests/transport_breaks.rs` proves the stream tests'
/// checks notice.
#[cfg(feature = "protocol-breaks")]
pub static BREAK_SKIP_MAC: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn check_fields(auth: &PeerAuth, me: &NodeId, h: &Hello, nonce: &[u8]) -> Result<(), AuthError> {
    if h.version != VERSION {
        return Err(AuthError::Forbidden("another protocol version"));
    }
    if h.cluster != auth.cluster_id() {
        return Err(AuthError::Forbidden("another cluster"));
    }
    if &h.to != me {
        return Err(AuthError::Forbidden("addressed to another node"));
    }
    if h.from.0.is_empty() || &h.from == me {
        return Err(AuthError::Forbidden("no sender, or this node itself"));
    }
    #[cfg(feature = "protocol-breaks")]
    if BREAK_SKIP_MAC.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    match hello_mac(auth, h, nonce) {
        None => Ok(()),
        // Constant time: the comparison says nothing about how much of a guess was right.
        Some(mac) => mac
            .verify_slice(&h.mac)
            .map_err(|_| AuthError::Unauthenticated("a wrong MAC")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: Option<&[u8]>) -> PeerAuth {
        match secret {
            Some(s) => PeerAuth::with_secret("c1", s.to_vec()).unwrap(),
            None => PeerAuth::open("c1"),
        }
    }

    fn challenge(n: u8) -> Challenge {
        Challenge {
            version: VERSION,
            nonce: vec![n; NONCE_BYTES],
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef0123";

    #[test]
    fn a_hello_with_the_secret_passes_and_derives_the_same_session_key_on_both_sides() {
        let a = auth(Some(SECRET));
        let (n1, n2) = (NodeId::from("n1"), NodeId::from("n2"));
        let c = challenge(1);
        let h = hello(&a, &n2, &n1, Lane::Raft, Some("h:1".into()), &c);
        assert_eq!(check(&a, &n1, &h, &c.nonce), Ok(()));
        assert!(session_key(&a, &c.nonce, &h.mac).is_some());
        assert!(session_key(&auth(None), &c.nonce, &h.mac).is_none());
    }

    #[test]
    fn a_wrong_secret_a_replayed_hello_or_an_altered_field_is_refused() {
        let a = auth(Some(SECRET));
        let (n1, n2) = (NodeId::from("n1"), NodeId::from("n2"));
        let c = challenge(1);
        let stranger = auth(Some(b"another secret of enough bytes"));
        let h = hello(&stranger, &n2, &n1, Lane::Raft, None, &c);
        assert_eq!(
            check(&a, &n1, &h, &c.nonce),
            Err(AuthError::Unauthenticated("a wrong MAC"))
        );
        let good = hello(&a, &n2, &n1, Lane::Raft, None, &c);
        // Replayed against a new challenge.
        assert!(check(&a, &n1, &good, &challenge(2).nonce).is_err());
        // Another sender, lane or address under the same mac.
        for bad in [
            Hello {
                from: NodeId::from("n3"),
                ..good.clone()
            },
            Hello {
                lane: Lane::Snapshot,
                ..good.clone()
            },
            Hello {
                client_addr: Some("evil:1".into()),
                ..good.clone()
            },
        ] {
            assert!(check(&a, &n1, &bad, &c.nonce).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn without_a_secret_the_cluster_and_the_addressee_are_still_checked() {
        let a = auth(None);
        let (n1, n2) = (NodeId::from("n1"), NodeId::from("n2"));
        let c = challenge(1);
        let h = hello(&a, &n2, &n1, Lane::Raft, None, &c);
        assert_eq!(check(&a, &n1, &h, &c.nonce), Ok(()));
        assert!(check(&a, &n2, &h, &c.nonce).is_err());
        let other = hello(&PeerAuth::open("c2"), &n2, &n1, Lane::Raft, None, &c);
        assert_eq!(
            check(&a, &n1, &other, &c.nonce),
            Err(AuthError::Forbidden("another cluster"))
        );
    }
}
