//! The KV service: the only thing the HTTP layer talks to (the seed's `DistributedKV`).
//!
//! For now it is a single node: writes go to a write-ahead [`Journal`] and then to the state
//! machine, reads come from the state machine. When Raft lands, writes will propose through the
//! Raft node instead and this is the one layer that changes; the HTTP handlers stay as they are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use raftkv_core::raft::Role;
use raftkv_core::{ApplyResult, Command, KvStateMachine, NodeId, OpId, OpResult};
use raftkv_core::{ReadPolicy, WriteMode};
use serde::{Deserialize, Serialize};

use crate::config::{Peer, ServerConfig};
use crate::journal::{self, Journal, JournalError};
use crate::opcache::OpCache;

/// The journal's file name inside the data dir.
pub const JOURNAL_FILE: &str = "journal.log";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data dir is missing and cannot be created, or is not a directory.
    #[error("data dir {}: {source}", path.display())]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The journal cannot be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A record passed its checksum but is not a command: not a torn write but a bug or a foreign
    /// file. Skipping it could silently lose acknowledged writes, so the server refuses to start.
    #[error("journal record {index} is intact but is not a command ({source}); refusing to start")]
    Replay {
        /// The record's position, from 0.
        index: usize,
        /// The decode error.
        source: serde_json::Error,
    },
}

/// A request the service could not carry out. Semantic outcomes such as `cas_failed` or
/// `not_found` are not errors here: they are [`ApplyResult`]s with `ok: false`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed: an empty key, an empty batch, ...
    #[error("{0}")]
    BadRequest(String),
    /// The write could not be made durable; it was not applied.
    #[error("storage error: {0}")]
    Storage(String),
    /// Something that should not happen, such as a panicked worker.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The machine-readable `err_code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadRequest(_) => "bad_request",
            ServiceError::Storage(_) => "storage_error",
            ServiceError::Internal(_) => "internal",
        }
    }
}

/// How a write was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReply {
    /// Sync mode: the write was applied and this is its result.
    Done(ApplyResult),
    /// Async mode: the write was accepted; fetch its result with [`KvService::op_result`].
    Accepted(OpId),
}

/// What `GET /status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Always true: status itself cannot fail.
    pub ok: bool,
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it knows of, if any.
    pub leader_id: Option<NodeId>,
    /// That leader's client address, if known.
    pub leader_addr: Option<String>,
    /// The last committed write.
    pub commit_index: u64,
    /// The last write applied to the state machine.
    pub last_applied: u64,
    /// The last write in the log.
    pub last_log_index: u64,
    /// The last write covered by a snapshot; 0 without one.
    pub snapshot_index: u64,
    /// Every member, this node included.
    pub peers: Vec<Peer>,
    /// The default read policy.
    pub read_policy: ReadPolicy,
    /// The write mode.
    pub write_mode: WriteMode,
}

struct State {
    sm: KvStateMachine,
    /// Writes applied so far (journal records), which plays the part of the log index.
    applied: u64,
}

/// The single-node KV service. Share it as `Arc<KvService>`.
pub struct KvService {
    id: NodeId,
    addr: String,
    peers: Vec<Peer>,
    read_policy: ReadPolicy,
    write_mode: WriteMode,
    /// Lock order: `journal` before `state`. Holding `journal` across append + apply keeps the
    /// journal order and the apply order identical, which replay depends on; reads take only
    /// `state`, briefly, so they never wait for an fsync.
    journal: Mutex<Journal>,
    state: Mutex<State>,
    ops: Mutex<OpCache>,
    /// Makes op ids unique across restarts, so a client cannot fetch another op's result with
    /// an id it got before a restart.
    op_prefix: String,
    next_op: AtomicU64,
}

