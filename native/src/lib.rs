//! raftkv-native: the kvserver node and the kvctl client on tokio, axum and reqwest.
//!
//! Layout: [`config`] (kvserver's command line, with [`config_file`]'s TOML file and RAFTKV_*
//! variables) → [`server`] (bind, serve, graceful shutdown) →
//! [`api`] (HTTP routes and the one status/JSON mapping) → [`dkv`] (DistributedKV, the KV
//! service HTTP talks to) → [`node_port`] (the `RaftHandle` port and its one error, `NodeError`)
//! ← [`driver`] (the task owning the Raft node, group commit, [`coalesce`]d messages) over
//! [`disk`] (durable stores) and [`transport`] (Raft over HTTP). `dkv` and `driver` do not know
//! each other: both see the port and the state machine they share ([`shared_sm`]). Async-op
//! results live in core's `OpCache`, on this process's monotonic clock.
//! The state machine they share is an [`engine`] (redb on disk by default, or in memory);
//! [`backup`] streams it out (`GET /snapshot`) and seeds a new node from a saved copy.
//! [`metrics`] serves `GET /metrics` (Prometheus text) and [`readiness`] `GET /readyz`.
//! [`client`] is the HTTP client kvctl and the tests share; [`ctl`] is kvctl's command line and
//! [`bench`] its load generator; [`noop`] is `noop-kv`, the client API over a bare map, a
//! benchmark's floor.
//!
//! Membership: [`membership_api`] serves `/cluster` (the configuration, and changes to it
//! through the driver), [`peers`] is the address table the transport and leader hints share,
//! [`cluster_file`] the configuration stored in the data dir, [`join`] how a joining node
//! learns the members' addresses, and [`ctl_member`] kvctl's `member` commands.
//!
//! Client security: [`client_tls`] serves the client API over TLS, [`client_auth`] checks its
//! bearer tokens and roles, and [`credentials`] is what kvctl and a joining node trust and send.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod backup;
pub mod bench;
pub mod client;
pub mod client_auth;
pub mod client_tls;
pub mod cluster_file;
pub mod config;
pub mod config_file;
pub mod credentials;
pub mod ctl;
pub mod ctl_member;
pub mod debug_events;
pub mod dev_cluster;
pub mod disk;
pub mod dkv;
pub mod driver;
pub mod engine;
pub mod failpoints;
pub mod join;
pub mod membership_api;
pub mod metrics;
pub mod node_port;
pub mod noop;
pub mod openapi;
pub mod peers;
pub mod readiness;
pub mod request_log;
pub mod server;
pub mod shared_sm;
#[cfg(test)]
mod stack_tests;
pub mod transport;

pub use config::ServerConfig;
pub use dkv::DistributedKv;
pub use server::{RunningServer, ServerError, spawn};
