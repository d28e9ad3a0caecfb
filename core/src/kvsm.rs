//! The KV state machine: a map from string keys to string values with per-client sessions that
//! deduplicate retried writes.
//!
//! The rules live in [`apply_command`] and [`expire_sessions`], written once over a
//! [`KvBackend`] (where keys and sessions are kept), so every engine applies exactly the same
//! way: the in-memory [`KvStateMachine`] here (core, the simulator, the playground) and
//! kvserver's on-disk engine, which runs them inside one write transaction per batch.
//!
//! Deterministic by construction: ordered maps, no clock but the log's (each entry's
//! [`time`](crate::raft::LogEntry::time)), no randomness. Thread safety is the host's business.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::ops::Bound;

use crate::kvsnap::{Decoder, Encoder, Header, Record};
use crate::raft::{Index, Millis};
use crate::state_machine::{ApplyEntry, SmError, SnapshotError, SnapshotView, StateMachine};
use crate::types::{ApplyResult, Command, OpType};

pub use crate::kvsnap::Session;

/// The old name of [`Session`].
pub type DedupeRecord = Session;

/// The error code of a write from a session the store no longer knows.
pub const SESSION_EXPIRED: &str = "session_expired";

/// How long client sessions live and how many are kept. Every replica must use the same
/// limits (they decide which sessions an entry expires).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionLimits {
    /// A session idle for longer than this, in log time, is dropped; 0: never.
    pub ttl: Millis,
    /// At most this many sessions are kept (the least recently active go first); 0: no cap.
    pub max: u64,
}

/// Where an engine keeps keys and sessions. The rules over it are [`apply_command`] and
/// [`expire_sessions`]. Errors are the engine's storage failing.
pub trait KvBackend {
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<String>, SmError>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: &str, value: &str) -> Result<(), SmError>;
    /// Removes `key`; whether it was there.
    fn remove(&mut self, key: &str) -> Result<bool, SmError>;
    /// The session of `client_id`.
    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError>;
    /// Stores `client_id`'s session, replacing any. The backend keeps sessions findable by
    /// `(last_time, client_id)` for [`oldest_session`](Self::oldest_session).
    fn put_session(&mut self, client_id: &str, s: &Session) -> Result<(), SmError>;
    /// Drops `client_id`'s session.
    fn remove_session(&mut self, client_id: &str) -> Result<(), SmError>;
    /// The least recently active session: the smallest `(last_time, client_id)`.
    fn oldest_session(&self) -> Result<Option<(String, Session)>, SmError>;
    /// How many sessions are stored.
    fn session_count(&self) -> Result<u64, SmError>;
}

/// Drops the sessions idle for longer than `limits.ttl` at log time `now`, then the least
/// recently active ones while more than `limits.max` remain. Returns how many it dropped.
pub fn expire_sessions(
    b: &mut impl KvBackend,
    limits: &SessionLimits,
    now: Millis,
) -> Result<u64, SmError> {
    let mut dropped = 0;
    let mut count = b.session_count()?;
    while count > 0 {
        let Some((id, s)) = b.oldest_session()? else {
            break;
        };
        let idle_too_long = limits.ttl > 0 && now.saturating_sub(s.last_time) > limits.ttl;
        let too_many = limits.max > 0 && count > limits.max;
        if !idle_too_long && !too_many {
            break;
        }
        b.remove_session(&id)?;
        count -= 1;
        dropped += 1;
    }
    Ok(dropped)
}

