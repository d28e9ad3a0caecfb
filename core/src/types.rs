//! Client-facing types shared by every host: the commands clients send, the replies they get,
//! and the policies a server runs with. JSON is snake_case throughout.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The name of a cluster member, such as `n1`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeId(pub String);

impl NodeId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.to_string())
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        NodeId(s)
    }
}

/// An error parsing one of the policy or op enums from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}; expected one of: {}", expected.join(", "))]
pub struct ParseEnumError {
    what: &'static str,
    got: String,
    expected: &'static [&'static str],
}

/// Defines Display and FromStr for a fieldless enum from one table of (variant, name) pairs,
/// so that the text form, the JSON form and the parser cannot drift apart.
macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// The name used on the command line, in JSON and in logs.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        got: s.to_string(),
                        expected: &[$($name),+],
                    }),
                }
            }
        }
    };
}

/// How reads are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReadPolicy {
    /// Read the local state machine: fast, possibly stale.
    #[default]
    #[serde(rename = "stale")]
    Stale,
    /// Linearizable: the leader confirms its leadership and waits until it has applied
    /// everything committed when the read arrived.
    #[serde(rename = "readindex")]
    ReadIndex,
    /// Linearizable while clocks drift less than the configured margin: a leader whose lease
    /// (from the last heartbeat round a quorum acknowledged) still runs answers without a
    /// confirmation round; otherwise it falls back to ReadIndex.
    #[serde(rename = "lease")]
    Lease,
}
text_enum!(ReadPolicy, "read policy", Stale => "stale", ReadIndex => "readindex", Lease => "lease");

/// When a write is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WriteMode {
    /// Answer after the write is committed and applied.
    #[default]
    Sync,
    /// Answer at once with an op id; the result is fetched later.
    Async,
}
text_enum!(WriteMode, "write mode", Sync => "sync", Async => "async");

/// The kind of a write command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    /// Set `key` to `value`.
    Put,
    /// Remove `key`.
    Delete,
    /// Set `key` to `value` if its current value (missing counts as "") equals `expected`.
    Cas,
    /// Set every pair of `entries`.
    BatchPut,
    /// Remove every key of `keys`.
    BatchDelete,
}
text_enum!(OpType, "op", Put => "put", Delete => "delete", Cas => "cas",
    BatchPut => "batch_put", BatchDelete => "batch_delete");

/// One key/value pair of a batch put.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// The key; must not be empty.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub key: String,
    /// The value; may be empty.
    pub value: String,
}

