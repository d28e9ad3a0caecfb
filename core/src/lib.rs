//! raftkv-core: the runtime-agnostic heart of raftkv.
//!
//! No threads, sockets, files, wall clock or OS randomness live here: everything from the world
//! comes in through a trait or an argument, so the same code runs natively, in
//! wasm32-unknown-unknown, and in a simulation that a seed replays exactly.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod kvraft;
pub mod kvsm;
pub mod kvsnap;
pub mod opcache;
pub mod state_machine;
pub mod types;

pub use kvsm::KvStateMachine;
pub use opcache::OpCache;
pub use state_machine::{ApplyEntry, SmError, SnapshotError, SnapshotView, StateMachine};
pub use types::*;
pub mod raft;
pub mod sim;
