//! What a node is configured with.

use super::Millis;
use crate::types::NodeId;

/// A node's static configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The configuration the cluster was created with: every voting member, this node
    /// included. A configuration stored in the snapshot or committed in the log replaces it.
    /// Empty for a node that joins a running cluster: it waits, never campaigning, until the
    /// leader's configuration names it. Invariant: empty, or contains `id`; no duplicates.
    pub voters: Vec<NodeId>,
    /// The election timeout is drawn uniformly from `[election_timeout_min, election_timeout_max]`
    /// each time the timer is reset. Invariant: heartbeat_interval < election_timeout_min <= max.
    pub election_timeout_min: Millis,
    /// See `election_timeout_min`.
    pub election_timeout_max: Millis,
    /// How often a leader sends AppendEntries (possibly empty) to each follower.
    pub heartbeat_interval: Millis,
    /// Run a pre-vote round before bumping the term: a node that cannot win does not disrupt.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down.
    pub check_quorum: bool,
    /// The most entries one AppendEntries carries (the byte budget usually binds first: it is
    /// there so a flood of tiny entries still travels in messages of bounded work).
    pub max_entries_per_append: usize,
    /// The byte budget of one AppendEntries' entries (by the state machine's
    /// `command_size`): a message carries entries up to it, except that an entry larger than
    /// the budget travels alone.
    pub max_bytes_per_append: u64,
    /// The most bytes of entries a leader keeps waiting for a quorum; a proposal past it is
    /// refused as overloaded instead of growing memory while followers are gone. 0: no cap.
    pub max_uncommitted_bytes: u64,
    /// The most AppendEntries in flight to one follower in replicate mode (etcd's
    /// MaxInflightMsgs): a follower that stops answering costs at most this many messages.
    pub max_inflight_msgs: usize,
    /// The most bytes of entries in flight to one follower; 0: no byte cap.
    pub max_inflight_bytes: u64,
    /// Snapshot once this many entries were applied since the last snapshot; 0 disables.
    pub snapshot_threshold: u64,
    /// How many entries up to the snapshot's index stay in the log when it is compacted, so
    /// that a follower only a little behind catches up with AppendEntries instead of a whole
    /// snapshot (etcd's "catch-up entries"). 0 compacts right up to the snapshot.
    pub snapshot_trailing: u64,
    /// Lease reads last `election_timeout_min` minus this from the send time of the last
    /// heartbeat round a quorum acknowledged: room for clocks that run at different rates
    /// (the default 30 of 150 ms lets a follower's clock run up to 1.25 times as fast as the
    /// leader's). A margin of `election_timeout_min` or more leaves no lease: none is served
    /// (reads fall back to ReadIndex).
    pub lease_drift_margin: Millis,
    /// A learner is promoted only once its match index is within this many entries of the
    /// leader's last index.
    pub max_promote_lag: u64,
    /// The most snapshot bytes one InstallSnapshot carries. Invariant: at least 1.
    pub snapshot_chunk_size: u64,
    /// The most InstallSnapshot chunks in flight to one follower: a snapshot transfer holds at
    /// most `snapshot_window * snapshot_chunk_size` bytes in messages. Invariant: at least 1.
    pub snapshot_window: usize,
    /// A chunk unanswered for this long is sent again, from the last acknowledged offset.
    /// Invariant: at least 1.
    pub snapshot_chunk_timeout: Millis,
    /// Deliberate protocol violations, to prove the simulator's checks can fail.
    #[cfg(feature = "protocol-breaks")]
    pub breaks: ProtocolBreaks,
}

impl Config {
    /// A configuration with the defaults used by kvserver and the playground.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            voters,
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 1024,
            max_bytes_per_append: 1 << 20,
            max_uncommitted_bytes: 64 << 20,
            max_inflight_msgs: 256,
            max_inflight_bytes: 0,
            snapshot_threshold: 0,
            snapshot_trailing: 0,
            lease_drift_margin: 30,
            max_promote_lag: 100,
            snapshot_chunk_size: 1 << 20,
            snapshot_window: 4,
            snapshot_chunk_timeout: 1000,
            #[cfg(feature = "protocol-breaks")]
            breaks: ProtocolBreaks::default(),
        }
    }
}

