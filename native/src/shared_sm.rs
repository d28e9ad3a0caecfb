//! The KV state machine, shared: the driver applies through it, the KV service reads it for
//! stale reads (and for reads once a read index is applied).

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raftkv_core::{ApplyResult, Command, KvStateMachine, SnapshotError};

/// The KV state machine, shared between the driver and the KV service.
///
/// Clients read through a gate that a single-node driver holds for a whole turn: a lone node
/// commits and applies an entry in the same call that appends it, before the turn's fsync, and
/// the gate keeps clients from seeing (and acting on) a write a crash could still take back.
#[derive(Clone, Default)]
pub struct SharedSm {
    sm: Arc<RwLock<KvStateMachine>>,
    gate: Arc<RwLock<()>>,
}

/// A state machine guard that also holds the gate open. `guard` is declared first so that it
/// is released before the gate.
pub struct Gated<'a, G> {
    guard: G,
    _gate: RwLockReadGuard<'a, ()>,
}

impl<G: std::ops::Deref> std::ops::Deref for Gated<'_, G> {
    type Target = G::Target;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl<G: std::ops::DerefMut> std::ops::DerefMut for Gated<'_, G> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
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
    /// An empty state machine.
    pub fn new() -> Self {
        SharedSm::default()
    }

    /// Read access for clients (waits while a single-node driver is mid-turn).
    pub fn read(&self) -> Gated<'_, RwLockReadGuard<'_, KvStateMachine>> {
        let gate = read_lock(&self.gate);
        Gated {
            guard: read_lock(&self.sm),
            _gate: gate,
        }
    }

    /// Write access outside the log: only for the dedupe fast path, which changes nothing,
    /// and for tests.
    pub(crate) fn write(&self) -> Gated<'_, RwLockWriteGuard<'_, KvStateMachine>> {
        let gate = read_lock(&self.gate);
        Gated {
            guard: write_lock(&self.sm),
            _gate: gate,
        }
    }

    /// The gate clients read through; a single-node driver write-locks it for each whole turn.
    pub(crate) fn gate(&self) -> Arc<RwLock<()>> {
        Arc::clone(&self.gate)
    }
}

/// The driver's side: no gate (the driver may hold it).
impl raftkv_core::StateMachine for SharedSm {
    fn apply(&mut self, cmd: &Command) -> ApplyResult {
        write_lock(&self.sm).apply(cmd)
    }
    fn snapshot(&self) -> Vec<u8> {
        read_lock(&self.sm).snapshot()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        write_lock(&self.sm).restore(data)
    }
}
