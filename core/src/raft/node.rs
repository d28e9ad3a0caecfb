//! The Raft node: its state, its public API, and the dispatch of inputs to one small handler per
//! message and role (modelled on etcd-io/raft's raft.go).
//!
//! The handlers live next door, grouped by concern:
//! - [`election`](super::election): timers firing, (pre-)votes, becoming candidate or leader;
//! - [`replication`](super::replication): the leader's side of AppendEntries and the commit rule;
//! - [`append`](super::append): the follower's side of AppendEntries;
//! - [`apply`](super::apply): applying committed entries and resolving proposals;
//! - [`snapshot`](super::snapshot): compaction, InstallSnapshot and restart from a snapshot;
//! - [`read`](super::read): ReadIndex reads;
//! - [`transfer`](super::transfer): leadership transfer (TimeoutNow);
//! - [`lease`](super::lease): lease reads.
//!
//! Nothing that arrives in a message is trusted: a message that makes no sense is dropped, never
//! unwrapped. Storage failures are the only errors ([`RaftError`]), and they are fatal.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::membership::Membership;
use super::ready::{Pending, Ready};
use super::replication::{LeaderState, Send};
use super::tracker::Tracker;
use super::{
    Config, Event, HardState, Index, LogEntry, LogStore, MemLogStore, Message, Millis, Payload,
    Role, SnapshotInfo, SnapshotMeta, Status, StorageError, Term,
};
use crate::state_machine::StateMachine;
use crate::types::NodeId;

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
    /// Too many bytes of entries wait for a quorum (followers gone or slow): nothing was
    /// appended; retry later.
    #[error("overloaded: {uncommitted_bytes} bytes of entries wait for a quorum (cap {cap})")]
    Overloaded {
        /// Bytes of uncommitted entries in the leader's log.
        uncommitted_bytes: u64,
        /// The configured cap.
        cap: u64,
    },
    /// The leader is handing its leadership to `to`: proposals wait for the new leader
    /// (retry shortly, there or here if the transfer is abandoned).
    #[error("transferring leadership to {to}")]
    Transferring {
        /// The voter taking over.
        to: NodeId,
    },
    /// Storage failed: the node cannot go on.
    #[error(transparent)]
    Fatal(#[from] RaftError),
}

/// Why a leadership transfer was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum TransferError {
    /// Only the leader transfers its leadership.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The target is not a voter other than this leader (unknown, a learner, or the leader
    /// itself).
    #[error("{id} is not a voter other than the leader")]
    NotVoter {
        /// The target.
        id: NodeId,
    },
    /// There is no other voter to hand over to.
    #[error("no other voter to transfer leadership to")]
    NoCandidate,
}

/// What the leader knows of one member, for status pages (`GET /cluster`, the playground).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberProgress {
    /// The member.
    pub id: NodeId,
    /// Whether it votes.
    pub voter: bool,
    /// The highest index known to be stored there.
    pub match_index: Index,
    /// The next index the leader sends it.
    pub next_index: Index,
    /// probe, replicate or snapshot.
    pub state: String,
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
    /// The state machine's own storage failed (see
    /// [`SmError`](crate::state_machine::SmError)): the host must stop.
    #[error("state machine: {0}")]
    StateMachine(String),
    /// The configuration breaks one of [`Config`]'s invariants; the node cannot start.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
}

/// What a node starts from: what its host found in durable storage.
pub struct InitialState<C> {
    /// The durable term and vote.
    pub hard_state: HardState,
    /// The durable log (every entry after its base).
    pub log: MemLogStore<C>,
    /// The latest durable snapshot's metadata, if any; the host has restored it into its
    /// state machine.
    pub snapshot: Option<SnapshotInfo>,
    /// The state machine's applied index: every entry up to it is committed (a durable state
    /// machine applied it before the restart). The host skips those when they are handed out
    /// again; the node counts them committed.
    pub applied: Index,
}

impl<C> Default for InitialState<C> {
    fn default() -> Self {
        InitialState {
            hard_state: HardState::default(),
            log: MemLogStore::default(),
            snapshot: None,
            applied: 0,
        }
    }
}

