//! Helpers for raftkv's integration tests.