/// Applies `cmd` at log time `now`. A command whose `(client_id, seq)` was already applied (seq
/// at or below the session's last) changes nothing and gets the session's last reply,
/// unchanged. A command with seq above 1 from a client the store has no session for is refused
/// with [`SESSION_EXPIRED`] and changes nothing: its session may have expired after an earlier
/// try applied, so applying it could apply it twice. Commands without a client id or with seq
/// 0 are not deduplicated.
pub fn apply_command(
    b: &mut impl KvBackend,
    now: Millis,
    cmd: &Command,
) -> Result<ApplyResult, SmError> {
    let dedupe = !cmd.client_id.is_empty() && cmd.seq != 0;
    if dedupe {
        match b.session(&cmd.client_id)? {
            Some(s) if s.last_seq >= cmd.seq => return Ok(s.last_reply),
            None if cmd.seq > 1 => {
                return Ok(ApplyResult::error(
                    SESSION_EXPIRED,
                    format!(
                        "client {:?} has no session here (it expired or never started): start a \
                         new session (a new client id, seq 1)",
                        cmd.client_id
                    ),
                ));
            }
            _ => {}
        }
    }
    let reply = match cmd.validate() {
        Err(e) => ApplyResult::error("bad_request", e.0),
        Ok(()) => apply_valid(b, cmd)?,
    };
    if dedupe {
        let s = Session {
            last_seq: cmd.seq,
            last_reply: reply.clone(),
            last_time: now,
        };
        b.put_session(&cmd.client_id, &s)?;
    }
    Ok(reply)
}

fn apply_valid(b: &mut impl KvBackend, cmd: &Command) -> Result<ApplyResult, SmError> {
    Ok(match cmd.op {
        OpType::Put => {
            b.put(&cmd.key, &cmd.value)?;
            ApplyResult::ok()
        }
        OpType::Delete => ApplyResult::deleted(u64::from(b.remove(&cmd.key)?)),
        OpType::Cas => {
            let current = b.get(&cmd.key)?.unwrap_or_default();
            if current == cmd.expected {
                b.put(&cmd.key, &cmd.value)?;
                ApplyResult::ok()
            } else {
                ApplyResult::error(
                    "cas_failed",
                    format!("current value of {:?} is not the expected value", cmd.key),
                )
            }
        }
        OpType::BatchPut => {
            for e in &cmd.entries {
                b.put(&e.key, &e.value)?;
            }
            ApplyResult::ok()
        }
        OpType::BatchDelete => {
            let mut n = 0;
            for k in &cmd.keys {
                n += u64::from(b.remove(k)?);
            }
            ApplyResult::deleted(n)
        }
    })
}

/// Keys and sessions in ordered maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MemBackend {
    kv: BTreeMap<String, String>,
    sessions: BTreeMap<String, Session>,
    /// Invariant: exactly the `(last_time, client_id)` of every entry of `sessions`.
    by_time: BTreeSet<(Millis, String)>,
}

impl KvBackend for MemBackend {
    fn get(&self, key: &str) -> Result<Option<String>, SmError> {
        Ok(self.kv.get(key).cloned())
    }
    fn put(&mut self, key: &str, value: &str) -> Result<(), SmError> {
        self.kv.insert(key.to_string(), value.to_string());
        Ok(())
    }
    fn remove(&mut self, key: &str) -> Result<bool, SmError> {
        Ok(self.kv.remove(key).is_some())
    }
    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError> {
        Ok(self.sessions.get(client_id).cloned())
    }
    fn put_session(&mut self, client_id: &str, s: &Session) -> Result<(), SmError> {
        if let Some(old) = self.sessions.insert(client_id.to_string(), s.clone()) {
            self.by_time.remove(&(old.last_time, client_id.to_string()));
        }
        self.by_time.insert((s.last_time, client_id.to_string()));
        debug_assert_eq!(self.by_time.len(), self.sessions.len());
        Ok(())
    }
    fn remove_session(&mut self, client_id: &str) -> Result<(), SmError> {
        if let Some(old) = self.sessions.remove(client_id) {
            self.by_time.remove(&(old.last_time, client_id.to_string()));
        }
        debug_assert_eq!(self.by_time.len(), self.sessions.len());
        Ok(())
    }
    fn oldest_session(&self) -> Result<Option<(String, Session)>, SmError> {
        Ok(self
            .by_time
            .first()
            .and_then(|(_, id)| self.sessions.get(id).map(|s| (id.clone(), s.clone()))))
    }
    fn session_count(&self) -> Result<u64, SmError> {
        Ok(self.sessions.len() as u64)
    }
}

