//! The interface the host applies committed commands through. Raft never holds a state
//! machine: it only knows the command and reply types (to carry them in the log and in
//! events) and how big a command is (to batch by bytes). Snapshots are opaque bytes.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A snapshot could not be restored: its bytes are not a snapshot of this state machine.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {0}")]
pub struct SnapshotError(pub String);

/// A deterministic state machine: the same commands in the same order give the same state and
/// the same replies on every node and every platform.
pub trait StateMachine {
    /// What clients propose; carried in log entries.
    type Command: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + 'static;
    /// What applying a command answers.
    type Reply: Clone + Debug + PartialEq + Send + 'static;

    /// Applies one committed command and returns its client-facing result.
    fn apply(&mut self, cmd: &Self::Command) -> Self::Reply;
    /// Serializes the whole state. Equal states give equal bytes.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot's. On error the state is unchanged.
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError>;
    /// Checks that `data` is a snapshot of this state machine without restoring it: a host
    /// checks a snapshot from the wire before Raft adopts it, so garbage costs no state.
    fn check_snapshot(data: &[u8]) -> Result<(), SnapshotError>;
    /// About how many bytes `cmd` takes in a message: Raft batches entries by it and caps the
    /// bytes of uncommitted entries with it.
    fn command_size(cmd: &Self::Command) -> u64;
}