impl Config {
    /// Checks the invariants documented on the fields, so that nothing later can divide by
    /// zero, draw from an empty range or wait on a timer that never fires. The one check of a
    /// configuration: core, kvserver and the web bindings all call it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if !self.voters.is_empty() && !self.voters.contains(&self.id) {
            return bad(format!(
                "voters {:?} do not include {}",
                self.voters, self.id
            ));
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.voters.len() {
            return bad(format!("duplicate voters in {:?}", self.voters));
        }
        Self::validate_timing(
            self.heartbeat_interval,
            self.election_timeout_min,
            self.election_timeout_max,
        )?;
        if self.max_entries_per_append == 0 {
            return bad("max_entries_per_append must be at least 1".into());
        }
        if self.max_inflight_msgs == 0 {
            return bad("max_inflight_msgs must be at least 1".into());
        }
        if self.snapshot_chunk_size == 0 {
            return bad("snapshot_chunk_size must be at least 1".into());
        }
        if self.snapshot_window == 0 {
            return bad("snapshot_window must be at least 1".into());
        }
        if self.snapshot_chunk_timeout == 0 {
            return bad("snapshot_chunk_timeout must be at least 1 ms".into());
        }
        Ok(())
    }

    /// How long a snapshot transfer may go without an answer from its follower before the
    /// leader gives it up (back to probing) and stops keeping its snapshot for it: a few
    /// election timeouts, and a few chunk timeouts, whichever is longer.
    pub fn snapshot_abandon_after(&self) -> Millis {
        self.election_timeout_max
            .saturating_mul(4)
            .max(self.snapshot_chunk_timeout.saturating_mul(3))
    }

    /// The timing rule alone: `0 < heartbeat < election_timeout_min <= election_timeout_max`.
    /// Hosts that take timings from a user check them with this before building a `Config`.
    pub fn validate_timing(
        heartbeat: Millis,
        election_timeout_min: Millis,
        election_timeout_max: Millis,
    ) -> Result<(), ConfigError> {
        if heartbeat == 0 || heartbeat >= election_timeout_min {
            return Err(ConfigError(format!(
                "need 0 < heartbeat ({heartbeat} ms) < election timeout min ({election_timeout_min} ms)"
            )));
        }
        if election_timeout_min > election_timeout_max {
            return Err(ConfigError(format!(
                "need election timeout min ({election_timeout_min} ms) <= max ({election_timeout_max} ms)"
            )));
        }
        Ok(())
    }
}

/// A configuration that breaks one of [`Config`]'s invariants.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub String);

/// Switches that break Raft on purpose. Compiled only with the `protocol-breaks` feature, which
/// only tests enable.
#[cfg(feature = "protocol-breaks")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtocolBreaks {
    /// Commit any entry stored on a majority, whatever its term (the figure 8 bug).
    pub skip_current_term_commit_rule: bool,
    /// Grant votes without checking that the candidate's log is at least as up to date.
    pub skip_log_completeness_check: bool,
    /// Grant votes without persisting the vote, so a restarted node can vote twice in a term.
    pub forget_to_persist_vote: bool,
    /// The leader counts its own new entry toward the quorum as soon as it appends it,
    /// before the host reports it durable (a crash can then lose a committed entry).
    pub count_own_entry_before_durable: bool,
    /// Accept a configuration change before an entry of the leader's term committed (the
    /// single-server change bug Ongaro described in 2015).
    pub conf_change_before_term_commit: bool,
    /// Serve lease reads for the whole `election_timeout_min`, ignoring `lease_drift_margin`.
    pub lease_without_drift_margin: bool,
    /// A snapshot receiver takes a chunk at whatever offset it claims (appending it to what it
    /// has) instead of only the one that continues its bytes, and skips the checksum: a lost or
    /// reordered chunk then installs a corrupt snapshot.
    pub snapshot_chunk_any_offset: bool,
    /// The host completes a received snapshot while a Ready that installs an earlier one is
    /// still being persisted: the earlier install then finds another snapshot stored.
    pub snapshot_over_unfinished_install: bool,
    /// Every message leaves at once, before the Ready's writes are durable: a follower
    /// acknowledges entries (and a voter grants its vote) that a crash can still take away.
    pub ack_before_fsync: bool,
    /// The host ignores a failed write or sync and goes on: it sends the messages that waited
    /// for the write (acknowledgements, votes) although the write was lost ("fsyncgate": a
    /// retried fsync succeeds without the dropped pages).
    pub continue_after_fsync_error: bool,
    /// A restart reads its log without checking the records' checksums (the simulator's disk,
    /// [`crate::sim::disk`]): a record corrupted on disk is taken as it reads.
    pub ignore_log_checksum: bool,
}
