//! The in-memory engine: core's [`KvStateMachine`] behind a read-write lock. Readers wait only
//! while a batch applies (in memory, microseconds).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use raftkv_core::kvsm::{Session, SessionLimits};
use raftkv_core::raft::{Index, Millis};
use raftkv_core::{
    ApplyEntry, ApplyResult, Command, KvStateMachine, SmError, SnapshotError, SnapshotView,
    StateMachine,
};

use super::{Engine, EngineKind};
use crate::shared_sm::{read_lock, write_lock};

/// Core's [`KvStateMachine`], shared.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    sm: RwLock<KvStateMachine>,
    applied_since_open: AtomicU64,
}

impl MemoryEngine {
    /// An empty store with these session limits.
    pub fn new(limits: SessionLimits) -> Self {
        MemoryEngine {
            sm: RwLock::new(KvStateMachine::with_limits(limits)),
            applied_since_open: AtomicU64::new(0),
        }
    }
}

impl Engine for MemoryEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Memory
    }
    fn get(&self, key: &str) -> Result<Option<String>, SmError> {
        Ok(read_lock(&self.sm).get(key))
    }
    fn mget(&self, keys: &[String]) -> Result<BTreeMap<String, String>, SmError> {
        Ok(read_lock(&self.sm).mget(keys))
    }
    fn range(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SmError> {
        Ok(read_lock(&self.sm).range(start, end, limit))
    }
    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError> {
        Ok(read_lock(&self.sm).sessions().get(client_id).cloned())
    }
    fn sessions(&self) -> Result<BTreeMap<String, Session>, SmError> {
        Ok(read_lock(&self.sm).sessions().clone())
    }
    fn len(&self) -> Result<u64, SmError> {
        Ok(read_lock(&self.sm).len() as u64)
    }
    fn entries(&self) -> Result<BTreeMap<String, String>, SmError> {
        Ok(read_lock(&self.sm).entries())
    }
    fn log_time(&self) -> Millis {
        read_lock(&self.sm).log_time()
    }
    fn applied_index(&self) -> Index {
        read_lock(&self.sm).applied_index()
    }
    fn apply_batch(
        &self,
        entries: &[ApplyEntry<'_, Command>],
    ) -> Result<Vec<ApplyResult>, SmError> {
        let replies = write_lock(&self.sm).apply_batch(entries)?;
        self.applied_since_open
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(replies)
    }
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError> {
        read_lock(&self.sm).snapshot_view()
    }
    fn install(&self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        write_lock(&self.sm).install(index, data)
    }
    fn apply_unlogged(&self, cmd: &Command) -> Result<ApplyResult, SmError> {
        Ok(write_lock(&self.sm).apply(cmd))
    }
    fn entries_applied_since_open(&self) -> u64 {
        self.applied_since_open.load(Ordering::Relaxed)
    }
}
