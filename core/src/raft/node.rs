//! The Raft node: its state, its public API, and the dispatch of inputs to one small handler per
//! message and role (modelled on etcd-io/raft's raft.go).
//!
//! The handlers live next door, grouped by concern:
//! - [`election`](super::election): timers firing, (pre-)votes, becoming candidate or leader;
//! - [`replication`](super::replication): the leader's side of AppendEntries and the commit rule;
//! - [`append`](super::append): the follower's side of AppendEntries;
//! - [`apply`](super::apply): applying committed entries and resolving proposals;
//! - [`snapshot`](super::snapshot): compaction, InstallSnapshot and restart from a snapshot;
//! - [`read`](super::read): ReadIndex reads.
//!
//! Nothing that arrives in a message is trusted: a message that makes no sense is dropped, never
//! unwrapped. Storage failures are the only errors ([`RaftError`]), and they are fatal.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::quorum::JointConfig;
use super::replication::LeaderState;
use super::tracker::Tracker;
use super::{
    Config, Event, Index, LogEntry, Message, Millis, Role, SnapshotMeta, Status, StorageError,
    Stores, Term, Transport,
};
use crate::state_machine::StateMachine;
use crate::types::{Command, NodeId};

/// A proposal the leader accepted: it sits at `index` in `term`. Its outcome arrives later as
/// [`Event::ProposalApplied`], [`Event::ProposalLost`] or [`Event::ProposalUnknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Where it was appended.
    pub index: Index,
    /// The leader's term.
    pub term: Term,
}

/// Why a proposal (or a read) was refused.
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
    /// The configuration breaks one of [`Config`]'s invariants; the node cannot start.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
}

/// One Raft node over a state machine `M`.
pub struct Node<M: StateMachine> {
    pub(super) cfg: Config,
    pub(super) stores: Stores,
    pub(super) sm: M,
    /// Draws election timeouts. Seeded by the host: the same seed gives the same run.
    pub(super) rng: ChaCha8Rng,

    /// A copy of the durable term. Invariant: equal to `stores.stable`'s term after every call.
    pub(super) term: Term,
    /// A copy of the durable vote in `term` (except under the `forget_to_persist_vote` break).
    pub(super) voted_for: Option<NodeId>,

    /// The role. Invariant: `leader.is_some()` iff `role == Leader`.
    pub(super) role: Role,
    /// The leader of `term`, as far as this node knows (itself when it leads).
    pub(super) leader_id: Option<NodeId>,
    /// The highest index known to be committed. Never decreases while the node runs.
    /// Invariant: snapshot.last_included_index <= last_applied <= commit_index <= last_index.
    pub(super) commit_index: Index,
    /// The highest index applied to `sm`. Apply is synchronous: after every public call
    /// `last_applied == commit_index`.
    pub(super) last_applied: Index,
    /// The latest snapshot this node holds (restored into `sm` or taken from it).
    /// Invariant: equals the log's base.
    pub(super) snapshot: SnapshotMeta,

    /// When the election timer was last reset.
    pub(super) election_timer_start: Millis,
    /// When a follower or (pre-)candidate starts an election, unless it hears from a leader.
    /// Invariant: election_timer_start + min <= election_deadline <= start + max.
    pub(super) election_deadline: Millis,
    /// When this node last heard from the leader of its term: while that is less than an
    /// election timeout ago, (with check-quorum) it refuses to help anyone unseat the leader.
    pub(super) last_leader_contact: Option<Millis>,
    /// Votes received in the current (pre-)election; `true` is granted. Empty unless the node
    /// is a (pre-)candidate.
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// The members and, while leading, their progress: every quorum decision goes through it.
    pub(super) tracker: Tracker,
    /// Replication and read state, present only while leading.
    pub(super) leader: Option<LeaderState>,