/// One Raft node, for a state machine of type `M` (only its command and reply types: the node
/// holds no state machine and does no I/O).
pub struct Node<M: StateMachine> {
    pub(super) cfg: Config,
    /// Draws election timeouts. Seeded by the host: the same seed gives the same run.
    pub(super) rng: ChaCha8Rng,
    /// The node's whole log, durable or not: the host writes what each Ready says, so the
    /// durable log is this one up to `persisted`.
    pub(super) log: MemLogStore<M::Command>,

    /// The current term (durable once the Ready that changed it is).
    pub(super) term: Term,
    /// The vote in `term` (except under the `forget_to_persist_vote` break, not handed out).
    pub(super) voted_for: Option<NodeId>,

    /// The role. Invariant: `leader.is_some()` iff `role == Leader`.
    pub(super) role: Role,
    /// The leader of `term`, as far as this node knows (itself when it leads).
    pub(super) leader_id: Option<NodeId>,
    /// The highest index known to be committed. Never decreases while the node runs.
    /// Invariant: applied <= applying <= commit_index <= last_index, and
    /// snapshot.last_included_index <= applying (an installed snapshot is handed out at once).
    pub(super) commit_index: Index,
    /// The highest index handed to the host to apply (in a Ready's `committed`, or as an
    /// installed snapshot).
    pub(super) applying: Index,
    /// The highest index the host reported applied.
    pub(super) applied: Index,
    /// The log is durable up to here (the host said so through `advance`). Only durable
    /// entries are applied, and the leader counts itself toward a quorum only up to here.
    pub(super) persisted: Index,
    /// The latest snapshot this node holds. Invariant: its index >= the log's base.
    pub(super) snapshot: SnapshotMeta,
    /// What the host's snapshot store holds of it (size, checksum, configuration): the node
    /// holds no snapshot bytes; its host reads chunks from the store as they leave.
    /// Invariant: `Some` with `snapshot`'s meta whenever `snapshot` is not the default.
    pub(super) snapshot_info: Option<SnapshotInfo>,
    /// The snapshot this follower is receiving, chunk by chunk, if any.
    pub(super) incoming: Option<super::snapshot::Incoming>,
    /// What the host must do with its snapshot store for the chunks stepped (see
    /// `take_receive_ops`).
    pub(super) receive_ops: Vec<super::snapshot::ReceiveOp>,
    /// Counters of the snapshot protocol.
    pub(super) snapshot_stats: super::snapshot::SnapshotStats,

    /// When the election timer was last reset.
    pub(super) election_timer_start: Millis,
    /// When a follower or (pre-)candidate starts an election, unless it hears from a leader.
    /// Invariant: election_timer_start + min <= election_deadline <= start + max.
    pub(super) election_deadline: Millis,
    /// When this node last heard from the leader of its term: while that is less than an
    /// election timeout ago, (with check-quorum) it refuses to help anyone unseat the leader.
    pub(super) last_leader_contact: Option<Millis>,
    /// When this node started (`Node::new`'s `now`): it may have heard a leader just before
    /// it stopped, so (with check-quorum) it refuses (pre-)votes in later terms for an
    /// election timeout from here (see `in_vote_barrier`). Invariant: <= `now`.
    pub(super) started_at: Millis,
    /// Votes received in the current (pre-)election; `true` is granted. Empty unless the node
    /// is a (pre-)candidate.
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// The configuration in force (see `reconfig`). Invariant: the tracker's voters and
    /// learners are this configuration's, and it is the last of `confs`.
    pub(super) membership: Membership,
    /// The configurations that took effect here, by the index of their entry, oldest first:
    /// the first is the one at the snapshot (or the one the node was created with, at 0).
    /// Invariant: not empty, indices increasing, none past `applying`; only the last at or
    /// below the snapshot index is kept of those.
    pub(super) confs: Vec<(Index, Membership)>,
    /// Leader only: the index of the last configuration entry in its log. No change is
    /// proposed until `applying` reaches it (one change at a time); set to the last index on
    /// election, so changes from earlier terms take effect first.
    pub(super) pending_conf_index: Index,
    /// The members and, while leading, their progress: every quorum decision goes through it.
    pub(super) tracker: Tracker,
    /// Replication and read state, present only while leading.
    pub(super) leader: Option<LeaderState>,
    /// Leader only: entries of this term not committed yet, with their sizes, oldest first.
    /// Invariant: `uncommitted_bytes` is the sum of the sizes.
    pub(super) uncommitted: VecDeque<(Index, u64)>,
    /// See `uncommitted`.
    pub(super) uncommitted_bytes: u64,

