//! The interface the host applies committed entries through. Raft never holds a state
//! machine: it only knows the command and reply types (to carry them in the log and in
//! events) and how big a command is (to batch by bytes). Snapshots are opaque bytes.
//!
//! The contract follows dragonboat's on-disk state machine (`statemachine/disk.go`): a
//! machine may be durable on its own; it then persists the index of the last entry it applied
//! in the same atomic step as that entry's effects, and [`StateMachine::applied_index`] after a
//! restart tells the host where to resume, so a restart replays only the log after it. An
//! in-memory machine starts at 0 and is rebuilt from the stored snapshot and the log.
//!
//! Snapshots are streams: a machine hands out a point-in-time [`SnapshotView`] that writes its
//! bytes to any [`Write`] (a file, a buffer) while later entries are applied, and installs a
//! snapshot by reading it from any [`Read`]. Neither side holds a whole snapshot in memory
//! unless the machine itself lives in memory.

use std::fmt::Debug;
use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::raft::{Index, Millis};

/// A snapshot could not be restored: its bytes are not a snapshot of this state machine.
#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot: {0}")]
pub struct SnapshotError(pub String);

/// The state machine's own storage failed (disk engines only): nothing of the batch or
/// snapshot it was working on took effect, and the host stops rather than go on without it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("state machine storage: {0}")]
pub struct SmError(pub String);

/// One committed entry, as the state machine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyEntry<'a, C> {
    /// Its log index.
    pub index: Index,
    /// The clock reading of the leader that created it (see
    /// [`LogEntry::time`](crate::raft::LogEntry::time)).
    pub time: Millis,
    /// The client command it carries; `None` for Raft's own entries (no-op, configuration),
    /// which still move the applied index and the log time.
    pub cmd: Option<&'a C>,
}

/// A point-in-time view of a state machine's whole state: what it writes does not change as
/// later entries are applied. It may be written on another thread than the one applying.
pub trait SnapshotView: Send {
    /// The applied index the view is at: the snapshot covers every entry up to it.
    fn index(&self) -> Index;
    /// Writes the snapshot's bytes to `w`. Equal states write equal bytes.
    fn write_to(self: Box<Self>, w: &mut dyn Write) -> Result<(), SmError>;
}

/// A deterministic state machine: the same entries in the same order give the same state and
/// the same replies on every node and every platform.
pub trait StateMachine {
    /// What clients propose; carried in log entries.
    type Command: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + 'static;
    /// What applying a command answers.
    type Reply: Clone + Debug + PartialEq + Send + 'static;

    /// Applies committed entries, in log order, contiguous and each past
    /// [`applied_index`](Self::applied_index), as one atomic step: their effects and the new
    /// applied index (the last entry's) become visible, and durable for a durable machine,
    /// together. Returns one reply per entry that carries a command, in order. An error is
    /// fatal: the batch did not apply and the host stops.
    fn apply_batch(
        &mut self,
        entries: &[ApplyEntry<'_, Self::Command>],
    ) -> Result<Vec<Self::Reply>, SmError>;
    /// The index of the last entry applied: 0 for a fresh in-memory machine, what was persisted
    /// last for a durable one (the host resumes after it).
    fn applied_index(&self) -> Index;
    /// A point-in-time view of the whole state at [`applied_index`](Self::applied_index).
    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError>;
    /// Replaces the whole state with the snapshot read from `data`, which covers every entry
    /// up to `index`; the applied index becomes `index`. On error the state is unchanged.
    fn install(&mut self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError>;
    /// Checks that `data` is a snapshot of this state machine at `index` without installing
    /// it: a host checks a snapshot from the wire before Raft adopts it, so garbage costs no
    /// state.
    fn check_snapshot(index: Index, data: &mut dyn Read) -> Result<(), SnapshotError>;
    /// About how many bytes `cmd` takes in a message: Raft batches entries by it and caps the
    /// bytes of uncommitted entries with it.
    fn command_size(cmd: &Self::Command) -> u64;
}