    /// Proposals this node accepted as leader and whose outcome is not known yet:
    /// index -> term. Invariant: every key is > last_applied.
    pub(super) proposals: BTreeMap<Index, Term>,
    /// Outputs for the host, oldest first.
    pub(super) events: Vec<Event>,
    /// The id the next read request gets.
    pub(super) next_read_id: u64,
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
        cfg.validate().map_err(|e| RaftError::InvalidConfig(e.0))?;
        let hs = stores.stable.hard_state()?;
        let tracker = Tracker::new(
            JointConfig::simple(cfg.voters.iter().cloned()),
            Default::default(),
        );
        let mut node = Node {
            tracker,
            cfg,
            stores,
            sm,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            term: hs.term,
            voted_for: hs.voted_for,
            role: Role::Follower,
            leader_id: None,
            commit_index: 0,
            last_applied: 0,
            snapshot: SnapshotMeta::default(),
            election_timer_start: now,
            election_deadline: now,
            last_leader_contact: None,
            votes: BTreeMap::new(),
            leader: None,
            proposals: BTreeMap::new(),
            events: Vec::new(),
            next_read_id: 1,
        };
        node.restore_from_stores()?;
        node.reset_election_timer(now);
        Ok(node)
    }

    /// Handles a message from `from`. Messages from non-members, from itself, or carrying a
    /// term or index beyond any real cluster's reach (2^62) are dropped.
    pub fn step(
        &mut self,
        now: Millis,
        from: &NodeId,
        msg: Message,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        if from == &self.cfg.id || !self.is_member(from) || !within_limits(&msg) {
            return Ok(());
        }
        if !self.check_term(now, from, &msg, out)? {
            return Ok(());
        }
        match msg {
            Message::RequestVote(m) => self.handle_request_vote(now, from, m, out),
            Message::RequestVoteResponse(m) => self.handle_vote_response(now, from, m, out),
            Message::AppendEntries(m) => self.handle_append_entries(now, from, m, out),
            Message::AppendEntriesResponse(m) => self.handle_append_response(now, from, m, out),
            Message::InstallSnapshot(m) => self.handle_install_snapshot(now, from, m, out),
            Message::InstallSnapshotResponse(m) => {
                self.handle_install_snapshot_response(now, from, m, out)
            }
        }
    }

    /// Advances timers to `now`: elections, heartbeats, check-quorum.
    pub fn tick(&mut self, now: Millis, out: &mut impl Transport) -> Result<(), RaftError> {
        match self.role {
            Role::Leader => self.tick_leader(now, out),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if now >= self.election_deadline {
                    self.campaign(now, out)?;
                }
                Ok(())
            }
        }
    }

    /// Proposes a client command. Only a leader accepts; the outcome comes as an event.
    pub fn propose(
        &mut self,
        now: Millis,
        cmd: Command,
        out: &mut impl Transport,
    ) -> Result<Proposal, ProposeError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        cmd.validate()
            .map_err(|e| ProposeError::Invalid(e.to_string()))?;
        let index = self.append_local(Some(cmd))?;
        self.proposals.insert(index, self.term);
        self.replicate_new_entries(now, out)?;
        Ok(Proposal {
            index,
            term: self.term,
        })
    }

    /// When `tick` must next be called, at the latest.
    pub fn next_deadline(&self) -> Millis {
        match &self.leader {
            Some(ls) => {
                let mut d = ls.heartbeat_deadline;
                if self.cfg.check_quorum
                    && let Some(q) = self.quorum_deadline()
                {
                    d = d.min(q);
                }
                if let Some(r) = ls.reads.next_deadline() {
                    d = d.min(r);
                }
                d
            }
            None => self.election_deadline,
        }
    }

    /// Makes the stores durable (see the module's durability contract).
    pub fn persist(&mut self) -> Result<(), RaftError> {
        self.stores.stable.sync()?;
        self.stores.log.sync()?;
        Ok(())
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The node's state.
    pub fn status(&self) -> Status {
        let last_log_index = self.last_index();
        // The last index is always readable (it is in the log or is its base); a store failing
        // here would fail the next real call too, which reports it.
        let last_log_term = self.stores.log.term_at(last_log_index).unwrap_or_default();
        let (election_timer_start, election_deadline) = match &self.leader {
            // The check-quorum window, drawn like an election timer.
            Some(ls) => match self.quorum_deadline() {
                Some(d) => (d.saturating_sub(self.cfg.election_timeout_min), d),
                None => (
                    ls.heartbeat_deadline
                        .saturating_sub(self.cfg.heartbeat_interval),
                    ls.heartbeat_deadline,
                ),
            },
            None => (self.election_timer_start, self.election_deadline),
        };
        Status {
            id: self.cfg.id.clone(),
            role: self.role,
            term: self.term,
            voted_for: self.voted_for.clone(),
            leader_id: self.leader_id.clone(),
            commit_index: self.commit_index,
            last_applied: self.last_applied,
            last_log_index,
            last_log_term,
            snapshot_index: self.snapshot.last_included_index,
            election_timer_start,
            election_deadline,
        }
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

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this node currently believes it leads.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader this node knows of in its term (itself when it leads).
    pub fn leader_id(&self) -> Option<&NodeId> {
        self.leader_id.as_ref()
    }

    /// The commit index.
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    /// The last index applied to the state machine: a host answers a read whose read index is
    /// `i` once `last_applied() >= i`.
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }
}

