//! The driver's side of membership changes (docs/membership.md has core's rules).
//!
//! - A change asked for through [`RaftNode::change_membership`] is proposed to core; its caller
//!   waits until core's host settles it, exactly like a write: applied here (the new
//!   configuration took effect on this leader), lost to another leader's entry, or covered by
//!   a snapshot. A leader that loses its leadership meanwhile keeps the caller waiting, since
//!   the next leader may still commit the entry (and a leader that removed itself steps down in
//!   the very Ready that applies its removal); the caller's timeout bounds the wait.
//! - When a configuration takes effect here the address table follows it (new members become
//!   reachable, leader hints name them) and the peer workers of members that left are stopped.

use std::collections::BTreeMap;

use raftkv_core::NodeId;
use raftkv_core::kvraft::Event;
use raftkv_core::raft::{
    ConfChange, ConfChangeError, Index, MemberProgress, Membership, Millis, RaftError, Role, Term,
};
use tokio::sync::oneshot;

use super::{Driver, RaftNode, Request, hint};
use crate::node_port::NodeError;

/// How a configuration change ended at the leader: the index of its entry, which took effect
/// there, or core's refusal (nothing was appended).
pub type ConfOutcome = Result<Index, ConfChangeError>;

type ConfReply = oneshot::Sender<Result<ConfOutcome, NodeError>>;
type InfoReply = oneshot::Sender<Result<ClusterInfo, NodeError>>;

/// A membership request for the driver.
pub(super) enum MemberRequest {
    /// Propose a change and answer once it is settled.
    Change {
        change: ConfChange,
        reply: ConfReply,
    },
    /// Describe the configuration now.
    Info { reply: InfoReply },
}

/// Callers waiting for their change, by the proposal's index and term.
#[derive(Default)]
pub(super) struct ConfWaiters(BTreeMap<(Index, Term), ConfReply>);

/// What this node knows of the cluster's configuration (`GET /cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader_id: Option<NodeId>,
    /// The configuration in force here.
    pub membership: Membership,
    /// The leader's view of every member's log (empty unless this node leads).
    pub progress: Vec<MemberProgress>,
    /// A configuration entry the leader appended that has not taken effect yet.
    pub pending_change: Option<Index>,
    /// The last index in this node's log.
    pub last_index: Index,
    /// Its commit index.
    pub commit_index: Index,
    /// The address of every member, as this node knows it.
    pub addrs: BTreeMap<NodeId, String>,
}

impl Driver {
    /// Carries out a membership request. Refusals are answered at once; a storage failure
    /// stops the node (the caller hears that the outcome is unknown).
    pub(super) fn member_request(
        &mut self,
        now: Millis,
        req: MemberRequest,
    ) -> Result<(), RaftError> {
        let (change, reply) = match req {
            MemberRequest::Info { reply } => {
                let _ = reply.send(Ok(self.cluster_info()));
                return Ok(());
            }
            MemberRequest::Change { change, reply } => (change, reply),
        };
        match self.node.feed().propose_conf_change(now, change) {
            Ok(p) => {
                // Callers that gave up (timed out) are not kept forever.
                self.conf.0.retain(|_, r| !r.is_closed());
                self.conf.0.insert((p.index, p.term), reply);
            }
            Err(ConfChangeError::Fatal(e)) => return Err(e),
            Err(ConfChangeError::NotLeader { leader }) => {
                let _ = reply.send(Err(NodeError::NotLeader(hint(&self.peers, leader))));
            }
            Err(refused) => {
                let _ = reply.send(Ok(Err(refused)));
            }
        }
        Ok(())
    }

    /// Settles the change `ev` decides, and follows a configuration that took effect.
    pub(super) fn conf_event(&mut self, ev: &Event) {
        let (key, answer) = match ev {
            Event::ConfChangeApplied { index, term } => ((*index, *term), Ok(Ok(*index))),
            // Another leader's entry replaced it: it never took effect; retry at the leader.
            Event::ProposalLost { index, term } => {
                let leader = self.node.leader_id().cloned();
                let lost = NodeError::NotLeader(hint(&self.peers, leader));
                ((*index, *term), Err(lost))
            }
            Event::ProposalUnknown { index, term } => {
                let unknown = NodeError::UnknownOutcome(
                    "covered by a snapshot from the leader before it was applied here".into(),
                );
                ((*index, *term), Err(unknown))
            }
            Event::MembershipChanged { index, membership } => {
                self.membership_changed(*index, membership);
                return;
            }
            _ => return,
        };
        if let Some(reply) = self.conf.0.remove(&key) {
            let _ = reply.send(answer);
        }
    }

    /// A configuration took effect here: members it adds become reachable, workers of members
    /// it drops stop.
    fn membership_changed(&mut self, index: Index, m: &Membership) {
        self.peers.apply_membership(m);
        let mut others = m.members();
        others.remove(self.node.id());
        let stopped = self.transport.retain_peers(&others);
        tracing::info!(
            index,
            voters = ?m.voters,
            outgoing = ?m.outgoing,
            learners = ?m.learners,
            stopped_sending_to = ?stopped,
            "configuration took effect"
        );
    }

    /// The node stopped: nobody will settle the changes still waiting.
    pub(super) fn fail_conf_waiters(&mut self) {
        for (_, reply) in std::mem::take(&mut self.conf.0) {
            let _ = reply.send(Err(NodeError::UnknownOutcome(
                "the node stopped before the change took effect".into(),
            )));
        }
    }

    fn cluster_info(&self) -> ClusterInfo {
        let st = self.node.status();
        ClusterInfo {
            id: st.id,
            role: st.role,
            term: st.term,
            leader_id: st.leader_id,
            membership: st.membership,
            progress: self.node.members_progress(),
            pending_change: self.node.pending_conf_index(),
            last_index: st.last_log_index,
            commit_index: st.commit_index,
            addrs: self.peers.addrs(),
        }
    }
}

impl RaftNode {
    /// Proposes `change` (this node must lead) and resolves once it took effect here, or was
    /// refused. `Err` is what a write would get in the same case: `not_leader` with a hint,
    /// or `unknown_outcome` (timed out, leadership lost, node stopped).
    pub async fn change_membership(&self, change: ConfChange) -> Result<ConfOutcome, NodeError> {
        self.request(
            |reply| Request::Member(MemberRequest::Change { change, reply }),
            |m| NodeError::UnknownOutcome(m.into()),
            self.propose_timeout,
        )
        .await
    }

    /// What the node knows of the configuration now.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, NodeError> {
        self.request(
            |reply| Request::Member(MemberRequest::Info { reply }),
            |m| NodeError::Unavailable(m.into()),
            self.propose_timeout,
        )
        .await
    }

    /// How long a write (or a configuration change) waits for its outcome.
    pub fn propose_timeout(&self) -> std::time::Duration {
        self.propose_timeout
    }
}
