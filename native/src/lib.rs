//! raftkv-native: the kvserver node and the kvctl client on tokio, axum and reqwest.
//!
//! Layout: [`config`] (kvserver's command line) → [`server`] (bind, serve, graceful shutdown) →
//! [`api`] (HTTP routes and the one status/JSON mapping) → [`service`] (the KV service HTTP
//! talks to) → [`journal`] (durable write-ahead file) and [`opcache`] (async-op results).
//! [`client`] is the HTTP client kvctl and the tests share; [`ctl`] is kvctl's command line.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod config;
pub mod ctl;
pub mod disk;
pub mod journal;
pub mod opcache;
pub mod server;
pub mod service;

pub use config::ServerConfig;
pub use server::{RunningServer, ServerError, spawn};
pub use service::KvService;
pub mod transport;
