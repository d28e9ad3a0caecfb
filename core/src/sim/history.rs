//! The client history: one record per operation, written as JSON lines.
//!
//! # Format
//!
//! One JSON object per line, one line per client operation, in completion order (operations
//! that never got an answer last). Fields:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `client` | string | the client, e.g. `"c1"` |
//! | `op` | string | `"put"`, `"get"`, `"delete"`, `"cas"`, or a multi-key operation: `"mput"`, `"mdelete"`, `"mget"` |
//! | `key` | string | the key; absent for multi-key operations |
//! | `keys` | array of strings | mdelete and mget only: the keys, each at most once |
//! | `entries` | object | mput only: key → value written (string), each key once |
//! | `values` | object | mget only, when answered: key → value read, `null` for a missing key; every key of `keys` appears |
//! | `value` | string or null | put: the value written; get: the value read, `null` when the key was missing (or when the read has no answer); absent for delete and cas |
//! | `expected` | string | cas only: the value compared with (`""` also matches a missing key) |
//! | `new` | string | cas only: the value written on a match |
//! | `result` | string | cas only, when answered: `"ok"` (swapped) or `"failed"` (no match) |
//! | `invoke` | integer | when the client started the operation (simulated ms; microseconds of one monotonic clock in real-cluster histories) |
//! | `complete` | integer or null | when the answer arrived; `null` without an answer |
//! | `status` | string | `"ok"` (answered), `"fail"` (surely not applied) or `"unknown"` (no answer; it may or may not have taken effect) |
//! | `stale` | bool | get only, present (`true`) when the read was served stale — from the serving node's state machine, without confirming leadership — so it need not be linearizable; absent for readindex and lease reads and writes |
//! | `index` | integer | put, delete and cas, when answered (`"ok"`) by the simulator: the log index of the entry whose applying answered it (for a retried write that the dedupe table answered, the retry's entry); absent otherwise |
//! | `node` | string | get, when answered by the simulator: the node that served it, e.g. `"n2"` |
//! | `applied` | integer | get, when answered by the simulator: the serving node's applied index when it answered; the value read must be the key's value after the committed log's entries up to it (checked by `committed_reads`) |
//! | `min_index` | integer | get, present for a read-your-writes read: the index of the client's own last acknowledged write before the read (0 if none); the serving node waited until `applied >= min_index` |
//!
//! `index`, `node`, `applied` and `min_index` are optional: histories written elsewhere (the
//! real-cluster test) have none of them, and the checkers skip what they need them for.
//!
//! Multi-key operations are atomic: an mput writes all its entries at one point in time, an
//! mdelete removes all its keys at one point, an mget reads all its keys at one point. The
//! simulator issues none; the real-cluster suite (`tests/src/jepsen.rs`) records them. `stale`
//! may mark an mget as it marks a get. The checkers check the keys that multi-key operations
//! tie together as one register set (one component per group of linked keys), every other key
//! on its own.
//!
//! Example:
//!
//! ```text
//! {"client":"c1","op":"put","key":"k1","value":"c1-1","invoke":12,"complete":30,"status":"ok","index":3}
//! {"client":"c2","op":"get","key":"k1","value":null,"invoke":14,"complete":25,"status":"ok","node":"n1","applied":2}
//! {"client":"c1","op":"get","key":"k1","value":"c1-1","invoke":31,"complete":44,"status":"ok","stale":true,"node":"n3","applied":3,"min_index":3}
//! {"client":"c2","op":"cas","key":"k1","expected":"c1-1","new":"c2-2","result":"failed","invoke":40,"complete":61,"status":"ok","index":5}
//! {"client":"c1","op":"delete","key":"k2","invoke":50,"complete":null,"status":"unknown"}
//! {"client":"c3","op":"mput","entries":{"a":"c3-1","b":"c3-1"},"invoke":60,"complete":70,"status":"ok"}
//! {"client":"c2","op":"mget","keys":["a","b"],"values":{"a":"c3-1","b":null},"invoke":62,"complete":68,"status":"ok"}
//! {"client":"c1","op":"mdelete","keys":["a","b"],"invoke":71,"complete":80,"status":"ok"}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::client::ClientOp;
use crate::raft::{Index, Millis};
use crate::types::{ApplyResult, ReadPolicy};

/// The kind of a recorded operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A write of a value.
    Put,
    /// A read.
    Get,
    /// A removal.
    Delete,
    /// A compare-and-set.
    Cas,
    /// An atomic write of several keys (`entries`).
    Mput,
    /// An atomic removal of several keys (`keys`).
    Mdelete,
    /// An atomic read of several keys (`keys`, answered with `values`).
    Mget,
}

