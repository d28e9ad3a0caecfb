//! Who may speak Raft to a node: every request on the Raft routes names its cluster, its sender
//! and its addressee, and, when the cluster has a secret, proves it knows the secret.
//!
//! Headers of every Raft request:
//!
//! | header             | value                                                          |
//! |--------------------|----------------------------------------------------------------|
//! | `x-raftkv-cluster` | the cluster id (`--cluster-id`)                                |
//! | `x-raftkv-from`    | the sender's node id; must equal the envelope's `from`         |
//! | `x-raftkv-to`      | the addressee's node id; must be the receiving node            |
//! | `x-raftkv-time`    | the sender's wall clock, milliseconds since the Unix epoch     |
//! | `x-raftkv-mac`     | with a secret: base64 of HMAC-SHA256(secret, [`signed_bytes`]) |
//!
//! The MAC covers the cluster, both ids, the time, the route and the whole body, so a request
//! cannot be forged, altered, or redirected to another node or cluster without the secret,
//! and the secret itself never crosses the wire. A request whose time is more than
//! [`MAX_CLOCK_SKEW_MS`] away from the receiver's clock is refused: a captured request can be
//! replayed only within that window, where it is a duplicate, which Raft tolerates like any
//! duplicated message. Without a secret only the ids are checked (two clusters with different
//! ids never talk), and kvserver warns at start that its Raft routes are open.
//!
//! A refused request gets 401 (`unauthenticated`: no or a wrong MAC, or a stale time) or 403
//! (`forbidden`: another cluster, another addressee, a body whose sender differs from the
//! header's) and changes nothing; each kind of refusal is logged once per claimed sender.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use raftkv_core::types::NodeId;
use sha2::Sha256;

/// The cluster id header.
pub const CLUSTER_HEADER: &str = "x-raftkv-cluster";
/// The sender's id header.
pub const FROM_HEADER: &str = "x-raftkv-from";
/// The addressee's id header.
pub const TO_HEADER: &str = "x-raftkv-to";
/// The send time header.
pub const TIME_HEADER: &str = "x-raftkv-time";
/// The MAC header.
pub const MAC_HEADER: &str = "x-raftkv-mac";
/// The cluster id when none is given.
pub const DEFAULT_CLUSTER_ID: &str = "raftkv";
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// How far a request's time may be from the receiver's clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;
/// Distinct (sender, refusal) pairs logged; past it refusals go unlogged (a sender that
/// invents ids must not grow memory or the log without bound).
const MAX_LOGGED: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// A node's peer credentials: its cluster id and, optionally, the cluster's secret.
pub struct PeerAuth {
    cluster_id: String,
    /// Invariant: at least [`MIN_SECRET_BYTES`] when present.
    secret: Option<Vec<u8>>,
    /// The refusals logged so far, as (claimed sender, refusal).
    logged: Mutex<BTreeSet<(String, &'static str)>>,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never goes to a log.
        f.debug_struct("PeerAuth")
            .field("cluster_id", &self.cluster_id)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Default for PeerAuth {
    fn default() -> Self {
        PeerAuth::open(DEFAULT_CLUSTER_ID)
    }
}

/// Why a Raft request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No MAC, a MAC that does not match, or a time outside the window (401).
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated or not, the request is not for this node of this cluster (403).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
}

impl PeerAuth {
    /// Ids only, no secret.
    pub fn open(cluster_id: &str) -> Self {
        PeerAuth {
            cluster_id: cluster_id.to_string(),
            secret: None,
            logged: Mutex::new(BTreeSet::new()),
        }
    }

