//! A deterministic cluster simulator: N Raft nodes, a faulty network, clients, a trace, and
//! invariant checks after every event. One seed, one run, on every platform.
