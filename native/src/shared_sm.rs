//! The KV state machine, shared: the driver applies through it, the KV service reads it for
//! stale reads (and for reads once a read index is applied). It is a handle to the [`Engine`]
//! kvserver runs with (see [`crate::engine`]).

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use std::io::Read;

use raftkv_core::kvsm::SessionLimits;
use raftkv_core::raft::Index;
use raftkv_core::{
    ApplyEntry, ApplyResult, Command, KvStateMachine, SmError, SnapshotError, SnapshotView,
};

use crate::engine::{Engine, MemoryEngine};
use crate::failpoints;

/// The KV state machine, shared between the driver and the KV service. The driver applies
/// only entries that are durable on this node (the host loop applies after the fsync of the
/// Ready that made them so), so a client never reads a write a crash could take back, on a
/// single node too.
#[derive(Clone)]
pub struct SharedSm {
    engine: Arc<dyn Engine>,
}

impl Default for SharedSm {
    fn default() -> Self {
        SharedSm::new()
    }
}

/// Poisoning is ignored: apply never panics halfway through a command.
pub(crate) fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// See [`read_lock`].
pub(crate) fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl SharedSm {
    /// An empty in-memory state machine whose sessions never expire.
    pub fn new() -> Self {
        SharedSm::with_engine(Arc::new(MemoryEngine::new(SessionLimits::default())))
    }

    /// A handle to `engine`.
    pub fn with_engine(engine: Arc<dyn Engine>) -> Self {
        SharedSm { engine }
    }

    /// The engine, for reads.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }
}

/// The driver's side: the host loop applies through it.
impl raftkv_core::StateMachine for SharedSm {
    type Command = Command;
    type Reply = ApplyResult;

    fn apply_batch(
        &mut self,
        entries: &[ApplyEntry<'_, Command>],
    ) -> Result<Vec<ApplyResult>, SmError> {
        if failpoints::fires("before-apply") {
            return Err(SmError("failpoint before-apply".into()));
        }
        self.engine.apply_batch(entries)
    }
    fn applied_index(&self) -> Index {
        self.engine.applied_index()
    }
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError> {
        self.engine.snapshot_view()
    }
    fn install(&mut self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        let failed = |point: &str| SnapshotError(format!("failpoint {point}"));
        if failpoints::fires("snapshot-before-install") {
            return Err(failed("snapshot-before-install"));
        }
        self.engine.install(index, data)?;
        if failpoints::fires("snapshot-after-install") {
            return Err(failed("snapshot-after-install"));
        }
        Ok(())
    }
    fn check_snapshot(index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        // Every engine reads the same format.
        <KvStateMachine as raftkv_core::StateMachine>::check_snapshot(index, data)
    }
    fn command_size(cmd: &Command) -> u64 {
        cmd.size_bytes()
    }
}