    /// With the cluster's `secret` (at least [`MIN_SECRET_BYTES`]).
    pub fn with_secret(cluster_id: &str, secret: Vec<u8>) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the cluster secret has {} bytes: at least {MIN_SECRET_BYTES} are needed",
                secret.len()
            ));
        }
        Ok(PeerAuth {
            secret: Some(secret),
            ..PeerAuth::open(cluster_id)
        })
    }

    /// With the secret in the file at `path` (surrounding whitespace, such as the newline an
    /// editor adds, is not part of it).
    pub fn from_file(cluster_id: &str, path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the cluster secret {}: {e}", path.display()))?;
        let secret = bytes.trim_ascii().to_vec();
        PeerAuth::with_secret(cluster_id, secret).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The secret, if there is one (for the stream handshake; never logged).
    pub(crate) fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    /// Whether requests must prove the secret.
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// The headers of a request from `from` to `to` on `path` with `body`, sent at `now_ms`.
    pub fn sign(
        &self,
        from: &NodeId,
        to: &NodeId,
        path: &str,
        now_ms: u64,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let time = now_ms.to_string();
        let mut headers = vec![
            (CLUSTER_HEADER, self.cluster_id.clone()),
            (FROM_HEADER, from.0.clone()),
            (TO_HEADER, to.0.clone()),
            (TIME_HEADER, time.clone()),
        ];
        if let Some(mac) = self.mac(&from.0, &to.0, &time, path, body) {
            let tag = mac.finalize().into_bytes();
            headers.push((
                MAC_HEADER,
                base64::engine::general_purpose::STANDARD.encode(tag),
            ));
        }
        headers
    }

    /// Checks a request that reached node `me` (`None`: any addressee, for a router that
    /// does not know its node) on `path`; returns the authenticated sender.
    pub fn verify(
        &self,
        me: Option<&NodeId>,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<NodeId, AuthError> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let from = get(FROM_HEADER).unwrap_or("");
        let checked = self.check(me, path, &get, from, body, now_ms);
        if let Err(e) = &checked {
            self.log_once(from, e);
        }
        checked.map(|()| NodeId(from.to_string()))
    }

    fn check<'h>(
        &self,
        me: Option<&NodeId>,
        path: &str,
        get: &impl Fn(&str) -> Option<&'h str>,
        from: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        if get(CLUSTER_HEADER) != Some(self.cluster_id.as_str()) {
            return Err(AuthError::Forbidden("another cluster"));
        }
        let to = get(TO_HEADER).unwrap_or("");
        if me.is_some_and(|me| me.0 != to) {
            return Err(AuthError::Forbidden("addressed to another node"));
        }
        if from.is_empty() {
            return Err(AuthError::Forbidden("no sender"));
        }
        let Some(time) = get(TIME_HEADER) else {
            return Err(AuthError::Unauthenticated("no time"));
        };
        let Some(mac) = self.mac(from, to, time, path, body) else {
            return Ok(()); // No secret: the ids are all there is to check.
        };
        let sent: u64 = time
            .parse()
            .map_err(|_| AuthError::Unauthenticated("a malformed time"))?;
        if sent.abs_diff(now_ms) > MAX_CLOCK_SKEW_MS {
            return Err(AuthError::Unauthenticated("a time outside the window"));
        }
        let tag = get(MAC_HEADER)
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .ok_or(AuthError::Unauthenticated("no MAC"))?;
        // Constant time: the comparison says nothing about how much of a guess was right.
        mac.verify_slice(&tag)
            .map_err(|_| AuthError::Unauthenticated("a wrong MAC"))
    }

    /// The MAC state over a request's fields, if there is a secret.
    fn mac(&self, from: &str, to: &str, time: &str, path: &str, body: &[u8]) -> Option<HmacSha256> {
        let secret = self.secret.as_ref()?;
        let mut mac = HmacSha256::new_from_slice(secret).ok()?;
        mac.update(&signed_bytes(&self.cluster_id, from, to, time, path));
        mac.update(body);
        Some(mac)
    }

    /// Logs refusal `e` of a request or connection claiming to be from `from`, once per
    /// claimed sender and reason.
    pub(crate) fn log_once(&self, from: &str, e: &AuthError) {
        let kind = match e {
            AuthError::Unauthenticated(k) | AuthError::Forbidden(k) => *k,
        };
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        // The claimed id is the sender's to choose: logged quoted and escaped (`?`), so it
        // cannot forge log lines.
        if logged.len() < MAX_LOGGED && logged.insert((from.to_string(), kind)) {
            tracing::warn!(claimed_from = ?from, error = %e, "refused a raft request or connection (logged once per sender and reason)");
        }
    }
}