// ---------------------------------------------------------------------------------------------
// Terms and roles shared by every handler.
// ---------------------------------------------------------------------------------------------

impl<M: StateMachine> Node<M> {
    /// The first check on every message: steps down on a higher term, answers a stale sender
    /// with our term, and says whether the message should be handled further.
    fn check_term(
        &mut self,
        now: Millis,
        from: &NodeId,
        msg: &Message,
        out: &mut impl Transport,
    ) -> Result<bool, RaftError> {
        let term = msg.term();
        if term < self.term {
            self.answer_stale(from, msg, out);
            return Ok(false);
        }
        if term == self.term {
            return Ok(true);
        }
        match msg {
            Message::RequestVote(m) => {
                // Leader stickiness: while we hear from a live leader, nobody unseats it, and a
                // node that rejoins from a partition cannot disrupt the cluster.
                if self.in_leader_lease(now) {
                    self.deny_vote(from, m.pre_vote, out);
                    return Ok(false);
                }
                // A pre-vote changes nothing on the receiver, not even its term.
                if m.pre_vote {
                    return Ok(true);
                }
            }
            // A granted pre-vote echoes the term we would campaign in, not a term anyone is in.
            Message::RequestVoteResponse(m) if m.pre_vote && m.vote_granted => return Ok(true),
            _ => {}
        }
        let leader = match msg {
            Message::AppendEntries(_) | Message::InstallSnapshot(_) => Some(from.clone()),
            _ => None,
        };
        self.become_follower(now, term, leader)?;
        Ok(true)
    }

    /// Tells the sender of a message from an older term about ours, so that a deposed leader or
    /// a candidate that fell behind catches up. Responses from older terms are just dropped.
    fn answer_stale(&mut self, from: &NodeId, msg: &Message, out: &mut impl Transport) {
        let reply = match msg {
            Message::RequestVote(m) => {
                self.deny_vote(from, m.pre_vote, out);
                return;
            }
            Message::AppendEntries(_) => {
                Message::AppendEntriesResponse(super::AppendEntriesResponse {
                    term: self.term,
                    success: false,
                    match_index: 0,
                    conflict_index: None,
                    conflict_term: None,
                    read_seq: 0,
                })
            }
            Message::InstallSnapshot(_) => {
                Message::InstallSnapshotResponse(super::InstallSnapshotResponse {
                    term: self.term,
                    last_included_index: 0,
                })
            }
            _ => return,
        };
        out.send(from, reply);
    }

    /// Becomes a follower in `term` (which must not be lower than ours), following `leader`.
    /// A new term is persisted, with no vote, before anything else happens.
    pub(super) fn become_follower(
        &mut self,
        now: Millis,
        term: Term,
        leader: Option<NodeId>,
    ) -> Result<(), RaftError> {
        let term_changed = term > self.term;
        if term_changed {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state()?;
        }
        let role_changed = self.role != Role::Follower;
        if self.role == Role::Leader {
            self.step_down_as_leader();
        }
        self.role = Role::Follower;
        self.votes.clear();
        if term_changed || role_changed {
            self.events.push(Event::RoleChanged {
                role: Role::Follower,
                term: self.term,
            });
        }
        self.set_leader(leader, now);
        self.reset_election_timer(now);
        Ok(())
    }

