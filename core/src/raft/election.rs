//! Elections: the timer firing, pre-votes and votes, and becoming candidate or leader.
//!
//! With `pre_vote`, a node whose timer fires first asks "would you vote for me in term + 1?"
//! without bumping its term; only if a majority says yes does it run a real election. A node
//! cut off from the cluster therefore never inflates its term and cannot disrupt a healthy
//! leader when it comes back. With `check_quorum`, a node that heard from a live leader less
//! than an election timeout ago refuses (pre-)votes altogether (leader stickiness), and so does
//! a node for an election timeout after it starts (the vote barrier, which keeps read leases
//! safe across restarts); only a leadership transfer's vote request gets past both.

use super::node::Node;
use super::quorum::VoteResult;
use super::replication::{LeaderState, Send};
use super::tracker::Inflights;
use super::{Message, Millis, NodeId, Payload, RaftError, RequestVote, RequestVoteResponse, Role};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// The election timer fired: campaign, with a pre-vote round first when configured.
    pub(super) fn campaign(&mut self, now: Millis) -> Result<(), RaftError> {
        if self.cfg.pre_vote {
            self.become_pre_candidate(now)
        } else {
            self.become_candidate(now, false)
        }
    }

    /// Asks for pre-votes in the current term: nothing durable changes.
    fn become_pre_candidate(&mut self, now: Millis) -> Result<(), RaftError> {
        self.set_leader(None, now);
        self.set_role(Role::PreCandidate);
        self.start_poll(now);
        self.request_votes(true, false)?;
        self.count_votes(now)
    }

    /// Starts a real election: a new term, a vote for itself, both durable before any request
    /// leaves. With `transfer` (TimeoutNow from the leader) the requests say so, and voters
    /// skip leader stickiness for them.
    pub(super) fn become_candidate(
        &mut self,
        now: Millis,
        transfer: bool,
    ) -> Result<(), RaftError> {
        let Some(term) = self.term.checked_add(1) else {
            // Terms are exhausted; nothing sensible is left to do but stay a follower.
            return Ok(());
        };
        self.term = term;
        self.voted_for = Some(self.cfg.id.clone());
        self.persist_hard_state()?;
        self.set_leader(None, now);
        self.set_role(Role::Candidate);
        self.start_poll(now);
        self.request_votes(false, transfer)?;
        self.count_votes(now)
    }

    /// Takes the lead: sets up replication, appends the no-op of its term (the only way to
    /// commit entries of earlier terms, see the Raft paper's figure 8), and announces itself.
    fn become_leader(&mut self, now: Millis) -> Result<(), RaftError> {
        self.votes.clear();
        self.leader = Some(LeaderState::new(now, &self.cfg));
        let window = Inflights::new(self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes);
        self.tracker
            .reset_progress(self.last_index() + 1, now, window);
        let me = self.cfg.id.clone();
        let persisted = self.persisted;
        if let Some(pr) = self.tracker.progress_mut(&me) {
            // The leader is always in touch with itself, and has durably what it persisted.
            pr.last_ack = Millis::MAX;
            pr.lease_ack = Millis::MAX;
            pr.maybe_update(persisted);
        }
        self.uncommitted.clear();
        self.uncommitted_bytes = 0;
        // Configuration entries already in the log take effect before this leader proposes
        // a change of its own (docs/membership.md).
        self.pending_conf_index = self.last_index();
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.conf_change_before_term_commit {
            self.pending_conf_index = 0;
        }
        self.set_role(Role::Leader);
        self.set_leader(Some(self.cfg.id.clone()), now);
        self.append_local(Payload::Noop, 0)?;
        self.broadcast_append(now, Send::Heartbeat)?;
        // A single-node cluster commits its no-op once it is durable (see `advance`).
        self.maybe_commit()
    }

    /// Clears the ballot box, votes for itself, and restarts the election timer (so a split
    /// vote is retried after a fresh random timeout).
    fn start_poll(&mut self, now: Millis) {
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_election_timer(now);
    }

    /// Sends a (pre-)vote request to every peer (`transfer`: see [`RequestVote::transfer`]).
    fn request_votes(&mut self, pre_vote: bool, transfer: bool) -> Result<(), RaftError> {
        let req = RequestVote {
            // A pre-vote asks about the term the node would campaign in.
            term: if pre_vote {
                self.term.saturating_add(1)
            } else {
                self.term
            },
            candidate_id: self.cfg.id.clone(),
            last_log_index: self.last_index(),
            last_log_term: self.last_term()?,
            pre_vote,
            transfer,
        };
        for peer in self.peers() {
            self.send(&peer, Message::RequestVote(req.clone()));
        }
        Ok(())
    }

    /// Counts the ballots and moves on when the outcome is decided.
    fn count_votes(&mut self, now: Millis) -> Result<(), RaftError> {
        match self.tracker.vote_result(&self.votes) {
            VoteResult::Won if self.role == Role::PreCandidate => self.become_candidate(now, false),
            VoteResult::Won if self.role == Role::Candidate => self.become_leader(now),
            // Lost: go back to following; the timer will try again, unless a leader shows up.
            VoteResult::Lost => self.become_follower(now, self.term, None),
            VoteResult::Won | VoteResult::Pending => Ok(()),
        }
    }

    /// A (pre-)vote request in our term (or, for a pre-vote, a later one).
    pub(super) fn handle_request_vote(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: RequestVote,
    ) -> Result<(), RaftError> {
        if m.candidate_id != *from {
            return Ok(());
        }
        let grant = self.can_vote_for(from, &m) && self.candidate_log_is_complete(&m)?;
        if grant && !m.pre_vote {
            self.record_vote(now, from)?;
        }
        let term = if grant && m.pre_vote {
            m.term
        } else {
            self.term
        };
        let commit = self.commit_hint();
        self.send(
            from,
            Message::RequestVoteResponse(RequestVoteResponse {
                term,
                vote_granted: grant,
                pre_vote: m.pre_vote,
                commit,
            }),
        );
        Ok(())
    }

    /// The highest committed entry this node knows, as (index, term), for vote answers.
    fn commit_hint(&self) -> (super::Index, super::Term) {
        let index = self.commit_index;
        match self.term_if_present(index) {
            Ok(Some(term)) => (index, term),
            _ => (0, 0),
        }
    }

    /// A pre-candidate hears from a voter (in any term) that (index, term) is committed. Learnt
    /// in the pre-vote round only: a candidate may win in this very step, and a leader's commit
    /// index moves only by its own rule. Returns whether the election was abandoned: it counts
    /// a configuration that a committed entry replaced, and runs again once that one is in
    /// force.
    pub(super) fn heed_commit_hint(
        &mut self,
        now: Millis,
        hint: (super::Index, super::Term),
    ) -> Result<bool, RaftError> {
        if self.role != Role::PreCandidate {
            return Ok(false);
        }
        let before = self.commit_index;
        self.learn_commit(hint)?;
        if self.commit_index > before && !self.may_campaign()? {
            self.become_follower(now, self.term, None)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A voter says (index, term) is committed: if our log holds that very entry, the prefix
    /// up to it is the committed one (log matching) and counts as committed here too.
    fn learn_commit(
        &mut self,
        (index, term): (super::Index, super::Term),
    ) -> Result<(), RaftError> {
        if index > self.commit_index && self.term_if_present(index)? == Some(term) {
            self.advance_commit(index)?;
        }
        Ok(())
    }

    /// One vote per term: we already voted for this candidate, or we have voted for nobody and
    /// follow nobody. A pre-vote for a later term binds nothing, so it only needs the log check.
    fn can_vote_for(&self, from: &NodeId, m: &RequestVote) -> bool {
        self.voted_for.as_ref() == Some(from)
            || (self.voted_for.is_none() && self.leader_id.is_none())
            || (m.pre_vote && m.term > self.term)
    }

    /// The election restriction: only a candidate whose log is at least as up to date as ours
    /// (higher last term, or same last term and at least as long) may get our vote, so that
    /// every leader holds every committed entry.
    fn candidate_log_is_complete(&self, m: &RequestVote) -> Result<bool, RaftError> {
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.skip_log_completeness_check {
            return Ok(true);
        }
        let ours = (self.last_term()?, self.last_index());
        Ok((m.last_log_term, m.last_log_index) >= ours)
    }

    /// Grants a real vote: durable before the answer leaves. Granting also restarts our timer,
    /// giving the candidate time to win.
    fn record_vote(&mut self, now: Millis, candidate: &NodeId) -> Result<(), RaftError> {
        self.voted_for = Some(candidate.clone());
        #[cfg(feature = "protocol-breaks")]
        let persist = !self.cfg.breaks.forget_to_persist_vote;
        #[cfg(not(feature = "protocol-breaks"))]
        let persist = true;
        if persist {
            self.persist_hard_state()?;
        }
        self.reset_election_timer(now);
        Ok(())
    }

    /// Refuses a (pre-)vote, telling the candidate our term.
    pub(super) fn deny_vote(&mut self, to: &NodeId, pre_vote: bool) {
        self.send(
            to,
            Message::RequestVoteResponse(RequestVoteResponse {
                term: self.term,
                vote_granted: false,
                pre_vote,
                commit: self.commit_hint(),
            }),
        );
    }

    /// An answer to our (pre-)vote request. Answers to an election we are no longer running
    /// are dropped.
    pub(super) fn handle_vote_response(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: RequestVoteResponse,
    ) -> Result<(), RaftError> {
        if self.heed_commit_hint(now, m.commit)? {
            return Ok(());
        }
        let current = match self.role {
            // A grant echoes the pre-vote term (ours + 1); a refusal carries the voter's term,
            // which `check_term` has already seen is not above ours.
            Role::PreCandidate => {
                m.pre_vote && (!m.vote_granted || Some(m.term) == self.term.checked_add(1))
            }
            Role::Candidate => !m.pre_vote && m.term == self.term,
            Role::Follower | Role::Leader => false,
        };
        if !current {
            return Ok(());
        }
        // The first answer counts: a duplicated message cannot change a ballot.
        self.votes.entry(from.clone()).or_insert(m.vote_granted);
        self.count_votes(now)
    }

    /// The restart barrier (only with check-quorum): for `election_timeout_min` after it
    /// started, a node refuses (pre-)votes in later terms, except a transfer's. It may have
    /// answered a leader just before it stopped, and forgot when: without the barrier it would
    /// help elect another leader while that leader's read lease still runs. Elections are
    /// delayed by at most one timeout (a cluster that starts together campaigns only after
    /// its first timeout anyway).
    pub(super) fn in_vote_barrier(&self, now: Millis) -> bool {
        self.cfg.check_quorum
            && now
                < self
                    .started_at
                    .saturating_add(self.cfg.election_timeout_min)
    }

    /// Whether this node believes a leader is alive in its term (only with check-quorum): the
    /// leader itself while a quorum answers it, a follower while it heard from the leader less
    /// than an election timeout ago. Such a node refuses to help unseat that leader.
    pub(super) fn in_leader_lease(&self, now: Millis) -> bool {
        if !self.cfg.check_quorum {
            return false;
        }
        match &self.leader {
            Some(_) => self.quorum_deadline().is_none_or(|d| now < d),
            None => {
                self.leader_id.is_some()
                    && self
                        .last_leader_contact
                        .is_some_and(|t| now < t.saturating_add(self.cfg.election_timeout_min))
            }
        }
    }
}