/// What the MAC covers before the body: a version tag, then the cluster id, sender, addressee,
/// time and route, each followed by a zero byte (ids and routes hold no zero byte, so the
/// fields cannot be shifted into one another).
pub fn signed_bytes(cluster: &str, from: &str, to: &str, time: &str, path: &str) -> Vec<u8> {
    let mut out = b"raftkv-peer-v1\0".to_vec();
    for field in [cluster, from, to, time, path] {
        out.extend_from_slice(field.as_bytes());
        out.push(0);
    }
    out
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    fn id(s: &str) -> NodeId {
        NodeId(s.to_string())
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn secret(s: &str) -> PeerAuth {
        PeerAuth::with_secret("c1", s.as_bytes().to_vec()).unwrap()
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_signed_request_verifies_and_names_its_sender() {
        let a = secret("0123456789abcdef");
        let h = headers(&a.sign(&id("n1"), &id("n2"), "/raft/x", NOW, b"body"));
        assert_eq!(
            a.verify(Some(&id("n2")), "/raft/x", &h, b"body", NOW + 5),
            Ok(id("n1"))
        );
    }

    #[test]
    fn any_change_to_a_signed_request_is_refused() {
        let a = secret("0123456789abcdef");
        let signed = a.sign(&id("n1"), &id("n2"), "/raft/x", NOW, b"body");
        let h = headers(&signed);
        let bad = |r: Result<NodeId, AuthError>| assert!(r.is_err(), "{r:?}");
        bad(a.verify(Some(&id("n2")), "/raft/x", &h, b"bodY", NOW));
        bad(a.verify(Some(&id("n2")), "/raft/y", &h, b"body", NOW));
        bad(a.verify(Some(&id("n3")), "/raft/x", &h, b"body", NOW));
        bad(a.verify(
            Some(&id("n2")),
            "/raft/x",
            &h,
            b"body",
            NOW + MAX_CLOCK_SKEW_MS + 1,
        ));
        let mut forged = signed.clone();
        forged[1].1 = "n3".into(); // Another claimed sender under the same MAC.
        bad(a.verify(Some(&id("n2")), "/raft/x", &headers(&forged), b"body", NOW));
        let unsigned: Vec<_> = signed
            .iter()
            .filter(|(k, _)| *k != MAC_HEADER)
            .cloned()
            .collect();
        assert_eq!(
            a.verify(
                Some(&id("n2")),
                "/raft/x",
                &headers(&unsigned),
                b"body",
                NOW
            ),
            Err(AuthError::Unauthenticated("no MAC"))
        );
        let other = secret("fedcba9876543210");
        let h2 = headers(&other.sign(&id("n1"), &id("n2"), "/raft/x", NOW, b"body"));
        assert_eq!(
            a.verify(Some(&id("n2")), "/raft/x", &h2, b"body", NOW),
            Err(AuthError::Unauthenticated("a wrong MAC"))
        );
    }

    #[test]
    fn without_a_secret_only_the_ids_are_checked() {
        let a = PeerAuth::open("c1");
        let h = headers(&a.sign(&id("n1"), &id("n2"), "/raft/x", NOW, b"body"));
        assert!(!h.contains_key(MAC_HEADER));
        assert_eq!(
            a.verify(Some(&id("n2")), "/raft/x", &h, b"other", NOW),
            Ok(id("n1"))
        );
        let b = PeerAuth::open("c2");
        assert_eq!(
            b.verify(Some(&id("n2")), "/raft/x", &h, b"body", NOW),
            Err(AuthError::Forbidden("another cluster"))
        );
        assert_eq!(
            a.verify(Some(&id("n2")), "/raft/x", &HeaderMap::new(), b"body", NOW),
            Err(AuthError::Forbidden("another cluster"))
        );
    }

    #[test]
    fn short_secrets_are_refused_and_files_are_trimmed() {
        assert!(PeerAuth::with_secret("c", b"short".to_vec()).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        let from_file = PeerAuth::from_file("c1", &path).unwrap();
        let h = headers(&secret("0123456789abcdef").sign(&id("n1"), &id("n2"), "/p", NOW, b""));
        assert_eq!(
            from_file.verify(Some(&id("n2")), "/p", &h, b"", NOW),
            Ok(id("n1"))
        );
        assert!(format!("{from_file:?}").contains("<set>"));
        assert!(!format!("{from_file:?}").contains("0123"));
    }
}
