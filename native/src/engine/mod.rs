//! The storage engines kvserver keeps the KV state in: one [`Engine`] interface the driver
//! applies committed entries through and the HTTP layer reads, with two implementations:
//!
//! - [`memory`]: core's in-memory [`KvStateMachine`](raftkv_core::KvStateMachine) behind a
//!   lock; rebuilt at every start from the stored snapshot and the log.
//! - [`disk`]: a [redb](https://www.redb.org) database in the data dir; every batch of entries
//!   commits in one write transaction together with the applied index, so a restart resumes
//!   after it and replays only the log behind it (see `docs/storage-engine.md`).
//!
//! Both apply through core's rules ([`raftkv_core::kvsm::apply_command`] and
//! [`raftkv_core::kvsm::expire_sessions`]) and read and write the same snapshot format
//! ([`raftkv_core::kvsnap`]), so equal states give equal snapshot bytes whatever the engine.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvsm::{Session, SessionLimits};
use raftkv_core::raft::{Index, Millis, StorageError};
use raftkv_core::{ApplyEntry, ApplyResult, Command, SmError, SnapshotError, SnapshotView};

pub mod disk;
pub mod memory;

pub use disk::DiskEngine;
pub use memory::MemoryEngine;

/// Where kvserver keeps the KV state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// A redb database in the data dir (the default): restarts replay only the log after the
    /// index it persisted, and the state need not fit in memory.
    #[default]
    Disk,
    /// In memory: rebuilt from the stored snapshot and the whole log at every start.
    Memory,
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "disk" => Ok(EngineKind::Disk),
            "memory" => Ok(EngineKind::Memory),
            other => Err(format!("expected disk or memory, got {other:?}")),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Disk => "disk",
            EngineKind::Memory => "memory",
        })
    }
}

/// A KV state machine that the driver applies to and the HTTP layer reads at the same time:
/// every method takes `&self` and the engine synchronizes itself (the disk engine's readers use
/// their own read transactions and never wait for the applier). Only the driver calls the
/// mutating methods ([`apply_batch`](Self::apply_batch), [`install`](Self::install)), from
/// one thread.
pub trait Engine: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;
    /// The value of `key`.
    fn get(&self, key: &str) -> Result<Option<String>, SmError>;
    /// The values of those `keys` that are present, read at one point in time.
    fn mget(&self, keys: &[String]) -> Result<BTreeMap<String, String>, SmError>;
    /// Up to `limit` keys and values in key order from `start` (inclusive) to `end`
    /// (exclusive; `None`: to the last key), read at one point in time.
    fn range(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SmError>;
    /// The session of `client_id` (the dedupe fast path reads its last seq and reply).
    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError>;
    /// Every client session, by client id (tests, and comparing engines).
    fn sessions(&self) -> Result<BTreeMap<String, Session>, SmError>;
    /// How many keys are stored.
    fn len(&self) -> Result<u64, SmError>;
    /// Whether no key is stored.
    fn is_empty(&self) -> Result<bool, SmError> {
        Ok(self.len()? == 0)
    }
    /// A copy of every key and value, in key order (tests; proportional to the state).
    fn entries(&self) -> Result<BTreeMap<String, String>, SmError>;
    /// The log time: the largest entry time applied.
    fn log_time(&self) -> Millis;
    /// See [`raftkv_core::StateMachine::applied_index`]: what the engine persisted, for the
    /// disk engine.
    fn applied_index(&self) -> Index;
    /// See [`raftkv_core::StateMachine::apply_batch`].
    fn apply_batch(&self, entries: &[ApplyEntry<'_, Command>])
    -> Result<Vec<ApplyResult>, SmError>;
    /// See [`raftkv_core::StateMachine::snapshot_view`].
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError>;
    /// See [`raftkv_core::StateMachine::install`]. The disk engine builds the new state in a
    /// database file of its own and renames it over the old one: a failed install, or a crash
    /// in the middle of one, leaves the old state and its applied index as they were.
    fn install(&self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError>;
    /// Applies `cmd` at the current log time outside the log, without moving the applied
    /// index: only for tests that stand in for Raft.
    fn apply_unlogged(&self, cmd: &Command) -> Result<ApplyResult, SmError>;
    /// How many entries [`apply_batch`](Self::apply_batch) applied since this engine was
    /// opened (a restart test checks that no entry is applied twice).
    fn entries_applied_since_open(&self) -> u64;
}

/// Opens the engine `kind` for the data dir `data_dir` (the disk engine's database file is
/// [`disk::FILE`] in it, created if missing) with these session limits; the disk engine
/// fsyncs a commit at least every `sync_every` (zero: every commit) and caches `cache_bytes`
/// of its pages.
pub fn open(
    kind: EngineKind,
    data_dir: &Path,
    limits: SessionLimits,
    sync_every: Duration,
    cache_bytes: usize,
) -> Result<Arc<dyn Engine>, StorageError> {
    Ok(match kind {
        EngineKind::Memory => Arc::new(MemoryEngine::new(limits)),
        EngineKind::Disk => Arc::new(DiskEngine::open(
            &data_dir.join(disk::FILE),
            disk::DiskOptions {
                limits,
                durable_every: sync_every,
                cache_bytes,
            },
        )?),
    })
}

#[cfg(test)]
mod tests;
