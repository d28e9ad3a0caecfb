//! A checker that session expiry is the same on every replica: sessions expire by the log's
//! time (each entry carries its leader's clock reading), so every node that has applied index
//! `i` must hold the same client sessions there, whatever its own clock says.
//!
//! After every call into a node, the simulator hands the checker the node's applied index and
//! a hash of its session table and log time ([`table_hash`]). The first hash seen at an index
//! stands; any other node (or a restarted incarnation, or a node that installed a snapshot)
//! reporting another one at that index is a violation of [`Invariant::SessionExpiry`]. Nodes
//! stop at different indices (they apply in batches), so each index is compared among the
//! nodes that happened to stop there; over a run that is most of them.
//!
//! It also counts the sessions that went: between two successive highest indices seen, the
//! sessions of the older table missing from the newer one.

use std::collections::{BTreeMap, BTreeSet};

use super::invariants::{Invariant, Violation};
use super::network::node_name;
use super::rng::Fnv1a;
use crate::kvsm::KvStateMachine;
use crate::raft::{Index, Millis};

/// A hash of the state machine's sessions (ids, last seqs and times, replies) and log time.
pub fn table_hash(sm: &KvStateMachine) -> u64 {
    let mut h = Fnv1a::default();
    h.write(&sm.log_time().to_le_bytes());
    for (id, s) in sm.sessions() {
        h.write(&(id.len() as u64).to_le_bytes());
        h.write(id.as_bytes());
        h.write(&s.last_seq.to_le_bytes());
        h.write(&s.last_time.to_le_bytes());
        h.write(&[u8::from(s.last_reply.ok)]);
        h.write(s.last_reply.err_code.as_deref().unwrap_or("").as_bytes());
    }
    h.finish()
}

/// The session tables seen per applied index.
#[derive(Clone, Debug, Default)]
pub struct SessionTables {
    /// `index -> (hash, the node that reported it first)`.
    seen: BTreeMap<Index, (u64, usize)>,
    /// Each node's last reported applied index, to skip unchanged reports.
    last: BTreeMap<usize, (Index, u64)>,
    /// The highest index seen and its sessions' ids.
    frontier: (Index, BTreeSet<String>),
    /// Sessions that went between successive highest indices.
    expired: u64,
}

impl SessionTables {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Node `node` has applied up to `applied` and holds `sm`'s sessions there.
    pub fn observe(
        &mut self,
        now: Millis,
        node: usize,
        applied: Index,
        sm: &KvStateMachine,
    ) -> Result<(), Violation> {
        if applied == 0 || self.last.get(&node).is_some_and(|(i, _)| *i == applied) {
            return Ok(());
        }
        let hash = table_hash(sm);
        self.last.insert(node, (applied, hash));
        self.check(now, node, applied, hash)?;
        if applied > self.frontier.0 {
            let ids: BTreeSet<String> = sm.sessions().keys().cloned().collect();
            self.expired += self.frontier.1.difference(&ids).count() as u64;
            self.frontier = (applied, ids);
        }
        Ok(())
    }

    /// Node `node` reports the session table hash `hash` at `applied`.
    pub fn check(
        &mut self,
        now: Millis,
        node: usize,
        applied: Index,
        hash: u64,
    ) -> Result<(), Violation> {
        match self.seen.get(&applied) {
            Some(&(h, other)) if h != hash => Err(Violation {
                invariant: Invariant::SessionExpiry,
                time: now,
                nodes: vec![node_name(other), node_name(node)],
                detail: format!(
                    "at applied index {applied}, {} and {} hold different client sessions \
                     (table hashes {h:016x} and {hash:016x})",
                    node_name(other),
                    node_name(node)
                ),
            }),
            Some(_) => Ok(()),
            None => {
                self.seen.insert(applied, (hash, node));
                Ok(())
            }
        }
    }

    /// Sessions that went between successive highest indices seen.
    pub fn expired(&self) -> u64 {
        self.expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn another_table_at_the_same_index_is_a_violation() {
        let mut t = SessionTables::new();
        t.check(0, 0, 5, 1).expect("first report");
        t.check(1, 1, 5, 1).expect("the same table");
        t.check(1, 2, 6, 2).expect("another index");
        let v = t.check(2, 2, 5, 3).expect_err("another table at 5");
        assert_eq!(v.invariant, Invariant::SessionExpiry);
        assert_eq!(v.nodes, vec!["n1".to_string(), "n3".to_string()]);
    }
}