impl OpKind {
    /// Whether the operation names several keys (`keys` / `entries`) instead of one `key`.
    pub fn is_multi(self) -> bool {
        matches!(self, OpKind::Mput | OpKind::Mdelete | OpKind::Mget)
    }

    /// Whether the operation reads (get, mget) rather than writes.
    pub fn is_read(self) -> bool {
        matches!(self, OpKind::Get | OpKind::Mget)
    }
}

/// How an operation ended, as far as the client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// It was answered.
    Ok,
    /// It surely did not take effect.
    Fail,
    /// No answer: it may have taken effect at any time after its invocation, or never.
    Unknown,
}

/// The outcome of an answered cas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CasResult {
    /// The value matched and was replaced.
    Ok,
    /// The value did not match; nothing changed.
    Failed,
}

/// One operation of a history (see the module docs for the JSON form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOp {
    /// The client.
    pub client: String,
    /// The operation.
    pub op: OpKind,
    /// The key (empty, and absent in JSON, for multi-key operations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// mdelete and mget: the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// mput: the values written, by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<BTreeMap<String, String>>,
    /// An answered mget: the values read, by key (`None`: missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, Option<String>>>,
    /// put: `Some(Some(written))`; get: `Some(read)` (`Some(None)` is JSON null: missing);
    /// delete and cas: `None` (absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub value: Option<Option<String>>,
    /// cas: the value compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// cas: the value written on a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// cas, when answered: whether it swapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CasResult>,
    /// When the client started it.
    pub invoke: Millis,
    /// When the answer arrived (`None`: no answer).
    pub complete: Option<Millis>,
    /// How it ended.
    pub status: OpStatus,
    /// A get served with [`ReadPolicy::Stale`]: not linearizable by design, so
    /// [`History::without_stale_reads`] leaves it out of what the checker must linearize.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stale: bool,
    /// An answered write: the log index of the entry that answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Index>,
    /// An answered get: the node that served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// An answered get: the serving node's applied index when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Index>,
    /// A read-your-writes get: the client's last acknowledged write index before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_index: Option<Index>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Keeps a present `null` apart from an absent field: `Some(None)` vs `None`.