    /// The latest time a host passed in.
    pub(super) now: Millis,
    /// Output waiting for the next Ready.
    pub(super) pending: Pending<M::Command, M::Reply>,
    /// The leader appended entries or heard answers since the last Ready: it sends what each
    /// follower needs when the Ready is taken (one AppendEntries per follower for many
    /// proposals).
    pub(super) flush: bool,
    /// The id the next read request gets.
    pub(super) next_read_id: u64,
    _sm: PhantomData<fn() -> M>,
}

impl<M: StateMachine> Node<M> {
    /// Starts a node from what its host found in durable storage, as a follower at time `now`.
    /// `rng_seed` seeds its election-timeout RNG.
    pub fn new(
        cfg: Config,
        init: InitialState<M::Command>,
        rng_seed: u64,
        now: Millis,
    ) -> Result<Self, RaftError> {
        cfg.validate().map_err(|e| RaftError::InvalidConfig(e.0))?;
        let membership = Membership::with_voters(cfg.voters.iter().cloned());
        let tracker = Tracker::new(membership.joint_config(), membership.learners.clone());
        let persisted = init.log.last_index();
        let mut node = Node {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            log: init.log,
            term: init.hard_state.term,
            voted_for: init.hard_state.voted_for,
            role: Role::Follower,
            leader_id: None,
            commit_index: 0,
            applying: 0,
            applied: 0,
            persisted,
            snapshot: SnapshotMeta::default(),
            snapshot_info: None,
            incoming: None,
            receive_ops: Vec::new(),
            snapshot_stats: Default::default(),
            election_timer_start: now,
            election_deadline: now,
            last_leader_contact: None,
            started_at: now,
            votes: BTreeMap::new(),
            confs: vec![(0, membership.clone())],
            membership,
            pending_conf_index: 0,
            tracker,
            leader: None,
            uncommitted: VecDeque::new(),
            uncommitted_bytes: 0,
            now,
            pending: Pending::default(),
            flush: false,
            next_read_id: 1,
            _sm: PhantomData,
        };
        node.restore_from(init.snapshot)?;
        // Entries known committed before the restart are handed out again in the first
        // Ready, configuration entries among them, before the node may campaign.
        let commit = init.hard_state.commit.min(node.last_index());
        node.commit_index = node.commit_index.max(commit);
        if init.applied > node.last_index() {
            return Err(RaftError::Corrupt(format!(
                "the state machine applied up to {} but the log ends at {}",
                init.applied,
                node.last_index()
            )));
        }
        node.commit_index = node.commit_index.max(init.applied);
        node.reset_election_timer(now);
        node.check_invariants();
        Ok(node)
    }

    /// Handles a message from `from`. Messages from removed nodes, from itself, or carrying a
    /// term or index beyond any real cluster's reach (2^62) are dropped.
    pub fn step(
        &mut self,
        now: Millis,
        from: &NodeId,
        msg: Message<M::Command>,
    ) -> Result<(), RaftError> {
        self.now = self.now.max(now);
        // Messages from removed nodes are dropped, so they cannot disrupt the cluster. Nodes
        // never heard of are heard: members added while this node was away (or, joining, the
        // leader that added it), whose configuration reaches it with the log. A leader that
        // removed itself hands over with TimeoutNow after its removal took effect here too:
        // from the leader we follow, that one message still counts.
        let handover =
            matches!(msg, Message::TimeoutNow(_)) && self.leader_id.as_ref() == Some(from);
        let dropped = self.membership.removed.contains(from) && !handover;
        if from == &self.cfg.id || dropped || !within_limits(&msg) {
            return Ok(());
        }
        if !self.check_term(now, from, &msg)? {
            return Ok(());
        }
        match msg {
            Message::RequestVote(m) => self.handle_request_vote(now, from, m),
            Message::RequestVoteResponse(m) => self.handle_vote_response(now, from, m),
            Message::AppendEntries(m) => self.handle_append_entries(now, from, m),
            Message::AppendEntriesResponse(m) => self.handle_append_response(now, from, m),
            Message::InstallSnapshot(m) => self.handle_install_snapshot(now, from, m),
            Message::InstallSnapshotResponse(m) => {
                self.handle_install_snapshot_response(now, from, m)
            }
            Message::TimeoutNow(m) => self.handle_timeout_now(now, from, m),
        }?;
        self.check_invariants();
        Ok(())
    }

