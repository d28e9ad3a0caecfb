//! raftkv-native: the kvserver node and the kvctl client on tokio, axum and reqwest.
pub mod disk;