impl KvService {
    /// Opens the data dir (creating it if missing), replays the journal and returns a service
    /// advertising `addr` as this node's client address.
    pub fn open(config: &ServerConfig, addr: String) -> Result<Arc<Self>, OpenError> {
        let dir = &config.data_dir;
        journal::ensure_dir(dir).map_err(|source| OpenError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let (journal, recovery) = Journal::open(&dir.join(JOURNAL_FILE))?;
        let mut state = State {
            sm: KvStateMachine::new(),
            applied: 0,
        };
        for (index, record) in recovery.records.iter().enumerate() {
            let cmd: Command = serde_json::from_slice(record)
                .map_err(|source| OpenError::Replay { index, source })?;
            state.sm.apply(&cmd);
            state.applied += 1;
        }
        tracing::info!(
            data_dir = %dir.display(),
            replayed = state.applied,
            keys = state.sm.len(),
            "journal replayed"
        );
        let peers = if config.peers.is_empty() {
            vec![Peer {
                id: config.id.clone(),
                addr: addr.clone(),
            }]
        } else {
            config.peers.clone()
        };
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Ok(Arc::new(KvService {
            op_prefix: format!("{}-{boot:x}", config.id),
            id: config.id.clone(),
            addr,
            peers,
            read_policy: config.read_policy,
            write_mode: config.write_mode,
            journal: Mutex::new(journal),
            state: Mutex::new(state),
            ops: Mutex::new(OpCache::new(config.op_ttl)),
            next_op: AtomicU64::new(1),
        }))
    }

    /// Reads `key`: `{"ok":true,"value":..}` or a `not_found` result. `consistency` overrides
    /// the server's read policy; a single node is its own leader with everything committed
    /// applied, so both policies read the local state machine.
    pub fn get(
        &self,
        key: &str,
        consistency: Option<ReadPolicy>,
    ) -> Result<ApplyResult, ServiceError> {
        if key.is_empty() {
            return Err(ServiceError::BadRequest("key must not be empty".into()));
        }
        let _policy = consistency.unwrap_or(self.read_policy);
        Ok(match lock(&self.state).sm.get(key) {
            Some(v) => ApplyResult {
                value: Some(v),
                ..ApplyResult::ok()
            },
            None => ApplyResult::error("not_found", format!("key {key:?} not found")),
        })
    }

    /// Reads `keys`: `{"ok":true,"values":{..}}` with missing keys absent.
    pub fn mget(&self, keys: &[String]) -> Result<ApplyResult, ServiceError> {
        if keys.is_empty() {
            return Err(ServiceError::BadRequest("keys must not be empty".into()));
        }
        if keys.iter().any(String::is_empty) {
            return Err(ServiceError::BadRequest(
                "keys must not contain an empty key".into(),
            ));
        }
        Ok(ApplyResult {
            values: Some(lock(&self.state).sm.mget(keys)),
            ..ApplyResult::ok()
        })
    }

    /// Carries out a write. An invalid command is refused before it reaches the journal, so it
    /// changes nothing (not even the dedupe table). In sync mode the reply comes once the write
    /// is durable and applied; in async mode at once, with an op id.
    pub async fn write(self: &Arc<Self>, cmd: Command) -> Result<WriteReply, ServiceError> {
        cmd.validate().map_err(|e| ServiceError::BadRequest(e.0))?;
        match self.write_mode {
            WriteMode::Sync => self.apply_durably(cmd).await.map(WriteReply::Done),
            WriteMode::Async => {
                let n = self.next_op.fetch_add(1, Ordering::Relaxed);
                let id = OpId(format!("{}-{n}", self.op_prefix));
                lock(&self.ops).insert_pending(id.clone(), Instant::now());
                let this = Arc::clone(self);
                let task_id = id.clone();
                tokio::spawn(async move {
                    let result = this
                        .apply_durably(cmd)
                        .await
                        .unwrap_or_else(|e| ApplyResult::error(e.code(), e.to_string()));
                    lock(&this.ops).complete(task_id, result, Instant::now());
                });
                Ok(WriteReply::Accepted(id))
            }
        }
    }

    /// The state of async op `id` now, or `None` if unknown or expired.
    pub fn op_result(&self, id: &OpId) -> Option<OpResult> {
        lock(&self.ops).get(id, Instant::now())
    }

    /// This node's status.
    pub fn status(&self) -> NodeStatus {
        let applied = lock(&self.state).applied;
        NodeStatus {
            ok: true,
            id: self.id.clone(),
            role: Role::Leader,
            term: 1,
            leader_id: Some(self.id.clone()),
            leader_addr: Some(self.addr.clone()),
            commit_index: applied,
            last_applied: applied,
            last_log_index: applied,
            snapshot_index: 0,
            peers: self.peers.clone(),
            read_policy: self.read_policy,
            write_mode: self.write_mode,
        }
    }

    /// A copy of every key and value (tests use it to check that a refused request changed
    /// nothing).
    pub fn entries(&self) -> BTreeMap<String, String> {
        lock(&self.state).sm.entries()
    }

    /// Journals `cmd`, fsyncs, then applies it, on a blocking thread so that the fsync does not
    /// stall the async runtime.
    async fn apply_durably(self: &Arc<Self>, cmd: Command) -> Result<ApplyResult, ServiceError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.apply_blocking(&cmd))
            .await
            .map_err(|e| ServiceError::Internal(format!("write task failed: {e}")))?
    }

    fn apply_blocking(&self, cmd: &Command) -> Result<ApplyResult, ServiceError> {
        let mut journal = lock(&self.journal);
        {
            // A retry of an applied (client_id, seq) changes nothing: answer it from the dedupe
            // table without growing the journal.
            let mut state = lock(&self.state);
            let dedupe = !cmd.client_id.is_empty() && cmd.seq != 0;
            if dedupe && state.sm.last_seen(&cmd.client_id) >= Some(cmd.seq) {
                return Ok(state.sm.apply(cmd));
            }
        }
        let record = serde_json::to_vec(cmd)
            .map_err(|e| ServiceError::Internal(format!("cannot encode command: {e}")))?;
        journal.append(&record).map_err(|e| {
            tracing::error!(error = %e, "journal append failed; write not applied");
            ServiceError::Storage(e.to_string())
        })?;
        let mut state = lock(&self.state);
        state.applied += 1;
        Ok(state.sm.apply(cmd))
    }
}