    /// Advances timers to `now`: elections, heartbeats, check-quorum.
    pub fn tick(&mut self, now: Millis) -> Result<(), RaftError> {
        self.now = self.now.max(now);
        match self.role {
            Role::Leader => self.tick_leader(now)?,
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if now >= self.election_deadline {
                    if self.may_campaign()? {
                        self.campaign(now)?;
                    } else {
                        // Learners, removed and joining nodes never campaign.
                        self.reset_election_timer(now);
                    }
                }
            }
        }
        self.check_invariants();
        Ok(())
    }

    /// Proposes a client command. Only a leader accepts; the outcome comes as an event once
    /// the host applied it. Refused with [`ProposeError::Overloaded`] while the entries that
    /// wait for a quorum already take `max_uncommitted_bytes`, and with
    /// [`ProposeError::Transferring`] while a leadership transfer is pending.
    pub fn propose(&mut self, now: Millis, cmd: M::Command) -> Result<Proposal, ProposeError> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        if let Some(to) = self.transfer_target() {
            return Err(ProposeError::Transferring { to: to.clone() });
        }
        let size = M::command_size(&cmd);
        let cap = self.cfg.max_uncommitted_bytes;
        // One entry always fits, however large, so an oversized command is not refused forever.
        if cap > 0 && self.uncommitted_bytes > 0 && self.uncommitted_bytes + size > cap {
            return Err(ProposeError::Overloaded {
                uncommitted_bytes: self.uncommitted_bytes,
                cap,
            });
        }
        let index = self.append_local(Payload::Command(cmd), size)?;
        self.check_invariants();
        Ok(Proposal {
            index,
            term: self.term,
        })
    }

    /// Whether [`ready`](Self::ready) has anything to hand out.
    pub fn has_ready(&self) -> bool {
        !self.pending.is_empty()
            || self.flush
            || self
                .leader
                .as_ref()
                .is_some_and(|ls| ls.reads.round_pending)
            || self.next_committed_hi() > self.applying
    }

    /// Hands out everything to write, send, apply and report since the last call (see
    /// [`Ready`] for what the host does with it).
    pub fn ready(&mut self) -> Result<Ready<M::Command, M::Reply>, RaftError> {
        let flush = std::mem::take(&mut self.flush);
        let round = self
            .leader
            .as_mut()
            .is_some_and(|ls| std::mem::take(&mut ls.reads.round_pending));
        let now = self.now;
        if round {
            // One round for every read of this Ready; its messages carry new entries too.
            self.broadcast_append(now, Send::ReadRound)?;
        } else if flush && self.leader.is_some() {
            self.broadcast_append(now, Send::NewEntries)?;
        }
        let hi = self.next_committed_hi();
        let committed = if hi > self.applying {
            let lo = self.applying + 1;
            let hi = hi.min(self.applying + APPLY_BATCH);
            let entries = self.log.read_range(lo, hi + 1)?;
            self.applying = hi;
            self.take_effect(&entries)?;
            entries
        } else {
            Vec::new()
        };
        self.maybe_leave_joint()?;
        let p = std::mem::take(&mut self.pending);
        debug_assert!(
            p.entries.windows(2).all(|w| w[1].index == w[0].index + 1),
            "a Ready's entries are contiguous"
        );
        let last = self.last_index();
        let rd = Ready {
            hard_state: p.hard_state.then(|| self.hard_state()),
            snapshot: p.snapshot,
            truncate_from: p.truncate_from,
            compact_to: p.compact_to,
            entries: p.entries,
            messages: p.messages,
            persisted_messages: p.persisted_messages,
            committed,
            events: p.events,
            last_entry: (last, self.term_at(last)?),
        };
        self.check_invariants();
        Ok(rd)
    }

    /// The host made a Ready durable (its `last_entry`) and applied everything up to
    /// `applied`. The leader now counts its own entries up to there toward the quorum.
    pub fn advance(&mut self, last_entry: (Index, Term), applied: Index) -> Result<(), RaftError> {
        let (index, term) = last_entry;
        // A later truncation may have replaced that entry: then only the prefix both share is
        // known durable, and `truncate_log_from` already lowered `persisted` to it.
        // Likewise a snapshot adopted meanwhile may have compacted it away: the Ready that
        // carries that snapshot reports its own last entry.
        let compacted = index < self.log.base().last_included_index;
        if !compacted && index > self.persisted && self.term_if_present(index)? == Some(term) {
            self.persisted = index;
        }
        debug_assert!(
            applied <= self.applying,
            "applied {applied} past {}",
            self.applying
        );
        self.applied = self.applied.max(applied);
        if self.leader.is_some() {
            let persisted = self.persisted;
            self.self_ack(persisted);
            self.maybe_commit()?;
        }
        self.check_invariants();
        Ok(())
    }

    /// The host snapshotted its state machine at `info`'s index (which it applied) and stored
    /// it: the node keeps its metadata to send it to followers, and the next Ready compacts
    /// the log behind (less `snapshot_trailing` entries). Transfers of the previous snapshot
    /// start over with this one.
    pub fn snapshot_taken(&mut self, info: SnapshotInfo) -> Result<(), RaftError> {
        let index = info.meta.last_included_index;
        if index <= self.snapshot.last_included_index || index > self.applied {
            return Ok(());
        }
        let meta = SnapshotMeta {
            last_included_index: index,
            last_included_term: self.term_at(index)?,
        };
        if meta != info.meta {
            return Err(RaftError::Corrupt(format!(
                "a snapshot taken at {index} of term {} but the log has term {}",
                info.meta.last_included_term, meta.last_included_term
            )));
        }
        self.pending.snapshot = Some(super::ReadySnapshot {
            meta,
            membership: info.membership.clone(),
            install: false,
        });
        self.snapshot = meta;
        self.trim_confs(index);
        self.snapshot_info = Some(info);
        self.compact_behind(meta)?;
        self.check_invariants();
        Ok(())
    }

    /// The configuration in force at `index` (at or after the snapshot): what a snapshot
    /// taken there records.
    pub fn membership_at_index(&self, index: Index) -> Membership {
        self.membership_at(index)
    }

    /// What the snapshot store holds of this node's snapshot, if it has one.
    pub fn snapshot_info(&self) -> Option<&SnapshotInfo> {
        self.snapshot_info.as_ref()
    }

    /// Counters of the chunked snapshot protocol since this node started.
    pub fn snapshot_stats(&self) -> super::snapshot::SnapshotStats {
        self.snapshot_stats
    }

    /// This leader's snapshot transfers under way, by follower.
    pub fn snapshot_transfers(&self) -> Vec<(NodeId, super::tracker::SnapshotSend)> {
        if self.leader.is_none() {
            return Vec::new();
        }
        self.peers()
            .into_iter()
            .filter_map(|id| {
                let send = self.tracker.progress(&id)?.snapshot_send.clone()?;
                Some((id, send))
            })
            .collect()
    }

    /// Whether a follower is receiving this leader's snapshot and answered within
    /// [`Config::snapshot_abandon_after`]: the host then keeps the snapshot (takes no new one,
    /// so the log is not compacted past what the transfer needs either; etcd#4055).
    pub fn snapshot_pinned(&self) -> bool {
        let abandon_after = self.cfg.snapshot_abandon_after();
        self.leader.is_some()
            && self.peers().iter().any(|id| {
                self.tracker.progress(id).is_some_and(|pr| {
                    pr.snapshot_send.is_some()
                        && pr
                            .snapshot_heard
                            .is_some_and(|h| self.now.saturating_sub(h) < abandon_after)
                })
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
                if let Some(t) = self.transfer_deadline() {
                    d = d.min(t);
                }
                d
            }
            None => self.election_deadline,
        }
    }

    /// The node's state.
    pub fn status(&self) -> Status {
        let last_log_index = self.last_index();
        // The last index is always in the log or is its base.
        let last_log_term = self.log.term_at(last_log_index).unwrap_or_default();
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
            last_applied: self.applied,
            last_log_index,
            last_log_term,
            snapshot_index: self.snapshot.last_included_index,
            election_timer_start,
            election_deadline,
            membership: self.membership.clone(),
            transfer_to: self.transfer_target().cloned(),
            lease_until: self.lease_until(),
        }
    }

    /// What this leader knows of each member (empty when not leading).
    pub fn members_progress(&self) -> Vec<MemberProgress> {
        if self.leader.is_none() {
            return Vec::new();
        }
        self.membership
            .members()
            .into_iter()
            .filter_map(|id| {
                let pr = self.tracker.progress(&id)?;
                Some(MemberProgress {
                    voter: self.membership.is_voter(&id),
                    match_index: pr.match_index,
                    next_index: pr.next_index,
                    state: pr.state.name().to_string(),
                    id,
                })
            })
            .collect()
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The node's log (read-only; durable up to what the host persisted), for invariant
    /// checks and the playground.
    pub fn log(&self) -> &dyn LogStore<M::Command> {
        &self.log
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

    /// The last index the host reported applied: it answers a read whose read index is `i`
    /// once `last_applied() >= i`.
    pub fn last_applied(&self) -> Index {
        self.applied
    }

    /// The last index of the latest snapshot (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.last_included_index
    }

    /// How many bytes of this leader's entries wait for a quorum (0 when not leading).
    pub fn uncommitted_bytes(&self) -> u64 {
        self.uncommitted_bytes
    }

    /// When this node last heard from the leader of its term (on its caller's clock), while
    /// it knows one: how fresh a follower's view of the log is, for hosts that report
    /// readiness. Read only; for a leader this is when it took office (see
    /// [`quorum_contact`](Self::quorum_contact)).
    pub fn last_leader_contact(&self) -> Option<Millis> {
        self.last_leader_contact
    }

    /// For a leader, the time (on its caller's clock) since which a quorum of voters has
    /// answered it; a leader that is a quorum alone answers the latest time it was given.
    /// `None` when not leading. Read only, for hosts that report readiness.
    pub fn quorum_contact(&self) -> Option<Millis> {
        self.leader.as_ref()?;
        match self.tracker.quorum_active_since() {
            Millis::MAX => Some(self.now),
            since => Some(since),
        }
    }

    /// The highest committed index that is also durable here: what may be applied.
    fn next_committed_hi(&self) -> Index {
        self.commit_index.min(self.persisted)
    }

    /// The term and vote, as the host must store them.
    fn hard_state(&self) -> HardState {
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.forget_to_persist_vote {
            // The break stores no vote at all, whatever else changed in the same Ready.
            return HardState {
                term: self.term,
                voted_for: None,
                commit: self.next_committed_hi(),
            };
        }
        HardState {
            term: self.term,
            voted_for: self.voted_for.clone(),
            commit: self.next_committed_hi(),
        }
    }

    /// Asserts the invariants documented on the fields (in debug builds, which the
    /// simulator's test runs use, so every seed checks them after every call).
    pub(super) fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        debug_assert_eq!(self.leader.is_some(), self.role == Role::Leader);
        let snap = self.snapshot.last_included_index;
        debug_assert!(
            snap <= self.applying
                && self.applied <= self.applying
                && self.applying <= self.commit_index
                && self.commit_index <= self.last_index(),
            "snapshot {snap}, applied {} <= applying {} <= commit {} <= last {}",
            self.applied,
            self.applying,
            self.commit_index,
            self.last_index()
        );
        debug_assert!(self.log.base().last_included_index <= snap);
        debug_assert!(self.persisted <= self.last_index());
        debug_assert!(self.started_at <= self.now);
        let timer = self.election_deadline - self.election_timer_start;
        debug_assert!(
            self.election_deadline == Millis::MAX
                || (self.cfg.election_timeout_min..=self.cfg.election_timeout_max).contains(&timer),
            "election timer of {timer} ms outside the configured range"
        );
        self.tracker.check();
        self.membership.check();
        debug_assert!(
            self.confs.last().map(|(_, m)| m) == Some(&self.membership)
                && self.confs.windows(2).all(|w| w[0].0 < w[1].0)
                && self.confs.last().is_some_and(|(i, _)| *i <= self.applying),
            "configuration history out of order: {:?}",
            self.confs
        );
        debug_assert_eq!(
            self.tracker.voters(),
            &self.membership.joint_config(),
            "the tracker counts the configuration in force"
        );
        debug_assert_eq!(self.tracker.learners(), &self.membership.learners);
        debug_assert_eq!(
            self.uncommitted_bytes,
            self.uncommitted.iter().map(|(_, b)| b).sum::<u64>()
        );
        if let Some(ls) = &self.leader {
            ls.reads.check();
            if let Some(t) = &ls.transfer {
                debug_assert!(t.to != self.cfg.id, "a transfer to the leader itself");
            }
            let me = &self.cfg.id;
            debug_assert!(
                self.tracker
                    .progress(me)
                    .is_none_or(|p| p.lease_ack == Millis::MAX),
                "the leader always acknowledges itself"
            );
            for id in self.tracker.peers_of(me) {
                if let Some(pr) = self.tracker.progress(&id) {
                    debug_assert!(
                        pr.next_index <= self.last_index() + 1,
                        "{id}: next {} past the log's end {}",
                        pr.next_index,
                        self.last_index()
                    );
                    debug_assert!(
                        pr.lease_ack <= self.now,
                        "{id}: lease ack {} after the latest time {}",
                        pr.lease_ack,
                        self.now
                    );
                }
            }
        }
    }
}

