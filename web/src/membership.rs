//! The session's membership changes and leadership transfers: what the page's "+ Node", the
//! Members panel and the "Click a node to" modes ask of the simulated cluster. Every refusal is
//! a readable sentence naming what was asked (`cannot promote n4: n4 is not caught up: ...`);
//! the cluster itself traces each attempt.

use raftkv_core::NodeId;
use raftkv_core::sim::Cluster;
use raftkv_core::sim::cluster::MAX_NODES;
use raftkv_core::sim::network::node_name;

use crate::session::Session;

impl Session {
    /// Starts a fresh node with empty stores and no configuration: it joins nothing until the
    /// leader adds it (as a learner, or as the new voter of a replacement). Returns its id.
    /// At most [`MAX_NODES`] nodes in all: a removed node keeps its place on the ring.
    pub fn add_node(&mut self) -> Result<String, String> {
        if self.cluster.node_count() >= MAX_NODES {
            return Err(format!(
                "cannot add a node: the playground holds at most {MAX_NODES} nodes, and removed \
                 nodes keep their place (reset for a fresh cluster)"
            ));
        }
        let r = self.cluster.add_node();
        self.sync();
        r.map(node_name)
            .map_err(|v| format!("adding a node stopped the run: {v}"))
    }

    /// Asks the leader to add node `id` as a learner; returns the index of the configuration
    /// entry (the change takes effect once it commits).
    pub fn add_learner(&mut self, id: &str) -> Result<u64, String> {
        let i = self.node(id)?;
        self.change(&format!("add {id} as a learner"), |c| c.add_learner(i))
    }

    /// Asks the leader to make learner `id` a voter (refused until it caught up).
    pub fn promote(&mut self, id: &str) -> Result<u64, String> {
        let i = self.node(id)?;
        let what = format!("promote {id}");
        if let Some((_, m)) = self.shown_membership()
            && self.cluster.leader().is_some()
            && !m.is_learner(&NodeId(id.to_string()))
        {
            let why = if m.is_voter(&NodeId(id.to_string())) {
                "it is a voter already"
            } else {
                "it is not a learner (add it as a learner first)"
            };
            return Err(format!("cannot {what}: {why}"));
        }
        self.change(&what, |c| c.promote(i))
    }

    /// Asks the leader to remove member `id`: a voter, a learner, or the leader itself (which
    /// then steps down and hands over).
    pub fn remove(&mut self, id: &str) -> Result<u64, String> {
        let i = self.node(id)?;
        self.change(&format!("remove {id}"), |c| c.remove(i))
    }

    /// Asks the leader to replace voter `old` by node `new` (joining, not a member) in one
    /// joint change.
    pub fn replace(&mut self, old: &str, new: &str) -> Result<u64, String> {
        let (a, b) = (self.node(old)?, self.node(new)?);
        if a == b {
            return Err(format!("cannot replace {old} by itself"));
        }
        self.change(&format!("replace {old} by {new}"), |c| c.replace(a, b))
    }

    /// Asks the leader to hand its leadership to voter `to`; returns the leader asked.
    pub fn transfer_leader(&mut self, to: &str) -> Result<String, String> {
        let i = self.node(to)?;
        if self.cluster.leader() == Some(i) {
            return Err(format!("{to} leads already"));
        }
        let r = self.cluster.transfer_leader(i);
        self.sync();
        r.map(node_name)
            .map_err(|e| format!("cannot hand the leadership to {to}: {}", readable(&e)))
    }

    fn change(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Cluster) -> Result<u64, String>,
    ) -> Result<u64, String> {
        let r = f(&mut self.cluster);
        self.sync();
        r.map_err(|e| format!("cannot {what}: {}", readable(&e)))
    }
}

/// Core's refusals as the page says them.
fn readable(e: &str) -> String {
    if e == "no leader" {
        "no node leads right now (wait for an election)".to_string()
    } else {
        e.to_string()
    }
}
