//! Raft's safety properties, checked after every simulated event.
//!
//! The checker never sees a `Node`: it is fed what a host can observe — a node's [`Status`], its
//! log (read-only), the changes journaled by its log store, and `Applied` events — so it can be
//! tested against hand-made states, and every check is incremental:
//!
//! - **election safety**: at most one leader per term, over the whole run;
//! - **log matching**: every `(index, term)` ever stored by any node is registered with its
//!   command and the term of the entry before it; a second sighting must agree on both. By
//!   induction two logs that share an `(index, term)` then share the whole prefix, and each
//!   appended entry costs one map lookup;
//! - **leader completeness**: every committed entry is in the log of every leader of a later
//!   term. Each committed index remembers the lowest term in which a node reported it committed
//!   (a leader reports its own commits first); a leader of term `T` must hold the highest
//!   entry committed in a term below `T` (log matching covers everything before it);
//! - **state machine safety**: no two nodes apply different entries at one index, and no index
//!   is ever committed with two different terms;
//! - **monotonicity**, per node incarnation: term, commit index and applied index never go
//!   back (a restart starts a new incarnation: commit index is volatile and the state machine
//!   is rebuilt from the snapshot, so both may restart lower);
//! - **index order**: snapshot index <= applied <= commit <= last log index;
//! - **leader commit rule**: when a leader advances its commit index, the entry there is of
//!   its own term (an older entry is committed only underneath one of the leader's own).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::network::node_name;
use crate::kvraft::{LogEntry, Payload};
use crate::raft::LogStore;
use crate::raft::{Index, Millis, Role, Status, Term};
use crate::types::Command;

/// One change to a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogChange {
    /// Entries were appended after an entry of term `prev_term`.
    Appended {
        /// The term of the entry just before the first appended one (0 at index 0).
        prev_term: Term,
        /// The entries.
        entries: Vec<LogEntry>,
    },
    /// Every entry at or after `index` was removed.
    DeletedFrom {
        /// The first removed index.
        index: Index,
    },
    /// The prefix up to `upto` was compacted.
    Compacted {
        /// The new base index.
        upto: Index,
        /// Its term.
        term: Term,
    },
}

/// The property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// At most one leader per term.
    ElectionSafety,
    /// Same index and term: same entry and same prefix.
    LogMatching,
    /// Every committed entry is in every later leader's log.
    LeaderCompleteness,
    /// No two nodes apply (or commit) different entries at one index.
    StateMachineSafety,
    /// A leader advances its commit index only to an entry of its own term (Raft §5.4.2:
    /// counting replicas of an older entry does not make it committed).
    CommitRule,
    /// Term, commit index and applied index never go back within an incarnation.
    Monotonicity,
    /// applied <= commit <= last log index, and snapshot index <= commit.
    IndexOrder,
    /// A node reported a fatal error.
    NodeError,
    /// After the faults healed, the cluster did not elect a leader or finish the clients' work.
    Liveness,
    /// The client history has no linearization.
    Linearizability,
    /// A read served from a node's state machine did not return the committed log's value at
    /// the node's applied index, or was served below its `min_index` (see
    /// [`committed_reads`](super::committed_reads)).
    CommittedReads,
    /// Two nodes hold different client sessions at the same applied index (see
    /// [`session_tables`](super::session_tables)).
    SessionExpiry,
}