/// How many committed entries one Ready hands out at most.
const APPLY_BATCH: Index = 1024;

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
        msg: &Message<M::Command>,
    ) -> Result<bool, RaftError> {
        let term = msg.term();
        if term < self.term {
            // A voter behind us (a removed leader, say) still knows what it saw committed.
            if let Message::RequestVoteResponse(m) = msg {
                self.heed_commit_hint(now, m.commit)?;
            }
            self.answer_stale(from, msg);
            return Ok(false);
        }
        if term == self.term {
            return Ok(true);
        }
        match msg {
            Message::RequestVote(m) => {
                // Leader stickiness: while we hear from a live leader, nobody unseats it, and a
                // node that rejoins from a partition cannot disrupt the cluster. A candidate the
                // leader itself sent TimeoutNow is the exception (a pre-vote never is).
                // A node that just started may have heard a leader just before it stopped: it
                // keeps the same distance (the vote barrier), so leases stay safe.
                let transfer = m.transfer && !m.pre_vote;
                if !transfer && (self.in_leader_lease(now) || self.in_vote_barrier(now)) {
                    self.deny_vote(from, m.pre_vote);
                    return Ok(false);
                }
                // A pre-vote changes nothing on the receiver, not even its term.
                if m.pre_vote {
                    return Ok(true);
                }
            }
            // A granted pre-vote echoes the term we would campaign in, not a term anyone is in.
            Message::RequestVoteResponse(m) if m.pre_vote && m.vote_granted => return Ok(true),
            // A follower that refuses votes (stickiness, the vote barrier) takes no later term
            // from an answer to an old request of its own: that would forget the leader and let
            // it vote in that term at once, while a lease may count on it. It learns the term
            // from whoever wins.
            Message::RequestVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::InstallSnapshotResponse(_)
                if self.role == Role::Follower
                    && (self.in_leader_lease(now) || self.in_vote_barrier(now)) =>
            {
                return Ok(false);
            }
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
    fn answer_stale(&mut self, from: &NodeId, msg: &Message<M::Command>) {
        let reply = match msg {
            Message::RequestVote(m) => {
                self.deny_vote(from, m.pre_vote);
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
                    sent_at: 0,
                })
            }
            Message::InstallSnapshot(_) => {
                Message::InstallSnapshotResponse(super::InstallSnapshotResponse {
                    term: self.term,
                    last_included_index: 0,
                    offset: 0,
                    done: false,
                })
            }
            _ => return,
        };
        self.send(from, reply);
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
            self.pending.events.push(Event::RoleChanged {
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
            self.pending.events.push(Event::LeaderChanged {
                leader,
                term: self.term,
            });
        }
    }

    /// Changes the role within the current term and tells the host.
    pub(super) fn set_role(&mut self, role: Role) {
        self.role = role;
        self.pending.events.push(Event::RoleChanged {
            role,
            term: self.term,
        });
    }

    /// The term or vote changed: the next Ready writes them, and every message queued from
    /// now on waits until they are durable.
    pub(super) fn persist_hard_state(&mut self) -> Result<(), RaftError> {
        self.pending.hard_state = true;
        Ok(())
    }

    /// Queues `msg` for `to`. A leader's AppendEntries and InstallSnapshot depend on nothing
    /// this node has yet to write (its term is durable since before it won), so they may
    /// leave before the leader's own fsync (Raft thesis §10.2.1); everything else (votes,
    /// answers that promise stored entries) waits until the Ready's writes are durable.
    pub(super) fn send(&mut self, to: &NodeId, msg: Message<M::Command>) {
        let early = self.role == Role::Leader
            && !self.pending.hard_state
            && matches!(msg, Message::AppendEntries(_) | Message::InstallSnapshot(_));
        #[cfg(feature = "protocol-breaks")]
        let early = early || self.cfg.breaks.ack_before_fsync;
        let queue = if early {
            &mut self.pending.messages
        } else {
            &mut self.pending.persisted_messages
        };
        queue.push((to.clone(), msg));
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
        self.log.last_index()
    }

    /// The term of the last entry (or of the base).
    pub(super) fn last_term(&self) -> Result<Term, RaftError> {
        self.term_at(self.last_index())
    }

    /// The term at `index`, which must be in the log or be its base.
    pub(super) fn term_at(&self, index: Index) -> Result<Term, RaftError> {
        Ok(self.log.term_at(index)?)
    }

    /// The term at `index`, or `None` when the log does not reach that far. A compacted index
    /// is still an error: callers check against the base first.
    pub(super) fn term_if_present(&self, index: Index) -> Result<Option<Term>, RaftError> {
        if index > self.last_index() {
            return Ok(None);
        }
        match self.log.term_at(index) {
            Ok(t) => Ok(Some(t)),
            Err(StorageError::Missing(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The leader appends one entry of its term (of `size` bytes) at the end of its log and
    /// returns its index. The entry counts toward the quorum only once it is durable here
    /// (see `advance`), unless the `count_own_entry_before_durable` break is on.
    pub(super) fn append_local(
        &mut self,
        payload: Payload<M::Command>,
        size: u64,
    ) -> Result<Index, RaftError> {
        let index = self.last_index() + 1;
        let entry = LogEntry {
            index,
            term: self.term,
            payload,
            time: self.now,
        };
        self.log.append(std::slice::from_ref(&entry))?;
        self.pending.entries.push(entry);
        self.uncommitted.push_back((index, size));
        self.uncommitted_bytes += size;
        self.flush = true;
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.count_own_entry_before_durable {
            self.self_ack(index);
            self.maybe_commit()?;
        }
        Ok(index)
    }

    /// Appends entries from the leader (which continue the log) and queues them for writing.
    pub(super) fn append_from_leader_log(
        &mut self,
        entries: Vec<LogEntry<M::Command>>,
    ) -> Result<(), RaftError> {
        self.log.append(&entries)?;
        self.pending.entries.extend(entries);
        Ok(())
    }

    /// Deletes the log from `index` on (a suffix that conflicts with the leader's log): in
    /// memory now, on disk with the next Ready. What was durable past it no longer counts.
    pub(super) fn truncate_log_from(&mut self, index: Index) -> Result<(), RaftError> {
        self.log.delete_from(index)?;
        self.pending.truncate(index);
        self.persisted = self.persisted.min(index - 1);
        Ok(())
    }

    /// Compacts the log up to `meta` (which must be in the log or be its base), in memory
    /// now, on disk with the next Ready.
    pub(super) fn compact_log_to(&mut self, meta: SnapshotMeta) -> Result<(), RaftError> {
        self.log
            .truncate_prefix(meta.last_included_index, meta.last_included_term)?;
        self.pending.compact(meta);
        Ok(())
    }
}

/// The largest term or index a message may carry. Real clusters never get near it; refusing
/// more keeps every `+ 1` on terms and indices from overflowing, and keeps a forged message
/// from pinning the node at a term it can never leave.
const LIMIT: u64 = 1 << 62;

/// Whether a message's term and the indices the node stores stay below [`LIMIT`], and the
/// configurations it carries are well formed (a node would adopt them as they are).
fn within_limits<C>(msg: &Message<C>) -> bool {
    let indices_ok = match msg {
        Message::AppendEntries(m) => {
            m.prev_log_index < LIMIT
                && m.entries.last().is_none_or(|e| e.index < LIMIT)
                && m.entries
                    .iter()
                    .all(|e| e.payload.config().is_none_or(Membership::is_valid))
        }
        Message::InstallSnapshot(m) => {
            m.last_included_index < LIMIT
                && m.size < LIMIT
                && m.offset < LIMIT
                && (m.membership.is_empty() || m.membership.is_valid())
        }
        _ => true,
    };
    msg.term() < LIMIT && indices_ok
}
