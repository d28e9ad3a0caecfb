//! A deterministic cluster simulator: N Raft nodes, a faulty network, clients, a trace, and
//! invariant checks after every event. One seed, one run, on every platform.
//!
//! - [`rng`]: the seeded ChaCha streams every random draw comes from, and FNV-1a hashing;
//! - [`network`]: links (latency, loss, duplication), directed cuts, messages in flight;
//! - [`queue`]: the (time, sequence)-ordered event queue;
//! - [`clock`]: each node's own clock (drift and forward jumps);
//! - [`disk`]: the simulated disk's failed syncs and corrupt records;
//! - [`cluster`]: the nodes' host, stepped one event at a time and inspectable in between;
//! - [`client`]: clients that retry with the same `(client_id, seq)`;
//! - [`history`]: the clients' operation history (JSON lines);
//! - [`linearizability`]: a per-key linearizability checker for such histories;
//! - [`committed_reads`]: each read served from a node's state machine against the committed
//!   log at the node's applied index (stale and read-your-writes reads too);
//! - [`session_tables`]: every replica holds the same client sessions at each applied index;
//! - [`trace`]: the event trace with a stable text form and hash;
//! - [`invariants`]: Raft's safety properties, checked after every event;
//! - [`fault`], [`schedule`]: faults and randomized fault schedules;
//! - [`runner`]: randomized runs from a seed, with liveness after healing.
//!
//! Typical use (what the randomized test suite does):
//!
//! ```no_run
//! use raftkv_core::sim::Scenario;
//! let report = Scenario::default().run(42).expect("seed 42 passes");
//! println!("{} ops, trace hash {:016x}", report.ops_ok, report.trace_hash);
//! ```

pub mod client;
pub mod clock;
pub mod cluster;
pub mod committed_reads;
pub mod disk;
pub mod fault;
pub mod history;
pub mod invariants;
pub mod linearizability;
pub mod network;
pub mod queue;
pub mod rng;
pub mod runner;
pub mod schedule;
pub mod session_tables;
pub mod trace;

pub use client::{ClientConfig, ClientOp, ReadOptions, Workload};
pub use clock::NodeClock;
pub use cluster::{ClientView, Cluster, NodeView, SimConfig, SimStats};
pub use committed_reads::{CommittedLog, ReadError};
pub use fault::Fault;
pub use history::{History, HistoryOp, OpKind, OpStatus};
pub use invariants::{Invariant, Invariants, LogChange, Violation};
pub use linearizability::LinError;
pub use network::{InFlightView, LinkConfig, MsgFilter};
pub use rng::{Fnv1a, SimRng, Stream};
pub use runner::{RunFailure, RunPlan, RunReport, Scenario};
pub use schedule::{ChurnProfile, ChurnWeights, FaultProfile, FaultWeights};
pub use trace::{Trace, TraceEvent, TraceKind, TraceMode};