impl Invariant {
    /// The invariant's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election safety",
            Invariant::LogMatching => "log matching",
            Invariant::LeaderCompleteness => "leader completeness",
            Invariant::StateMachineSafety => "state machine safety",
            Invariant::CommitRule => "leader commit rule",
            Invariant::Monotonicity => "monotonicity",
            Invariant::IndexOrder => "index order",
            Invariant::NodeError => "node error",
            Invariant::Liveness => "liveness",
            Invariant::Linearizability => "linearizability",
            Invariant::CommittedReads => "committed reads",
            Invariant::SessionExpiry => "session expiry",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken invariant: which, when, on which nodes, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// The simulated time it was detected.
    pub time: Millis,
    /// The nodes involved.
    pub nodes: Vec<String>,
    /// What exactly went wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at t={}ms on [{}]: {}",
            self.invariant,
            self.time,
            self.nodes.join(", "),
            self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// What the registry remembers of an `(index, term)`.
#[derive(Clone, Debug)]
struct EntryRecord {
    payload: Payload,
    prev_term: Term,
    node: usize,
    /// The incarnation of `node` that held it.
    incarnation: u32,
}

/// What is known of a committed index.
#[derive(Clone, Copy, Debug)]
struct CommitRecord {
    term: Term,
    /// The lowest term in which some node reported it committed.
    commit_term: Term,
    node: usize,
}

/// What the checker remembers of a node's current incarnation.
#[derive(Clone, Debug, Default)]
struct NodeTrack {
    incarnation: u32,
    term: Term,
    commit: Index,
    applied: Index,
    /// Commit indices up to here have been recorded in `committed`.
    recorded: Index,
    seen: bool,
}

/// The checker. Feed it every observation; it answers with the first violation.
#[derive(Clone, Debug)]
pub struct Invariants {
    /// Whether the leader commit rule is checked (it catches the figure-8 bug the moment it
    /// happens; turned off, only its consequence — a lost committed entry — is caught).
    commit_rule: bool,
    leaders: BTreeMap<Term, usize>,
    entries: BTreeMap<(Index, Term), EntryRecord>,
    committed: BTreeMap<Index, CommitRecord>,
    /// For each commit term, the highest index first committed in it.
    highest_by_commit_term: BTreeMap<Term, Index>,
    applied: BTreeMap<Index, (Term, usize)>,
    nodes: BTreeMap<usize, NodeTrack>,
}

fn violation(invariant: Invariant, time: Millis, nodes: &[usize], detail: String) -> Violation {
    let mut nodes: Vec<usize> = nodes.to_vec();
    nodes.dedup();
    Violation {
        invariant,
        time,
        nodes: nodes.into_iter().map(node_name).collect(),
        detail,
    }
}

impl Default for Invariants {
    fn default() -> Self {
        Invariants {
            commit_rule: true,
            leaders: BTreeMap::new(),
            entries: BTreeMap::new(),
            committed: BTreeMap::new(),
            highest_by_commit_term: BTreeMap::new(),
            applied: BTreeMap::new(),
            nodes: BTreeMap::new(),
        }
    }
}

impl Invariants {
    /// A checker that has seen nothing and checks everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the leader commit rule check on or off.
    pub fn set_commit_rule(&mut self, on: bool) {
        self.commit_rule = on;
    }

    /// Node `node` restarted: its volatile state starts over.
    pub fn restarted(&mut self, node: usize) {
        let t = self.nodes.entry(node).or_default();
        *t = NodeTrack {
            incarnation: t.incarnation + 1,
            ..NodeTrack::default()
        };
    }

    /// The leader of each term seen so far.
    pub fn leaders(&self) -> &BTreeMap<Term, usize> {
        &self.leaders
    }

