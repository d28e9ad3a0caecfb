//! The KV state machine: a map from string keys to string values with per-client deduplication.
//!
//! Deterministic by construction: ordered maps, no clock, no randomness. The snapshot is JSON of
//! ordered maps, so equal states serialize to equal bytes.
//!
//! Thread safety is the host's business: a host that shares one machine between tasks wraps it
//! in a mutex; core never does (it has no threads).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state_machine::{SnapshotError, StateMachine};
use crate::types::{ApplyResult, Command, OpType};

/// What the state machine remembers of a client: its last applied operation and the reply it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeRecord {
    /// The highest seq applied for this client.
    pub last_seq: u64,
    /// The reply to that operation, returned unchanged to any retry with seq <= last_seq.
    pub last_reply: ApplyResult,
}

/// The whole state as it is snapshotted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    kv: BTreeMap<String, String>,
    dedupe: BTreeMap<String, DedupeRecord>,
}

/// The replicated key-value store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    state: Snapshot,
}

impl KvStateMachine {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `cmd`. A command whose `(client_id, seq)` was already applied (seq at or below the
    /// client's last) changes nothing and gets the client's last stored reply, unchanged.
    pub fn apply(&mut self, cmd: &Command) -> ApplyResult {
        let dedupe = !cmd.client_id.is_empty() && cmd.seq != 0;
        if dedupe
            && let Some(rec) = self.state.dedupe.get(&cmd.client_id)
            && rec.last_seq >= cmd.seq
        {
            return rec.last_reply.clone();
        }
        let reply = match cmd.validate() {
            Err(e) => ApplyResult::error("bad_request", e.0),
            Ok(()) => self.apply_valid(cmd),
        };
        if dedupe {
            self.state.dedupe.insert(
                cmd.client_id.clone(),
                DedupeRecord {
                    last_seq: cmd.seq,
                    last_reply: reply.clone(),
                },
            );
        }
        reply
    }

    fn apply_valid(&mut self, cmd: &Command) -> ApplyResult {
        let kv = &mut self.state.kv;
        match cmd.op {
            OpType::Put => {
                kv.insert(cmd.key.clone(), cmd.value.clone());
                ApplyResult::ok()
            }
            OpType::Delete => ApplyResult::deleted(u64::from(kv.remove(&cmd.key).is_some())),
            OpType::Cas => {
                let current = kv.get(&cmd.key).map(String::as_str).unwrap_or("");
                if current == cmd.expected {
                    kv.insert(cmd.key.clone(), cmd.value.clone());
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
                    kv.insert(e.key.clone(), e.value.clone());
                }
                ApplyResult::ok()
            }
            OpType::BatchDelete => {
                let n = cmd.keys.iter().filter(|k| kv.remove(*k).is_some()).count();
                ApplyResult::deleted(n as u64)
            }
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

    /// The highest seq applied for `client_id`, if any.
    pub fn last_seen(&self, client_id: &str) -> Option<u64> {
        self.state.dedupe.get(client_id).map(|r| r.last_seq)
    }

    /// The whole state (kv and dedupe table) as stable JSON.
    pub fn snapshot(&self) -> Vec<u8> {
        // Serializing ordered maps of strings cannot fail.
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    /// Replaces kv and the dedupe table with a snapshot's. On error nothing changes.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        self.state = Self::decode_snapshot(data)?;
        Ok(())
    }

    fn decode_snapshot(data: &[u8]) -> Result<Snapshot, SnapshotError> {
        serde_json::from_slice(data).map_err(|e| SnapshotError(e.to_string()))
    }
}

impl StateMachine for KvStateMachine {
    type Command = Command;
    type Reply = ApplyResult;

    fn apply(&mut self, cmd: &Command) -> ApplyResult {
        KvStateMachine::apply(self, cmd)
    }
    fn snapshot(&self) -> Vec<u8> {
        KvStateMachine::snapshot(self)
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        KvStateMachine::restore(self, data)
    }
    fn check_snapshot(data: &[u8]) -> Result<(), SnapshotError> {
        KvStateMachine::decode_snapshot(data).map(drop)
    }
    fn command_size(cmd: &Command) -> u64 {
        cmd.size_bytes()
    }
}
