//! The KV state machine, shared: the driver applies through it, the KV service reads it for
//! stale reads (and for reads once a read index is applied).

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use std::io::Read;

use raftkv_core::raft::Index;
use raftkv_core::{
    ApplyEntry, ApplyResult, Command, KvStateMachine, SmError, SnapshotError, SnapshotView,
};

/// The KV state machine, shared between the driver and the KV service. The driver applies
/// only entries that are durable on this node (the host loop applies after the fsync of the
/// Ready that made them so), so a client never reads a write a crash could take back, on a
/// single node too.
#[derive(Clone, Default)]
pub struct SharedSm {
    sm: Arc<RwLock<KvStateMachine>>,
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
    /// An empty state machine.
    pub fn new() -> Self {
        SharedSm::default()
    }

    /// An empty state machine whose client sessions expire under `limits`.
    pub fn with_limits(limits: raftkv_core::kvsm::SessionLimits) -> Self {
        SharedSm {
            sm: Arc::new(RwLock::new(KvStateMachine::with_limits(limits))),
        }
    }

    /// Read access for clients.
    pub fn read(&self) -> RwLockReadGuard<'_, KvStateMachine> {
        read_lock(&self.sm)
    }

    /// Write access outside the log: only for the dedupe fast path, which changes nothing,
    /// and for tests.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, KvStateMachine> {
        write_lock(&self.sm)
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
        write_lock(&self.sm).apply_batch(entries)
    }
    fn applied_index(&self) -> Index {
        read_lock(&self.sm).applied_index()
    }
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError> {
        read_lock(&self.sm).snapshot_view()
    }
    fn install(&mut self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        write_lock(&self.sm).install(index, data)
    }
    fn check_snapshot(index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        <KvStateMachine as raftkv_core::StateMachine>::check_snapshot(index, data)
    }
    fn command_size(cmd: &Command) -> u64 {
        cmd.size_bytes()
    }
}