/// The replicated key-value store, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    state: MemBackend,
    /// The last entry applied.
    applied: Index,
    /// The largest entry time applied so far: the clock sessions expire by. Leaders' clocks
    /// differ, so entry times can go back; the log time never does.
    log_time: Millis,
    limits: SessionLimits,
    /// A deliberate break: sessions expire by this clock (the host's own) instead of the log's.
    #[cfg(feature = "protocol-breaks")]
    local_clock: Option<LocalClock>,
}

/// The host's clock reading, shared with the host, for the `protocol-breaks` switch
/// [`KvStateMachine::expire_by_local_clock`]: every replica then expires sessions by its own
/// clock, at its own index.
#[cfg(feature = "protocol-breaks")]
#[derive(Clone, Debug, Default)]
pub struct LocalClock(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

#[cfg(feature = "protocol-breaks")]
impl LocalClock {
    /// Sets the reading.
    pub fn set(&self, now: Millis) {
        self.0.store(now, std::sync::atomic::Ordering::Relaxed);
    }
    fn get(&self) -> Millis {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(feature = "protocol-breaks")]
impl PartialEq for LocalClock {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(feature = "protocol-breaks")]
impl Eq for LocalClock {}

impl KvStateMachine {
    /// An empty store whose sessions never expire.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with these session limits.
    pub fn with_limits(limits: SessionLimits) -> Self {
        KvStateMachine {
            limits,
            ..Self::default()
        }
    }

    /// The session limits.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Breaks the store on purpose (`protocol-breaks` only): sessions expire by `clock`, the
    /// host's own clock, instead of the log time, so replicas disagree about which sessions
    /// an entry expires.
    #[cfg(feature = "protocol-breaks")]
    pub fn expire_by_local_clock(&mut self, clock: LocalClock) {
        self.local_clock = Some(clock);
    }

    /// Applies `cmd` at the current log time, outside the log (tests, and the playground's
    /// what-if views). Does not move the applied index.
    pub fn apply(&mut self, cmd: &Command) -> ApplyResult {
        // The in-memory backend never fails.
        apply_command(&mut self.state, self.log_time, cmd)
            .unwrap_or_else(|e| ApplyResult::error("internal", e.0))
    }

    /// Applies one entry: the log time moves to `time` (never back), expired sessions go,
    /// then `cmd` applies.
    fn apply_entry(&mut self, index: Index, time: Millis, cmd: Option<&Command>) -> ApplyResult {
        debug_assert!(index > self.applied, "entries apply once, in order");
        self.applied = index;
        self.log_time = self.log_time.max(time);
        #[cfg_attr(not(feature = "protocol-breaks"), allow(unused_mut))]
        let mut now = self.log_time;
        #[cfg(feature = "protocol-breaks")]
        if let Some(c) = &self.local_clock {
            now = c.get();
        }
        // The in-memory backend never fails.
        let _ = expire_sessions(&mut self.state, &self.limits, now);
        match cmd {
            Some(c) => self.apply(c),
            None => ApplyResult::ok(),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<String> {
        self.state.kv.get(key).cloned()
    }

    /// The values of those `keys` that are present.
    pub fn mget<S: AsRef<str>>(&self, keys: &[S]) -> BTreeMap<String, String> {
        keys.iter()
            .filter_map(|k| {
                let k = k.as_ref();
                self.state.kv.get(k).map(|v| (k.to_string(), v.clone()))
            })
            .collect()
    }

    /// Up to `limit` keys and values in key order, from `start` (inclusive) to `end`
    /// (exclusive; `None`: to the last key).
    pub fn range(&self, start: &str, end: Option<&str>, limit: usize) -> Vec<(String, String)> {
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        if end.is_some_and(|e| e <= start) {
            return Vec::new();
        }
        self.state
            .kv
            .range::<str, _>((Bound::Included(start), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A copy of every key and value, in key order.
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.state.kv.clone()
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.state.kv.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.state.kv.is_empty()
    }

    /// The highest seq applied for `client_id`, if its session is known.
    pub fn last_seen(&self, client_id: &str) -> Option<u64> {
        self.state.sessions.get(client_id).map(|r| r.last_seq)
    }

    /// How many client sessions are kept.
    pub fn session_count(&self) -> usize {
        self.state.sessions.len()
    }

    /// The client sessions, by client id.
    pub fn sessions(&self) -> &BTreeMap<String, Session> {
        &self.state.sessions
    }

    /// The log time: the largest entry time applied.
    pub fn log_time(&self) -> Millis {
        self.log_time
    }

    /// The whole state in the snapshot format ([`kvsnap`](crate::kvsnap)).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = Box::new(self.view()).write_to(&mut out);
        out
    }

    /// Replaces keys and sessions with a snapshot's (the applied index becomes the
    /// snapshot's). On error nothing changes.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        let (header, state) = decode(&mut &data[..])?;
        self.state = state;
        self.applied = header.index;
        self.log_time = header.log_time;
        Ok(())
    }

    fn view(&self) -> MemView {
        MemView {
            header: Header {
                index: self.applied,
                log_time: self.log_time,
            },
            state: self.state.clone(),
        }
    }
}

/// Reads a whole snapshot into a backend.
fn decode(data: &mut dyn Read) -> Result<(Header, MemBackend), SnapshotError> {
    let mut d = Decoder::new(data)?;
    let mut state = MemBackend::default();
    while let Some(r) = d.next()? {
        match r {
            Record::Session(id, s) => {
                state.by_time.insert((s.last_time, id.clone()));
                state.sessions.insert(id, s);
            }
            Record::Kv(k, v) => {
                state.kv.insert(k, v);
            }
        }
    }
    Ok((d.header(), state))
}

/// A snapshot's header must be at the index Raft's metadata gives it.
pub fn check_index(header: Header, index: Index) -> Result<(), SnapshotError> {
    if header.index == index {
        Ok(())
    } else {
        Err(SnapshotError(format!(
            "the snapshot is at index {}, not {index}",
            header.index
        )))
    }
}

/// A copy of the state, for writing out while the machine goes on applying.
struct MemView {
    header: Header,
    state: MemBackend,
}

impl SnapshotView for MemView {
    fn index(&self) -> Index {
        self.header.index
    }

    fn write_to(self: Box<Self>, w: &mut dyn Write) -> Result<(), SmError> {
        let mut e = Encoder::new(w, self.header)?;
        for (id, s) in &self.state.sessions {
            e.session(id, s)?;
        }
        for (k, v) in &self.state.kv {
            e.kv(k, v)?;
        }
        e.finish().map(drop)
    }
}

impl StateMachine for KvStateMachine {
    type Command = Command;
    type Reply = ApplyResult;

    fn apply_batch(
        &mut self,
        entries: &[ApplyEntry<'_, Command>],
    ) -> Result<Vec<ApplyResult>, SmError> {
        let mut replies = Vec::with_capacity(entries.len());
        for e in entries {
            let reply = self.apply_entry(e.index, e.time, e.cmd);
            if e.cmd.is_some() {
                replies.push(reply);
            }
        }
        Ok(replies)
    }
    fn applied_index(&self) -> Index {
        self.applied
    }
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError> {
        Ok(Box::new(self.view()))
    }
    fn install(&mut self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        let (header, state) = decode(data)?;
        check_index(header, index)?;
        self.state = state;
        self.applied = index;
        self.log_time = header.log_time;
        Ok(())
    }
    fn check_snapshot(index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        let mut d = Decoder::new(data)?;
        check_index(d.header(), index)?;
        d.check_rest()
    }
    fn command_size(cmd: &Command) -> u64 {
        cmd.size_bytes()
    }
}
