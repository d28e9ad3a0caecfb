//! The interface Raft applies committed commands through. Raft treats snapshots as opaque bytes.

use crate::types::{ApplyResult, Command};

/// A snapshot could not be restored: its bytes are not a snapshot of this state machine.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {0}")]
pub struct SnapshotError(pub String);

/// A deterministic state machine: the same commands in the same order give the same state and
/// the same replies on every node and every platform.
pub trait StateMachine {
    /// Applies one committed command and returns its client-facing result.
    fn apply(&mut self, cmd: &Command) -> ApplyResult;
    /// Serializes the whole state. Equal states give equal bytes.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot's. On error the state is unchanged.
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError>;
}