fn present_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl HistoryOp {
    /// A record of `op` by `client` invoked at `invoke`, with no key, value or answer yet
    /// (status unknown): callers fill in what the operation carries.
    pub fn blank(client: &str, op: OpKind, invoke: Millis) -> Self {
        HistoryOp {
            client: client.to_string(),
            op,
            key: String::new(),
            keys: None,
            entries: None,
            values: None,
            value: None,
            expected: None,
            new: None,
            result: None,
            invoke,
            complete: None,
            status: OpStatus::Unknown,
            stale: false,
            index: None,
            node: None,
            applied: None,
            min_index: None,
        }
    }

    /// Every key the operation names: `key`, or `keys`, or the keys of `entries`.
    pub fn all_keys(&self) -> Vec<&str> {
        match self.op {
            OpKind::Mput => self
                .entries
                .iter()
                .flat_map(|e| e.keys().map(String::as_str))
                .collect(),
            OpKind::Mdelete | OpKind::Mget => self
                .keys
                .iter()
                .flat_map(|k| k.iter().map(String::as_str))
                .collect(),
            _ => vec![self.key.as_str()],
        }
    }

    /// What the operation reads, key by key, when answered: a get's value or an mget's values.
    pub fn reads(&self) -> Vec<(&str, Option<&str>)> {
        match (self.op, &self.value, &self.values) {
            (OpKind::Get, Some(v), _) => vec![(self.key.as_str(), v.as_deref())],
            (OpKind::Mget, _, Some(vs)) => {
                vs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The values the operation may write, key by key (`None`: removes the key): a put's
    /// value, a cas's new value, an mput's entries, a delete's or mdelete's keys.
    pub fn writes(&self) -> Vec<(&str, Option<&str>)> {
        match self.op {
            OpKind::Put => match &self.value {
                Some(Some(v)) => vec![(self.key.as_str(), Some(v.as_str()))],
                _ => Vec::new(),
            },
            OpKind::Cas => match &self.new {
                Some(v) => vec![(self.key.as_str(), Some(v.as_str()))],
                None => Vec::new(),
            },
            OpKind::Delete => vec![(self.key.as_str(), None)],
            OpKind::Mput => self
                .entries
                .iter()
                .flat_map(|e| e.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))
                .collect(),
            OpKind::Mdelete => self.all_keys().into_iter().map(|k| (k, None)).collect(),
            OpKind::Get | OpKind::Mget => Vec::new(),
        }
    }

    /// The record of `op` by `client`: `result` is the write's apply result (if answered),
    /// `read` the value a get returned (if answered).
    pub fn from_op(
        client: &str,
        op: &ClientOp,
        invoke: Millis,
        complete: Option<Millis>,
        status: OpStatus,
        result: Option<&ApplyResult>,
        read: Option<Option<String>>,
    ) -> Self {
        let mut rec = HistoryOp {
            client: client.to_string(),
            op: OpKind::Put,
            key: op.key().to_string(),
            keys: None,
            entries: None,
            values: None,
            value: None,
            expected: None,
            new: None,
            result: None,
            invoke,
            complete,
            status,
            stale: false,
            index: None,
            node: None,
            applied: None,
            min_index: None,
        };
        match op {
            ClientOp::Put { value, .. } => rec.value = Some(Some(value.clone())),
            ClientOp::Get { policy, .. } => {
                rec.op = OpKind::Get;
                rec.value = Some(read.flatten());
                rec.stale = *policy == ReadPolicy::Stale;
            }
            ClientOp::Delete { .. } => rec.op = OpKind::Delete,
            ClientOp::Cas { expected, new, .. } => {
                rec.op = OpKind::Cas;
                rec.expected = Some(expected.clone());
                rec.new = Some(new.clone());
                rec.result = result.map(|r| {
                    if r.ok {
                        CasResult::Ok
                    } else {
                        CasResult::Failed
                    }
                });
            }
        }
        rec
    }

    /// The record as one line of JSON (no newline).
    pub fn to_json_line(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A whole history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History {
    /// The operations, in the order they were recorded.
    pub ops: Vec<HistoryOp>,
}

/// A line of a history that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("history line {line}: {msg}")]
pub struct HistoryParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub msg: String,
}

impl History {
    /// The history without its stale reads: what must be linearizable when stale reads are
    /// served on purpose (writes and readindex reads).
    pub fn without_stale_reads(&self) -> History {
        History {
            ops: self.ops.iter().filter(|o| !o.stale).cloned().collect(),
        }
    }

    /// Stale reads (answered, with a value) that returned a value no write in the history could
    /// have produced by the time the read was answered: no put of that value, no cas to it and
    /// no mput of it to that key invoked before the read completed. Stale reads may be old,
    /// never invented. An mget is invented when one of its values is.
    pub fn invented_stale_reads(&self) -> Vec<&HistoryOp> {
        // The first invoke of a write of each (key, value), found once: scanning every write
        // for every stale read made a 30-minute run's check (47,000 stale reads, 441,000
        // operations) take hours.
        let mut first: BTreeMap<(&str, &str), Millis> = BTreeMap::new();
        for w in &self.ops {
            for (key, v) in w.writes() {
                if let Some(v) = v {
                    let t = first.entry((key, v)).or_insert(w.invoke);
                    *t = (*t).min(w.invoke);
                }
            }
        }
        self.ops
            .iter()
            .filter(|r| r.stale && r.status == OpStatus::Ok)
            .filter(|r| {
                let Some(done) = r.complete else {
                    return false;
                };
                r.reads().into_iter().any(|(key, seen)| {
                    let Some(v) = seen else {
                        return false;
                    };
                    first.get(&(key, v)).is_none_or(|&t| t > done)
                })
            })
            .collect()
    }

    /// The history as JSON lines, each ending in a newline.
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for op in &self.ops {
            s.push_str(&op.to_json_line());
            s.push('\n');
        }
        s
    }

    /// Reads JSON lines (blank lines are skipped).
    pub fn from_jsonl(text: &str) -> Result<Self, HistoryParseError> {
        let mut ops = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let op = serde_json::from_str(line).map_err(|e| HistoryParseError {
                line: i + 1,
                msg: e.to_string(),
            })?;
            ops.push(op);
        }
        Ok(History { ops })
    }

    /// How many operations ended with each status: (ok, fail, unknown).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |s| self.ops.iter().filter(|o| o.status == s).count();
        (
            count(OpStatus::Ok),
            count(OpStatus::Fail),
            count(OpStatus::Unknown),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ReadPolicy;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn json_lines_follow_the_documented_format() {
        let mut put = HistoryOp::from_op(
            "c1",
            &ClientOp::Put {
                key: "k1".into(),
                value: "c1-1".into(),
            },
            12,
            Some(30),
            OpStatus::Ok,
            Some(&ApplyResult::ok()),
            None,
        );
        assert_eq!(
            put.to_json_line(),
            r#"{"client":"c1","op":"put","key":"k1","value":"c1-1","invoke":12,"complete":30,"status":"ok"}"#
        );
        put.index = Some(3);
        assert_eq!(
            put.to_json_line(),
            r#"{"client":"c1","op":"put","key":"k1","value":"c1-1","invoke":12,"complete":30,"status":"ok","index":3}"#
        );
        let get = HistoryOp::from_op(
            "c2",
            &ClientOp::Get {
                key: "k1".into(),
                policy: ReadPolicy::Stale,
            },
            14,
            Some(25),
            OpStatus::Ok,
            None,
            Some(None),
        );
        assert_eq!(
            get.to_json_line(),
            r#"{"client":"c2","op":"get","key":"k1","value":null,"invoke":14,"complete":25,"status":"ok","stale":true}"#
        );
        let mut ryw = get.clone();
        ryw.node = Some("n3".into());
        ryw.applied = Some(4);
        ryw.min_index = Some(3);
        assert_eq!(
            ryw.to_json_line(),
            r#"{"client":"c2","op":"get","key":"k1","value":null,"invoke":14,"complete":25,"status":"ok","stale":true,"node":"n3","applied":4,"min_index":3}"#
        );
        let fresh = HistoryOp::from_op(
            "c2",
            &ClientOp::Get {
                key: "k1".into(),
                policy: ReadPolicy::ReadIndex,
            },
            14,
            Some(25),
            OpStatus::Ok,
            None,
            Some(None),
        );
        assert_eq!(
            fresh.to_json_line(),
            r#"{"client":"c2","op":"get","key":"k1","value":null,"invoke":14,"complete":25,"status":"ok"}"#
        );
        let cas = HistoryOp::from_op(
            "c2",
            &ClientOp::Cas {
                key: "k1".into(),
                expected: "c1-1".into(),
                new: "c2-2".into(),
            },
            40,
            Some(61),
            OpStatus::Ok,
            Some(&ApplyResult::error("cas_failed", "no")),
            None,
        );
        assert_eq!(
            cas.to_json_line(),
            r#"{"client":"c2","op":"cas","key":"k1","expected":"c1-1","new":"c2-2","result":"failed","invoke":40,"complete":61,"status":"ok"}"#
        );
        let del = HistoryOp::from_op(
            "c1",
            &ClientOp::Delete { key: "k2".into() },
            50,
            None,
            OpStatus::Unknown,
            None,
            None,
        );
        assert_eq!(
            del.to_json_line(),
            r#"{"client":"c1","op":"delete","key":"k2","invoke":50,"complete":null,"status":"unknown"}"#
        );
        let h = History {
            ops: vec![put, get, cas, del, ryw],
        };
        let back = History::from_jsonl(&h.to_jsonl()).expect("parses");
        assert_eq!(back, h);
        assert_eq!(back.ops[1].value, Some(None));
        assert_eq!(back.ops[3].value, None);
        assert_eq!(back.ops[4].min_index, Some(3));
        assert_eq!(h.counts(), (4, 0, 1));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_lines_are_reported_with_their_number() {
        let err = History::from_jsonl("\n{\"client\":1}\n").expect_err("must fail");
        assert_eq!(err.line, 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn stale_reads_are_left_out_and_must_not_be_invented() {
        let get = |policy, value: &str, invoke, complete| {
            HistoryOp::from_op(
                "c2",
                &ClientOp::Get {
                    key: "k".into(),
                    policy,
                },
                invoke,
                Some(complete),
                OpStatus::Ok,
                None,
                Some(Some(value.to_string())),
            )
        };
        let put = HistoryOp::from_op(
            "c1",
            &ClientOp::Put {
                key: "k".into(),
                value: "a".into(),
            },
            10,
            Some(20),
            OpStatus::Ok,
            Some(&ApplyResult::ok()),
            None,
        );
        let h = History {
            ops: vec![
                put,
                get(ReadPolicy::Stale, "a", 15, 18),
                get(ReadPolicy::ReadIndex, "a", 21, 22),
                // Written by nobody, and before its write was even invoked.
                get(ReadPolicy::Stale, "b", 30, 31),
            ],
        };
        let kept = h.without_stale_reads();
        assert_eq!(kept.ops.len(), 2);
        assert!(kept.ops.iter().all(|o| !o.stale));
        let invented = h.invented_stale_reads();
        assert_eq!(invented.len(), 1);
        assert_eq!(invented[0].value, Some(Some("b".to_string())));
        let mut early = h.clone();
        early.ops[1].complete = Some(9);
        assert_eq!(
            early.invented_stale_reads().len(),
            2,
            "read before the put began"
        );
    }
}
