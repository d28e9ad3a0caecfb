//! A checker for reads served from a node's own state machine: a read answered by node `n`
//! whose state machine had applied up to index `A` when it answered must return the value its
//! key had after the committed log's entries `1..=A`, and `A` must be at least the read's
//! `min_index` (read-your-writes: the client's own acknowledged write).
//!
//! This holds for every read the simulator serves — stale, min_index, readindex and lease —
//! since all of them read the serving node's state machine; it matters most for the stale and
//! min_index reads, which the linearizability check leaves out. It needs one log for the whole
//! cluster: by state machine safety every node applies the same entry at each index, so the
//! simulator records each index the first time any node applies it ([`CommittedLog`]), and the
//! invariant checker separately makes sure no node applies a different one there.
//!
//! The committed log is replayed on a model of the key-value store written for this checker
//! (put, delete, cas, batch put and delete, with the per-client dedupe of `(client_id, seq)`
//! and the session limits: sessions idle longer than the ttl in log time, then the oldest over
//! the cap, go before each entry, and a write above seq 1 from an unknown session changes
//! nothing), not on the store itself, so a store that served the wrong value is not its own
//! judge.

use std::collections::BTreeMap;
use std::fmt;

use super::history::{History, HistoryOp, OpKind, OpStatus};
use crate::kvraft::{LogEntry, Payload};
use crate::kvsm::SessionLimits;
use crate::raft::{Index, Millis, Term};
use crate::types::{Command, OpType};

/// The committed entries, as the nodes applied them: index `i` at position `i - 1`.
#[derive(Clone, Debug, Default)]
pub struct CommittedLog {
    /// Invariant: `entries[k]`, when present, is the entry of index `k + 1`; an absent one was
    /// never applied by any node individually (which a served read then cannot rely on).
    entries: Vec<Option<(Term, Payload)>>,
    /// Each recorded entry's time (the leader's clock when proposed), by the same position.
    times: Vec<Millis>,
}

impl CommittedLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// An entry some node is applying. The first record of an index stands (another term at
    /// the same index is the invariant checker's business: state machine safety).
    pub fn record(&mut self, e: &LogEntry) {
        let Some(slot) = e.index.checked_sub(1).map(|k| k as usize) else {
            return;
        };
        if slot >= self.entries.len() {
            self.entries.resize(slot + 1, None);
            self.times.resize(slot + 1, 0);
        }
        if self.entries[slot].is_none() {
            self.entries[slot] = Some((e.term, e.payload.clone()));
            self.times[slot] = e.time;
        }
    }

    /// The highest index recorded.
    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    /// The entry recorded at `index`.
    pub fn get(&self, index: Index) -> Option<(Term, &Payload)> {
        let slot = index.checked_sub(1)? as usize;
        self.entries.get(slot)?.as_ref().map(|(t, p)| (*t, p))
    }

    /// The time of the entry recorded at `index` (0 if none).
    pub fn time_at(&self, index: Index) -> Millis {
        index
            .checked_sub(1)
            .and_then(|k| self.times.get(k as usize).copied())
            .unwrap_or(0)
    }
}

/// The model's client sessions: `client_id -> (last seq, last time)`.
#[derive(Default)]
struct Sessions {
    limits: SessionLimits,
    by_id: BTreeMap<String, (u64, Millis)>,
    log_time: Millis,
}

impl Sessions {
    /// Before the entry of time `time`: the log time moves forward, and the sessions idle for
    /// longer than the ttl go, then the least recently active (by time, then id) over the cap.
    fn expire(&mut self, time: Millis) {
        self.log_time = self.log_time.max(time);
        let (now, ttl) = (self.log_time, self.limits.ttl);
        if ttl > 0 {
            self.by_id.retain(|_, (_, t)| now.saturating_sub(*t) <= ttl);
        }
        let max = self.limits.max as usize;
        if max > 0 && self.by_id.len() > max {
            let mut by_age: Vec<(Millis, String)> = self
                .by_id
                .iter()
                .map(|(id, (_, t))| (*t, id.clone()))
                .collect();
            by_age.sort();
            for (_, id) in by_age.into_iter().take(self.by_id.len() - max) {
                self.by_id.remove(&id);
            }
        }
    }
}