    /// The highest index known to be committed.
    pub fn highest_committed(&self) -> Index {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    /// Checks changes to `node`'s log (log matching; terms never decrease along a log).
    pub fn log_changed(
        &mut self,
        now: Millis,
        node: usize,
        change: &LogChange,
    ) -> Result<(), Violation> {
        let LogChange::Appended { prev_term, entries } = change else {
            // Deleting a suffix or compacting a prefix stores nothing new.
            return Ok(());
        };
        let mut prev = *prev_term;
        for e in entries {
            if e.term < prev {
                return Err(violation(
                    Invariant::LogMatching,
                    now,
                    &[node],
                    format!(
                        "entry {}/{} follows an entry of the higher term {prev}",
                        e.index, e.term
                    ),
                ));
            }
            let incarnation = self.nodes.get(&node).map_or(0, |t| t.incarnation);
            let committed_here = self
                .committed
                .get(&e.index)
                .is_some_and(|c| c.term == e.term);
            // A ghost: an entry only an earlier incarnation of this very node held, never
            // committed. A single-node cluster elects itself and appends before its vote is
            // durable; a crash before the fsync takes the term and the entries with it (nothing
            // left the node), so the restarted node may lead that term again with other entries.
            let ghost =
                |r: &EntryRecord| r.node == node && r.incarnation != incarnation && !committed_here;
            let known = match self.entries.get(&(e.index, e.term)) {
                // Forgotten with the incarnation that held it: recorded anew below.
                Some(r) if ghost(r) => false,
                Some(r) if r.payload != e.payload => {
                    return Err(violation(
                        Invariant::LogMatching,
                        now,
                        &[r.node, node],
                        format!(
                            "entry {}/{} holds {:?} on {} but {:?} on {}",
                            e.index,
                            e.term,
                            r.payload,
                            node_name(r.node),
                            e.payload,
                            node_name(node)
                        ),
                    ));
                }
                Some(r) if r.prev_term != prev => {
                    return Err(violation(
                        Invariant::LogMatching,
                        now,
                        &[r.node, node],
                        format!(
                            "entry {}/{} follows term {} on {} but term {prev} on {}",
                            e.index,
                            e.term,
                            r.prev_term,
                            node_name(r.node),
                            node_name(node)
                        ),
                    ));
                }
                Some(_) => true,
                None => false,
            };
            if !known {
                let record = EntryRecord {
                    payload: e.payload.clone(),
                    prev_term: prev,
                    node,
                    incarnation,
                };
                self.entries.insert((e.index, e.term), record);
            }
            prev = e.term;
        }
        Ok(())
    }

    /// `node` applied the entry `index`/`term` (state machine safety).
    pub fn applied(
        &mut self,
        now: Millis,
        node: usize,
        index: Index,
        term: Term,
    ) -> Result<(), Violation> {
        match self.applied.get(&index) {
            Some(&(t, other)) if t != term => Err(violation(
                Invariant::StateMachineSafety,
                now,
                &[other, node],
                format!(
                    "index {index}: {} applied the entry of term {t}, {} the entry of term {term}",
                    node_name(other),
                    node_name(node)
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(index, (term, node));
                Ok(())
            }
        }
    }

    /// Checks `node`'s state after an event: index order, monotonicity, election safety,
    /// committed entries, and leader completeness.
    pub fn observe(
        &mut self,
        now: Millis,
        node: usize,
        st: &Status,
        log: &dyn LogStore<Command>,
    ) -> Result<(), Violation> {
        let fail = |inv, nodes: &[usize], detail| Err(violation(inv, now, nodes, detail));
        // A snapshot received from the leader counts from when the node adopts it; the host
        // restores it (and reports it applied) once it is durable, so it may lead `applied`.
        if !(st.snapshot_index <= st.commit_index
            && st.last_applied <= st.commit_index
            && st.commit_index <= st.last_log_index)
        {
            return fail(
                Invariant::IndexOrder,
                &[node],
                format!(
                    "snapshot {} applied {} commit {} last log {}",
                    st.snapshot_index, st.last_applied, st.commit_index, st.last_log_index
                ),
            );
        }
        let commit_rule = self.commit_rule;
        let track = self.nodes.entry(node).or_default();
        if commit_rule
            && st.role == Role::Leader
            && track.seen
            && st.commit_index > track.commit
            && st.commit_index > log.base().last_included_index
        {
            match log.term_at(st.commit_index) {
                Ok(t) if t == st.term => {}
                got => {
                    return fail(
                        Invariant::CommitRule,
                        &[node],
                        format!(
                            "leader of term {} advanced its commit index {} -> {} to an entry \
                             of {}",
                            st.term,
                            track.commit,
                            st.commit_index,
                            match got {
                                Ok(t) => format!("term {t}"),
                                Err(e) => e.to_string(),
                            }
                        ),
                    );
                }
            }
        }
        if track.seen {
            for (what, old, new) in [
                ("term", track.term, st.term),
                ("commit index", track.commit, st.commit_index),
                ("applied index", track.applied, st.last_applied),
            ] {
                if new < old {
                    return fail(
                        Invariant::Monotonicity,
                        &[node],
                        format!(
                            "{what} went back from {old} to {new} (incarnation {})",
                            track.incarnation
                        ),
                    );
                }
            }
        }
        track.seen = true;
        track.term = st.term;
        track.commit = st.commit_index;
        track.applied = st.last_applied;

        if st.role == Role::Leader {
            match self.leaders.get(&st.term) {
                Some(&other) if other != node => {
                    return fail(
                        Invariant::ElectionSafety,
                        &[other, node],
                        format!(
                            "{} and {} both led term {}",
                            node_name(other),
                            node_name(node),
                            st.term
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(st.term, node);
                }
            }
        }

        self.record_commits(now, node, st, log)?;

        if st.role == Role::Leader {
            self.check_leader_completeness(now, node, st.term, log)?;
        }
        Ok(())
    }

    fn record_commits(
        &mut self,
        now: Millis,
        node: usize,
        st: &Status,
        log: &dyn LogStore<Command>,
    ) -> Result<(), Violation> {
        let Some(track) = self.nodes.get_mut(&node) else {
            return Ok(());
        };
        let from = track.recorded + 1;
        track.recorded = track.recorded.max(st.commit_index);
        let base = log.base();
        for index in from..=st.commit_index {
            let term = if index < base.last_included_index {
                // Compacted: what it held was checked when it was committed or applied.
                continue;
            } else {
                match log.term_at(index) {
                    Ok(t) => t,
                    Err(e) => {
                        return Err(violation(
                            Invariant::IndexOrder,
                            now,
                            &[node],
                            format!("committed index {index} is not in the log: {e}"),
                        ));
                    }
                }
            };
            match self.committed.get_mut(&index) {
                Some(r) if r.term != term => {
                    let other = r.node;
                    return Err(violation(
                        Invariant::StateMachineSafety,
                        now,
                        &[other, node],
                        format!(
                            "index {index} committed with term {} on {} and term {term} on {}",
                            r.term,
                            node_name(other),
                            node_name(node)
                        ),
                    ));
                }
                Some(r) => {
                    if st.term < r.commit_term {
                        r.commit_term = st.term;
                        let e = self.highest_by_commit_term.entry(st.term).or_insert(0);
                        *e = (*e).max(index);
                    }
                }
                None => {
                    self.committed.insert(
                        index,
                        CommitRecord {
                            term,
                            commit_term: st.term,
                            node,
                        },
                    );
                    let e = self.highest_by_commit_term.entry(st.term).or_insert(0);
                    *e = (*e).max(index);
                }
            }
        }
        Ok(())
    }

    fn check_leader_completeness(
        &self,
        now: Millis,
        node: usize,
        term: Term,
        log: &dyn LogStore<Command>,
    ) -> Result<(), Violation> {
        let Some(index) = self
            .highest_by_commit_term
            .range(..term)
            .map(|(_, i)| *i)
            .max()
        else {
            return Ok(());
        };
        let Some(rec) = self.committed.get(&index) else {
            return Ok(());
        };
        if index < log.base().last_included_index {
            return Ok(());
        }
        match log.term_at(index) {
            Ok(t) if t == rec.term => Ok(()),
            got => Err(violation(
                Invariant::LeaderCompleteness,
                now,
                &[rec.node, node],
                format!(
                    "{} leads term {term} but lacks entry {index}/{} committed in term {} \
                     (seen on {}); its log has {}",
                    node_name(node),
                    rec.term,
                    rec.commit_term,
                    node_name(rec.node),
                    match got {
                        Ok(t) => format!("term {t} there"),
                        Err(e) => e.to_string(),
                    }
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvraft::{LogEntry, MemLogStore};
    use crate::raft::Payload;
    use crate::types::NodeId;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn status(node: usize, role: Role, term: Term, commit: Index, applied: Index) -> Status {
        Status {
            id: NodeId(node_name(node)),
            role,
            term,
            voted_for: None,
            leader_id: None,
            commit_index: commit,
            last_applied: applied,
            last_log_index: 10,
            last_log_term: term,
            snapshot_index: 0,
            election_timer_start: 0,
            election_deadline: 0,
            membership: Default::default(),
            transfer_to: None,
            lease_until: None,
        }
    }

    fn entry(index: Index, term: Term, key: &str) -> LogEntry {
        LogEntry {
            index,
            term,
            payload: Payload::Command(Command::put(key, "v")),
            time: 0,
        }
    }

    /// A log of entries with the given terms (index 1 first), all put commands on key "k".
    fn log_of(terms: &[Term]) -> MemLogStore {
        let mut log = MemLogStore::default();
        let entries: Vec<LogEntry> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| entry(i as Index + 1, *t, "k"))
            .collect();
        log.append(&entries).expect("contiguous");
        log
    }

    fn appended(prev_term: Term, entries: Vec<LogEntry>) -> LogChange {
        LogChange::Appended { prev_term, entries }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut inv = Invariants::new();
        let log = log_of(&[1; 10]);
        inv.observe(1, 0, &status(0, Role::Leader, 2, 0, 0), &log)
            .expect("first leader");
        inv.observe(2, 0, &status(0, Role::Leader, 2, 0, 0), &log)
            .expect("same leader again");
        inv.observe(3, 1, &status(1, Role::Leader, 3, 0, 0), &log)
            .expect("another term");
        let v = inv
            .observe(4, 2, &status(2, Role::Leader, 2, 0, 0), &log)
            .expect_err("two leaders of term 2");
        assert_eq!(v.invariant, Invariant::ElectionSafety);
        assert_eq!(v.time, 4);
        assert_eq!(v.nodes, vec!["n1", "n3"]);
        assert!(
            v.to_string()
                .starts_with("election safety violated at t=4ms on [n1, n3]")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn log_matching_catches_different_entries_and_prefixes() {
        let mut inv = Invariants::new();
        inv.log_changed(1, 0, &appended(0, vec![entry(1, 1, "a"), entry(2, 1, "b")]))
            .expect("first log");
        inv.log_changed(2, 1, &appended(0, vec![entry(1, 1, "a")]))
            .expect("same entry elsewhere");
        inv.log_changed(3, 1, &appended(1, vec![entry(2, 1, "b")]))
            .expect("same entry, same prefix");
        let v = inv
            .log_changed(4, 2, &appended(1, vec![entry(2, 1, "x")]))
            .expect_err("same index and term, different command");
        assert_eq!(v.invariant, Invariant::LogMatching);
        assert_eq!(v.nodes, vec!["n1", "n3"]);
        let v = inv
            .log_changed(5, 2, &appended(0, vec![entry(2, 1, "b")]))
            .expect_err("same entry after a different prefix");
        assert_eq!(v.invariant, Invariant::LogMatching);
        let v = inv
            .log_changed(6, 2, &appended(3, vec![entry(7, 2, "b")]))
            .expect_err("terms go down along the log");
        assert_eq!(v.invariant, Invariant::LogMatching);
        // Deletions and compaction are fine.
        inv.log_changed(7, 0, &LogChange::DeletedFrom { index: 2 })
            .expect("delete");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn index_order_and_monotonicity() {
        let mut inv = Invariants::new();
        let log = log_of(&[1; 10]);
        let v = inv
            .observe(1, 0, &status(0, Role::Follower, 1, 3, 4), &log)
            .expect_err("applied beyond commit");
        assert_eq!(v.invariant, Invariant::IndexOrder);
        let v = inv
            .observe(1, 0, &status(0, Role::Follower, 1, 11, 4), &log)
            .expect_err("commit beyond the log");
        assert_eq!(v.invariant, Invariant::IndexOrder);

        inv.observe(2, 0, &status(0, Role::Follower, 2, 5, 4), &log)
            .expect("fine");
        let v = inv
            .observe(3, 0, &status(0, Role::Follower, 2, 4, 4), &log)
            .expect_err("commit went back");
        assert_eq!(v.invariant, Invariant::Monotonicity);
        assert!(v.detail.contains("commit index went back from 5 to 4"));
        let v = inv
            .observe(3, 0, &status(0, Role::Follower, 1, 5, 4), &log)
            .expect_err("term went back");
        assert!(v.detail.contains("term went back"));
        // After a restart the volatile indices may start lower.
        inv.restarted(0);
        inv.observe(4, 0, &status(0, Role::Follower, 2, 0, 0), &log)
            .expect("restart from scratch");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_leader_committing_an_older_entry_by_counting_is_caught() {
        let mut inv = Invariants::new();
        let log = log_of(&[1, 2, 3]);
        inv.observe(1, 0, &status(0, Role::Leader, 3, 1, 1), &log)
            .expect("new leader of term 3");
        let v = inv
            .observe(2, 0, &status(0, Role::Leader, 3, 2, 2), &log)
            .expect_err("commit advanced to an entry of term 2");
        assert_eq!(v.invariant, Invariant::CommitRule);
        // Advancing to its own entry (committing the older one underneath) is fine.
        let mut inv = Invariants::new();
        inv.observe(1, 0, &status(0, Role::Leader, 3, 1, 1), &log)
            .expect("new leader");
        inv.observe(2, 0, &status(0, Role::Leader, 3, 3, 3), &log)
            .expect("commit to its own entry");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn applying_different_entries_at_one_index_is_caught() {
        let mut inv = Invariants::new();
        inv.applied(1, 0, 3, 2).expect("first");
        inv.applied(2, 1, 3, 2).expect("same entry");
        let v = inv.applied(3, 2, 3, 3).expect_err("different entry");
        assert_eq!(v.invariant, Invariant::StateMachineSafety);
        assert_eq!(v.nodes, vec!["n1", "n3"]);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn committing_different_terms_at_one_index_is_caught() {
        let mut inv = Invariants::new();
        inv.observe(1, 0, &status(0, Role::Leader, 1, 3, 0), &log_of(&[1, 1, 1]))
            .expect("commit 1..3 in term 1");
        let v = inv
            .observe(
                2,
                1,
                &status(1, Role::Follower, 2, 3, 0),
                &log_of(&[1, 1, 2]),
            )
            .expect_err("index 3 committed with another term");
        assert_eq!(v.invariant, Invariant::StateMachineSafety);
        assert_eq!(inv.highest_committed(), 3);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_later_leader_missing_a_committed_entry_is_caught() {
        let mut inv = Invariants::new();
        // n1 leads term 1 and commits 1..2.
        inv.observe(1, 0, &status(0, Role::Leader, 1, 2, 0), &log_of(&[1, 1]))
            .expect("commit");
        // A leader of term 2 with the committed entries is fine.
        inv.observe(2, 1, &status(1, Role::Leader, 2, 0, 0), &log_of(&[1, 1, 2]))
            .expect("complete leader");
        // A stale leader of term 1 elected... is n1 itself: fine. A leader of term 3 whose log
        // lacks index 2 is not.
        let mut short = status(2, Role::Leader, 3, 0, 0);
        short.last_log_index = 1;
        let v = inv
            .observe(3, 2, &short, &log_of(&[1]))
            .expect_err("leader without a committed entry");
        assert_eq!(v.invariant, Invariant::LeaderCompleteness);
        assert_eq!(v.nodes, vec!["n1", "n3"]);
        // Nor is one holding another term there.
        let v = inv
            .observe(4, 3, &status(3, Role::Leader, 4, 0, 0), &log_of(&[1, 3, 3]))
            .expect_err("leader with a different entry at a committed index");
        assert_eq!(v.invariant, Invariant::LeaderCompleteness);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn entries_committed_after_a_leader_was_elected_bind_only_later_terms() {
        // The term-2 leader n1 is deposed without knowing; term 3 commits an entry of term 1
        // that n1 never had. n1, still leader of term 2, is not required to hold it.
        let mut inv = Invariants::new();
        inv.observe(1, 0, &status(0, Role::Leader, 2, 0, 0), &log_of(&[1]))
            .expect("n1 leads term 2");
        inv.observe(2, 1, &status(1, Role::Leader, 3, 3, 0), &log_of(&[1, 1, 3]))
            .expect("n2 leads term 3 and commits");
        inv.observe(3, 0, &status(0, Role::Leader, 2, 0, 0), &log_of(&[1]))
            .expect("stale leader of an earlier term");
    }
}