/// Locks `m`, recovering from poisoning: the guarded values stay consistent even if a holder
/// panicked (the journal tracks its own good length; the state machine never panics mid-apply).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::OpType;

    fn service(dir: &std::path::Path, mode: WriteMode) -> Arc<KvService> {
        let mut c = ServerConfig::single_node("n1", "127.0.0.1:0", dir);
        c.write_mode = mode;
        KvService::open(&c, "127.0.0.1:7001".into()).unwrap()
    }

    fn put(k: &str, v: &str, seq: u64) -> Command {
        Command::put(k, v).with_client("c1", seq)
    }

    #[tokio::test]
    async fn writes_survive_reopen_and_duplicates_are_not_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path(), WriteMode::Sync);
        assert_eq!(
            s.write(put("a", "1", 1)).await,
            Ok(WriteReply::Done(ApplyResult::ok()))
        );
        // Same (client, seq), different value: the stored reply, and nothing changes.
        assert_eq!(
            s.write(put("a", "2", 1)).await,
            Ok(WriteReply::Done(ApplyResult::ok()))
        );
        assert_eq!(s.status().commit_index, 1);
        s.write(Command::delete("b").with_client("c1", 2))
            .await
            .unwrap();
        drop(s);

        let s = service(dir.path(), WriteMode::Sync);
        assert_eq!(s.get("a", None).unwrap().value.as_deref(), Some("1"));
        assert_eq!(s.status().last_applied, 2);
        // The dedupe table was rebuilt by replay too.
        assert_eq!(
            s.write(put("a", "3", 2)).await,
            Ok(WriteReply::Done(ApplyResult::deleted(0)))
        );
    }

    #[tokio::test]
    async fn invalid_commands_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path(), WriteMode::Sync);
        let bad = Command::new(OpType::BatchPut).with_client("c1", 1);
        assert!(matches!(
            s.write(bad).await,
            Err(ServiceError::BadRequest(_))
        ));
        assert_eq!(s.status().commit_index, 0);
        // seq 1 was not consumed by the refused command.
        s.write(put("a", "1", 1)).await.unwrap();
        assert_eq!(s.entries().len(), 1);
        assert!(s.get("", None).is_err());
        assert!(s.mget(&[]).is_err());
    }

    #[tokio::test]
    async fn async_writes_hand_out_distinct_op_ids() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path(), WriteMode::Async);
        let Ok(WriteReply::Accepted(a)) = s.write(put("a", "1", 1)).await else {
            panic!("expected an op id");
        };
        let Ok(WriteReply::Accepted(b)) = s.write(put("b", "1", 2)).await else {
            panic!("expected an op id");
        };
        assert_ne!(a, b);
        assert!(s.op_result(&a).is_some());
        assert!(s.op_result(&OpId("nope".into())).is_none());
    }
}
