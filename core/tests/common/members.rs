//! Membership on the hand-driven cluster: nodes that join a running cluster, and changes
//! proposed at a node.

use raftkv_core::raft::{ConfChange, ConfChangeError, Membership, Proposal};

use super::{Cluster, id, test_config};

impl Cluster {
    /// Starts `n` as a node joining the cluster: empty stores and no configuration, so it
    /// waits for the leader's.
    pub fn join(&mut self, n: &str) {
        let n = id(n);
        self.configs.insert(n.clone(), test_config(&n, &[]));
        self.crashed
            .insert(n.clone(), raftkv_core::kvraft::Stores::in_memory());
        self.restart(&n);
    }

    /// Proposes `change` at `n` and queues what it sends.
    pub fn change(&mut self, n: &str, change: ConfChange) -> Result<Proposal, ConfChangeError> {
        let n = id(n);
        let mut out = Vec::new();
        let now = self.now;
        let r = self
            .nodes
            .get_mut(&n)
            .unwrap()
            .propose_conf_change(now, change, &mut out);
        self.collect(&n);
        self.enqueue(&n, out);
        r
    }

    /// The configuration in force at `n`.
    pub fn membership(&self, n: &str) -> Membership {
        self.node(&id(n)).membership().clone()
    }

    /// Runs until every live node has `want` in force; panics after 5 s.
    pub fn settle_on(&mut self, want: &Membership) {
        let ok = self.advance_until(5_000, |c| {
            c.nodes.values().all(|node| node.membership() == want)
        });
        let now: Vec<_> = self
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.membership().clone()))
            .collect();
        assert!(ok, "the cluster never settled on {want:?}: {now:?}");
    }
}
