//! The Raft node: one small function per message and role.

use super::{Config, Event, Index, Message, Millis, Status, Stores, Term, Transport};
use crate::state_machine::StateMachine;
use crate::types::{Command, NodeId};

/// A proposal the leader accepted: it sits at `index` in `term`. Its outcome arrives later as
/// [`Event::ProposalApplied`] or [`Event::ProposalLost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Where it was appended.
    pub index: Index,
    /// The leader's term.
    pub term: Term,
}

/// Why a proposal was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader accepts proposals; here is who leads, if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The command is malformed.
    #[error("bad request: {0}")]
    Invalid(String),
    /// Storage failed: the node cannot go on.
    #[error(transparent)]
    Fatal(#[from] RaftError),
}

/// A failure the node cannot recover from (storage broke). The host should stop the node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] super::StorageError),
    /// The stored state is impossible (say, a snapshot the state machine cannot restore).
    #[error("corrupt state: {0}")]
    Corrupt(String),
}

/// One Raft node over a state machine `M`.
pub struct Node<M: StateMachine> {
    cfg: Config,
    stores: Stores,
    sm: M,
    // Fields of the protocol go here.
}

impl<M: StateMachine> Node<M> {
    /// Starts a node from what `stores` hold (a snapshot is restored into `sm`, which must be
    /// empty), as a follower at time `now`. `rng_seed` seeds its election-timeout RNG.
    pub fn new(
        cfg: Config,
        stores: Stores,
        sm: M,
        rng_seed: u64,
        now: Millis,
    ) -> Result<Self, RaftError> {
        let _ = (rng_seed, now);
        todo!("{:?} {}", cfg.id, stores.log.last_index() + sm.snapshot().len() as u64)
    }

    /// Handles a message from `from`.
    pub fn step(
        &mut self,
        now: Millis,
        from: &NodeId,
        msg: Message,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let _ = (now, from, msg, out);
        todo!()
    }

    /// Advances timers to `now`: elections, heartbeats, check-quorum.
    pub fn tick(&mut self, now: Millis, out: &mut impl Transport) -> Result<(), RaftError> {
        let _ = (now, out);
        todo!()
    }

    /// Proposes a client command. Only a leader accepts; the outcome comes as an event.
    pub fn propose(
        &mut self,
        now: Millis,
        cmd: Command,
        out: &mut impl Transport,
    ) -> Result<Proposal, ProposeError> {
        let _ = (now, cmd, out);
        todo!()
    }

    /// When `tick` must next be called, at the latest.
    pub fn next_deadline(&self) -> Millis {
        todo!()
    }

    /// Makes the stores durable (see the module's durability contract).
    pub fn persist(&mut self) -> Result<(), RaftError> {
        self.stores.stable.sync()?;
        self.stores.log.sync()?;
        Ok(())
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        todo!()
    }

    /// The node's state.
    pub fn status(&self) -> Status {
        todo!()
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The state machine (read-only: only committed entries change it).
    pub fn state_machine(&self) -> &M {
        &self.sm
    }

    /// The log (read-only), for invariant checks and the playground.
    pub fn log(&self) -> &dyn super::LogStore {
        self.stores.log.as_ref()
    }

    /// Stops the node and hands back its stores: what a crash leaves behind.
    pub fn into_stores(self) -> Stores {
        self.stores
    }
}
