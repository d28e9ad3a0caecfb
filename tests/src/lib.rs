//! Helpers for raftkv's integration tests: real `kvserver` processes ([`cluster`]), a
//! fault-injecting TCP proxy per directed link ([`proxy`]), an HTTP client that follows
//! leader redirects ([`client`]), deadline polling ([`wait`]), a randomized Jepsen-style run with its nemesis ([`jepsen`],
//! [`nemesis`]), `kvctl bench` as a child process
//! ([`bench`]) and `kvctl bench --verify` as a background load ([`load`]).

pub mod bench;
pub mod bin;
pub mod client;
pub mod cluster;
pub mod jepsen;
pub mod load;
pub mod nemesis;
pub mod proxy;
pub mod wait;

pub use client::{Access, KvClient, Reply};
pub use cluster::{Cluster, ClusterConfig};
pub use load::{Bench, BenchReport};
pub use proxy::{LinkMode, LinkProxy, LinkState};