/// A write, as it travels through the Raft log to the state machine.
///
/// `(client_id, seq)` names one client operation: a retried command carries the same pair, and
/// the state machine answers it from its dedupe table instead of applying it twice.
/// An empty `client_id` or a zero `seq` opts out of deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The client that issued the command.
    #[serde(default)]
    pub client_id: String,
    /// The client's sequence number for this operation; increases per client.
    #[serde(default)]
    pub seq: u64,
    /// What to do.
    pub op: OpType,
    /// The key (put, delete, cas).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The new value (put, cas).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// The value cas compares with; "" also matches a missing key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expected: String,
    /// The pairs of a batch put.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry>,
    /// The keys of a batch delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// Why a command was refused before it reached the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl Command {
    /// A command of `op` with every optional field empty.
    pub fn new(op: OpType) -> Self {
        Command {
            client_id: String::new(),
            seq: 0,
            op,
            key: String::new(),
            value: String::new(),
            expected: String::new(),
            entries: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// A put of `key` = `value`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Command {
            key: key.into(),
            value: value.into(),
            ..Command::new(OpType::Put)
        }
    }

    /// A delete of `key`.
    pub fn delete(key: impl Into<String>) -> Self {
        Command {
            key: key.into(),
            ..Command::new(OpType::Delete)
        }
    }

    /// A compare-and-set of `key` from `expected` to `value`.
    pub fn cas(
        key: impl Into<String>,
        expected: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Command {
            key: key.into(),
            expected: expected.into(),
            value: value.into(),
            ..Command::new(OpType::Cas)
        }
    }

    /// The same command, tagged with a client identity for deduplication.
    pub fn with_client(mut self, client_id: impl Into<String>, seq: u64) -> Self {
        self.client_id = client_id.into();
        self.seq = seq;
        self
    }

    /// About how many bytes the command takes in a message: its strings plus a fixed
    /// allowance for the field names and numbers around them.
    pub fn size_bytes(&self) -> u64 {
        const OVERHEAD: usize = 64;
        let strings = self.client_id.len()
            + self.key.len()
            + self.value.len()
            + self.expected.len()
            + self
                .entries
                .iter()
                .map(|e| e.key.len() + e.value.len() + 16)
                .sum::<usize>()
            + self.keys.iter().map(|k| k.len() + 4).sum::<usize>();
        (OVERHEAD + strings) as u64
    }

    /// Checks that the fields `op` needs are present: a non-empty key for put, delete and cas;
    /// at least one entry, each with a non-empty key, for batch put; at least one non-empty key
    /// for batch delete.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let err = |m: &str| Err(ValidationError(m.to_string()));
        match self.op {
            OpType::Put | OpType::Delete | OpType::Cas if self.key.is_empty() => {
                err("key must not be empty")
            }
            OpType::Put | OpType::Delete | OpType::Cas => Ok(()),
            OpType::BatchPut if self.entries.is_empty() => err("entries must not be empty"),
            OpType::BatchPut if self.entries.iter().any(|e| e.key.is_empty()) => {
                err("every entry needs a non-empty key")
            }
            OpType::BatchPut => Ok(()),
            OpType::BatchDelete if self.keys.is_empty() => err("keys must not be empty"),
            OpType::BatchDelete if self.keys.iter().any(String::is_empty) => {
                err("keys must not contain an empty key")
            }
            OpType::BatchDelete => Ok(()),
        }
    }
}

/// The client-facing outcome of applying a command or serving a read.
///
/// Semantic failures (`cas_failed`, `bad_request`, `not_found`) travel in `err_code` and
/// `err_msg` with `ok: false`; fields that do not apply to an operation are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplyResult {
    /// Whether the operation succeeded.
    pub ok: bool,
    /// The value read (get).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The values read (mget); missing keys are absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
    /// How many keys a delete removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
    /// A machine-readable error code, such as `cas_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err_code: Option<String>,
    /// A human-readable explanation of the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err_msg: Option<String>,
    /// The log index the write was committed at, in a host's answer to a write (a read with
    /// this as its minimum index sees the write, on any node). The state machine never sets
    /// it, so its dedupe table and snapshots do not hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl ApplyResult {
    /// `{"ok":true}`.
    pub fn ok() -> Self {
        ApplyResult {
            ok: true,
            ..Default::default()
        }
    }

    /// `{"ok":true,"deleted":n}`.
    pub fn deleted(n: u64) -> Self {
        ApplyResult {
            deleted: Some(n),
            ..ApplyResult::ok()
        }
    }

    /// `{"ok":false,"err_code":code,"err_msg":msg}`.
    pub fn error(code: &str, msg: impl Into<String>) -> Self {
        ApplyResult {
            ok: false,
            err_code: Some(code.to_string()),
            err_msg: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// Where a client should send what this node cannot serve. Both fields are empty while no
/// leader is known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// The leader's id, if known.
    pub leader_id: Option<NodeId>,
    /// The leader's client address (host:port), if known.
    pub leader_addr: Option<String>,
}

/// The id of an async-mode write, used to fetch its result.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpId(pub String);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of an async-mode write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpResult {
    /// The write this is about.
    pub op_id: OpId,
    /// Whether the write has been applied.
    pub ready: bool,
    /// Its result, once ready.
    pub result: Option<ApplyResult>,
}