/// Why a served read is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The node answered before applying the client's own write.
    BelowMinIndex {
        /// The read.
        op: Box<HistoryOp>,
    },
    /// The value is not what the committed log holds at the node's applied index.
    WrongValue {
        /// The read.
        op: Box<HistoryOp>,
        /// What the committed log holds for the key there (`None`: missing).
        expected: Option<String>,
    },
    /// The read was served at an applied index the simulator never saw applied.
    NotInLog {
        /// The read.
        op: Box<HistoryOp>,
        /// The first index missing from the recorded log.
        missing: Index,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::BelowMinIndex { op } => write!(
                f,
                "a read was served below its min_index: {}",
                op.to_json_line()
            ),
            ReadError::WrongValue { op, expected } => write!(
                f,
                "a read returned another value than the committed log's at its applied index \
                 (expected {expected:?}): {}",
                op.to_json_line()
            ),
            ReadError::NotInLog { op, missing } => write!(
                f,
                "a read was served at an applied index whose entry {missing} nobody applied: {}",
                op.to_json_line()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Each key's values along the committed log: `(index, value after it)` at every change.
struct Timeline {
    by_key: BTreeMap<String, Vec<(Index, Option<String>)>>,
    /// The first index not recorded (every index below it is).
    recorded_upto: Index,
}

impl Timeline {
    fn replay(log: &CommittedLog, limits: SessionLimits) -> Self {
        let mut kv: BTreeMap<String, String> = BTreeMap::new();
        let mut sessions = Sessions {
            limits,
            ..Sessions::default()
        };
        let mut by_key: BTreeMap<String, Vec<(Index, Option<String>)>> = BTreeMap::new();
        let mut index = 0;
        while let Some((_, payload)) = log.get(index + 1) {
            index += 1;
            sessions.expire(log.time_at(index));
            let Payload::Command(cmd) = payload else {
                continue;
            };
            for (key, value) in model_apply(&mut kv, &mut sessions, cmd) {
                by_key.entry(key).or_default().push((index, value));
            }
        }
        Timeline {
            by_key,
            recorded_upto: index + 1,
        }
    }

    /// The key's value after entries `1..=index`.
    fn value_at(&self, key: &str, index: Index) -> Option<String> {
        let changes = self.by_key.get(key)?;
        let after = changes.partition_point(|(i, _)| *i <= index);
        after.checked_sub(1).and_then(|k| changes[k].1.clone())
    }
}

/// Applies `cmd` to the model; returns the keys it changed with their new values.
fn model_apply(
    kv: &mut BTreeMap<String, String>,
    sessions: &mut Sessions,
    cmd: &Command,
) -> Vec<(String, Option<String>)> {
    let tracked = !cmd.client_id.is_empty() && cmd.seq != 0;
    if tracked {
        match sessions.by_id.get(&cmd.client_id) {
            Some((last, _)) if *last >= cmd.seq => return Vec::new(),
            // An unknown session's write above seq 1 is refused (session_expired).
            None if cmd.seq > 1 => return Vec::new(),
            _ => {}
        }
        let now = sessions.log_time;
        sessions.by_id.insert(cmd.client_id.clone(), (cmd.seq, now));
    }
    if cmd.validate().is_err() {
        return Vec::new();
    }
    let changes: Vec<(&str, Option<&str>)> = match cmd.op {
        OpType::Put => vec![(&cmd.key, Some(&cmd.value))],
        OpType::Delete => vec![(&cmd.key, None)],
        OpType::Cas if kv.get(&cmd.key).map_or("", String::as_str) == cmd.expected => {
            vec![(&cmd.key, Some(&cmd.value))]
        }
        OpType::Cas => Vec::new(),
        OpType::BatchPut => cmd
            .entries
            .iter()
            .map(|e| (e.key.as_str(), Some(e.value.as_str())))
            .collect(),
        OpType::BatchDelete => cmd.keys.iter().map(|k| (k.as_str(), None)).collect(),
    };
    changes
        .into_iter()
        .map(|(k, v)| {
            match v {
                Some(v) => kv.insert(k.to_string(), v.to_string()),
                None => kv.remove(k),
            };
            (k.to_string(), v.map(str::to_string))
        })
        .collect()
}

/// Checks every answered read of `history` that says where it was served (`applied`) against
/// `log`; reads without that (from another history writer) are skipped. Sessions never
/// expire (see [`check_with_limits`]).
pub fn check(history: &History, log: &CommittedLog) -> Result<(), ReadError> {
    check_with_limits(history, log, SessionLimits::default())
}

/// [`check`] for a store whose sessions expire under `limits`.
pub fn check_with_limits(
    history: &History,
    log: &CommittedLog,
    limits: SessionLimits,
) -> Result<(), ReadError> {
    let timeline = Timeline::replay(log, limits);
    for op in &history.ops {
        if op.op != OpKind::Get || op.status != OpStatus::Ok {
            continue;
        }
        let Some(applied) = op.applied else {
            continue;
        };
        if op.min_index.is_some_and(|m| applied < m) {
            return Err(ReadError::BelowMinIndex {
                op: Box::new(op.clone()),
            });
        }
        if applied >= timeline.recorded_upto {
            return Err(ReadError::NotInLog {
                op: Box::new(op.clone()),
                missing: timeline.recorded_upto,
            });
        }
        let expected = timeline.value_at(&op.key, applied);
        if op.value.as_ref() != Some(&expected) {
            return Err(ReadError::WrongValue {
                op: Box::new(op.clone()),
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::client::ClientOp;
    use crate::types::ReadPolicy;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn entry(index: Index, payload: Payload) -> LogEntry {
        LogEntry {
            index,
            term: 1,
            payload,
            time: 0,
        }
    }

    fn cmd(c: Command, client: &str, seq: u64) -> Payload {
        Payload::Command(c.with_client(client, seq))
    }

    /// 1: no-op, 2: put k=a, 3: retried put k=a (deduped), 4: cas k a->b, 5: cas k a->c
    /// (fails), 6: delete k.
    fn log() -> CommittedLog {
        let mut log = CommittedLog::new();
        for e in [
            entry(1, Payload::Noop),
            entry(2, cmd(Command::put("k", "a"), "c1", 1)),
            entry(3, cmd(Command::put("k", "a"), "c1", 1)),
            entry(4, cmd(Command::cas("k", "a", "b"), "c2", 1)),
            entry(5, cmd(Command::cas("k", "a", "c"), "c1", 2)),
            entry(6, cmd(Command::delete("k"), "c1", 3)),
        ] {
            log.record(&e);
            log.record(&e);
        }
        log
    }

    fn read(value: Option<&str>, applied: Index, min_index: Option<Index>) -> HistoryOp {
        let mut op = HistoryOp::from_op(
            "c3",
            &ClientOp::Get {
                key: "k".into(),
                policy: ReadPolicy::Stale,
            },
            0,
            Some(1),
            OpStatus::Ok,
            None,
            Some(value.map(str::to_string)),
        );
        op.node = Some("n2".into());
        op.applied = Some(applied);
        op.min_index = min_index;
        op
    }

    fn verdict(reads: Vec<HistoryOp>) -> Result<(), ReadError> {
        check(&History { ops: reads }, &log())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_at_each_applied_index_see_the_committed_value_there() {
        let reads = vec![
            read(None, 0, None),
            read(None, 1, None),
            read(Some("a"), 2, Some(2)),
            read(Some("a"), 3, None),
            read(Some("b"), 4, Some(4)),
            read(Some("b"), 5, None),
            read(None, 6, Some(6)),
        ];
        assert_eq!(verdict(reads), Ok(()));
        assert_eq!(log().last_index(), 6);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_value_from_another_index_is_caught() {
        let err = verdict(vec![read(Some("a"), 4, None)]).expect_err("b was committed at 4");
        assert!(
            matches!(&err, ReadError::WrongValue { expected: Some(v), .. } if v == "b"),
            "{err}"
        );
        // The failed cas at 5 changed nothing, so "c" was never there.
        let err = verdict(vec![read(Some("c"), 5, None)]).expect_err("cas failed");
        assert!(matches!(err, ReadError::WrongValue { .. }));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_read_served_before_the_clients_own_write_is_caught() {
        let err = verdict(vec![read(None, 1, Some(2))]).expect_err("below min_index");
        assert!(matches!(err, ReadError::BelowMinIndex { .. }), "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_read_served_beyond_what_was_applied_anywhere_is_caught() {
        let err = verdict(vec![read(None, 9, None)]).expect_err("index 7 never applied");
        assert!(
            matches!(err, ReadError::NotInLog { missing: 7, .. }),
            "{err}"
        );
        // Reads from another writer, without an applied index, are not judged.
        let mut other = read(Some("zzz"), 0, None);
        other.applied = None;
        assert_eq!(verdict(vec![other]), Ok(()));
    }
}
