//! Helpers for raftkv's integration tests: real `kvserver` processes ([`cluster`]), a
//! fault-injecting TCP proxy per directed link ([`proxy`]), an HTTP client that follows
//! leader redirects ([`client`]), deadline polling ([`wait`]) and `kvctl bench` as a child
//! process ([`bench`]).

pub mod bench;
pub mod bin;
pub mod client;
pub mod cluster;
pub mod proxy;
pub mod wait;

pub use client::{KvClient, Reply};
pub use cluster::{Cluster, ClusterConfig};
pub use proxy::{LinkMode, LinkProxy, LinkState};