    /// Records who leads the current term, telling the host when that changes.
    pub(super) fn set_leader(&mut self, leader: Option<NodeId>, now: Millis) {
        if leader.is_some() {
            self.last_leader_contact = Some(now);
        }
        if leader != self.leader_id {
            if leader.is_none() {
                self.last_leader_contact = None;
            }
            self.leader_id = leader.clone();
            self.events.push(Event::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    /// Changes the role within the current term and tells the host.
    pub(super) fn set_role(&mut self, role: Role) {
        self.role = role;
        self.events.push(Event::RoleChanged {
            role,
            term: self.term,
        });
    }

    /// Writes the term and vote. Called before any message that depends on them leaves.
    pub(super) fn persist_hard_state(&mut self) -> Result<(), RaftError> {
        let hs = super::HardState {
            term: self.term,
            voted_for: self.voted_for.clone(),
        };
        self.stores.stable.set_hard_state(&hs)?;
        Ok(())
    }

    /// Starts a fresh, randomized election timeout at `now`.
    pub(super) fn reset_election_timer(&mut self, now: Millis) {
        let timeout = self
            .rng
            .random_range(self.cfg.election_timeout_min..=self.cfg.election_timeout_max);
        self.election_timer_start = now;
        self.election_deadline = now.saturating_add(timeout);
    }

    /// The error a non-leader answers proposals and reads with.
    pub(super) fn not_leader(&self) -> ProposeError {
        ProposeError::NotLeader {
            leader: self.leader_id.clone(),
        }
    }

    /// Whether `id` is a member (messages from anyone else are dropped).
    pub(super) fn is_member(&self, id: &NodeId) -> bool {
        self.tracker.is_member(id)
    }

    /// Every member except this node.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        self.tracker.peers_of(&self.cfg.id)
    }

    /// When check-quorum steps this leader down unless more answers come: an election
    /// timeout after the time since which a quorum has answered. `None` when the leader
    /// alone is a quorum.
    pub(super) fn quorum_deadline(&self) -> Option<Millis> {
        let since = self.tracker.quorum_active_since();
        (since != Millis::MAX).then(|| since.saturating_add(self.cfg.election_timeout_min))
    }
}

// ---------------------------------------------------------------------------------------------
// The log, as the handlers see it.
// ---------------------------------------------------------------------------------------------

impl<M: StateMachine> Node<M> {
    /// The last index in the log (or its base).
    pub(super) fn last_index(&self) -> Index {
        self.stores.log.last_index()
    }

    /// The term of the last entry (or of the base).
    pub(super) fn last_term(&self) -> Result<Term, RaftError> {
        self.term_at(self.last_index())
    }

    /// The term at `index`, which must be in the log or be its base.
    pub(super) fn term_at(&self, index: Index) -> Result<Term, RaftError> {
        Ok(self.stores.log.term_at(index)?)
    }

    /// The term at `index`, or `None` when the log does not reach that far. A compacted index
    /// is still an error: callers check against the base first.
    pub(super) fn term_if_present(&self, index: Index) -> Result<Option<Term>, RaftError> {
        if index > self.last_index() {
            return Ok(None);
        }
        match self.stores.log.term_at(index) {
            Ok(t) => Ok(Some(t)),
            Err(StorageError::Missing(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends one entry of the current term at the end of the log and returns its index.
    pub(super) fn append_local(&mut self, cmd: Option<Command>) -> Result<Index, RaftError> {
        let index = self.last_index() + 1;
        let entry = LogEntry {
            index,
            term: self.term,
            cmd,
        };
        self.stores.log.append(std::slice::from_ref(&entry))?;
        if self.leader.is_some() {
            self.self_ack(index);
        }
        Ok(index)
    }
}

/// The largest term or index a message may carry. Real clusters never get near it; refusing
/// more keeps every `+ 1` on terms and indices from overflowing, and keeps a forged message
/// from pinning the node at a term it can never leave.
const LIMIT: u64 = 1 << 62;

/// Whether a message's term and the indices the node stores stay below [`LIMIT`].
fn within_limits(msg: &Message) -> bool {
    let indices_ok = match msg {
        Message::AppendEntries(m) => {
            m.prev_log_index < LIMIT && m.entries.last().is_none_or(|e| e.index < LIMIT)
        }
        Message::InstallSnapshot(m) => m.last_included_index < LIMIT,
        _ => true,
    };
    msg.term() < LIMIT && indices_ok
}
