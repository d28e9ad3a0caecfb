//! The cluster as the nodes' host: calls into a node, what happens after each call (its
//! events, its messages, the invariant checks, its next timer), client requests served by a
//! node, and killing and starting nodes.

use super::*;
use crate::raft::Outcome;
use crate::sim::invariants::LogChange;

/// How long a node lets a read wait for its floor (a read-your-writes read whose write it has
/// not applied yet) before it answers "unavailable", in global ms: under the clients' request
/// timeout, so the client hears the refusal and moves on.
pub const FLOOR_WAIT: Millis = 300;

impl Cluster {
    pub(super) fn handle_request(&mut self, i: usize, req: ClientRequest) -> Result<(), Violation> {
        let now = self.local_now(i);
        let client_id = req.session_id();
        let waiter = Waiter {
            client: req.client,
            seq: req.seq,
            attempt: req.attempt,
        };
        let cmd = match req.register {
            true => Some(crate::sim::client::register_command(&client_id)),
            false => req.op.command(&client_id, req.write_seq),
        };
        let answer = match (&req.op, cmd) {
            (_, Some(cmd)) => {
                let r = self.call_node(i, |host| Ok(host.feed().propose(now, cmd)))?;
                let answer = match r {
                    Some(Ok(p)) => {
                        self.nodes[i].waiters.proposed(p, waiter);
                        None
                    }
                    Some(Err(ProposeError::NotLeader { leader })) => {
                        Some(Answer::NotLeader { leader })
                    }
                    Some(Err(
                        ProposeError::Overloaded { .. } | ProposeError::Transferring { .. },
                    )) => Some(Answer::Unavailable),
                    Some(Err(ProposeError::Fatal(e))) => return Err(self.node_error(i, &e)),
                    None => None,
                };
                self.after_node_call(i, false)?;
                answer
            }
            (ClientOp::Get { key, policy }, None) => {
                let read = ReadWaiter {
                    waiter,
                    key: key.clone(),
                    floor: req.min_index.unwrap_or(0),
                    lease: false,
                };
                let lease = match policy {
                    ReadPolicy::Lease => self.node(i).and_then(|h| h.read_lease(now)),
                    _ => None,
                };
                match (policy, lease) {
                    (ReadPolicy::Stale, _) => {
                        self.serve_when_applied(i, read, 0);
                        None
                    }
                    // A valid lease: the read index without a confirmation round.
                    (ReadPolicy::Lease, Some(index)) => {
                        let read = ReadWaiter {
                            lease: true,
                            ..read
                        };
                        self.serve_when_applied(i, read, index);
                        None
                    }
                    // No lease: a lease read falls back to ReadIndex.
                    _ => self.read_index(i, read)?,
                }
            }
            // A write always has a command.
            (_, None) => None,
        };
        if let Some(answer) = answer {
            self.reply(i, req.client, req.seq, req.attempt, answer);
        }
        Ok(())
    }

    /// Starts a ReadIndex read at node `i`; the refusal to answer at once, if any.
    fn read_index(&mut self, i: usize, read: ReadWaiter) -> Result<Option<Answer>, Violation> {
        let now = self.local_now(i);
        let r = self.call_node(i, |host| Ok(host.feed().read_index(now)))?;
        let answer = match r {
            Some(Ok(id)) => {
                self.nodes[i].waiters.reading(id, read);
                None
            }
            Some(Err(ProposeError::NotLeader { leader })) => Some(Answer::NotLeader { leader }),
            Some(Err(ProposeError::Overloaded { .. } | ProposeError::Transferring { .. })) => {
                Some(Answer::Unavailable)
            }
            Some(Err(ProposeError::Fatal(e))) => return Err(self.node_error(i, &e)),
            None => None,
        };
        self.after_node_call(i, false)?;
        Ok(answer)
    }

    /// Serves `read` at node `i` from its state machine once it has applied both `index` and
    /// the read's own floor; waits (bounded by [`FLOOR_WAIT`]) until then.
    fn serve_when_applied(&mut self, i: usize, read: ReadWaiter, index: Index) {
        let read = ReadWaiter {
            floor: read.floor.max(index),
            ..read
        };
        let applied = self.node(i).map_or(0, |h| h.last_applied());
        if applied >= read.floor {
            self.serve_read(i, read);
        } else {
            self.stats.reads_waited += 1;
            let until = self.now + FLOOR_WAIT;
            self.nodes[i].floor_reads.push((read, until));
        }
    }

    /// Answers `read` from node `i`'s state machine now.
    fn serve_read(&mut self, i: usize, read: ReadWaiter) {
        let Some(host) = self.node(i) else {
            return;
        };
        debug_assert!(host.last_applied() >= read.floor, "served below its floor");
        let answer = Answer::Value {
            value: host.state_machine().get(&read.key),
            applied: host.last_applied(),
        };
        self.stats.lease_reads += u64::from(read.lease);
        let w = read.waiter;
        self.reply(i, w.client, w.seq, w.attempt, answer);
    }

    pub(super) fn reply(
        &mut self,
        node: usize,
        client: usize,
        seq: u64,
        attempt: u32,
        answer: Answer,
    ) {
        self.send(
            Endpoint::Node(node),
            Endpoint::Client(client),
            Payload::Reply(ClientReply {
                client,
                seq,
                attempt,
                node,
                answer,
            }),
        );
    }

    pub(super) fn node_error(&self, i: usize, e: &RaftError) -> Violation {
        Violation {
            invariant: Invariant::NodeError,
            time: self.now,
            nodes: vec![node_name(i)],
            detail: e.to_string(),
        }
    }

    /// Feeds the running node `i` through `f`; `Ok(None)` if it is down.
    pub(super) fn call_node<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Host) -> Result<R, RaftError>,
    ) -> Result<Option<R>, Violation> {
        #[cfg(feature = "protocol-breaks")]
        if let Some(n) = self.nodes.get(i) {
            n.local_clock.set(n.clock.local(self.now));
        }
        let r = match self.nodes.get_mut(i).map(|n| &mut n.state) {
            Some(NodeState::Up(host)) => Some(f(host)),
            _ => None,
        };
        match r {
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(e)) => Err(self.node_error(i, &e)),
            None => Ok(None),
        }
    }

    /// Takes node `i`'s Readys: checks the log writes they carry, sends what may leave now,
    /// and makes them durable at once (no disk latency) or queues them until a drawn time.
    fn drive(&mut self, i: usize) -> Result<(), Violation> {
        loop {
            let rd = match self.call_node(i, |host| host.begin())? {
                Some(Some(rd)) => rd,
                _ => return Ok(()),
            };
            let mut rd = rd;
            self.check_writes(i, &rd)?;
            let mut out = std::mem::take(&mut self.outbox);
            out.append(&mut rd.messages);
            self.outbox = out;
            let (lo, hi) = self.cfg.disk_latency;
            if hi == 0 && self.nodes[i].writes.is_empty() {
                self.complete(i, rd)?;
                continue;
            }
            let latency = self.disk.range(lo, hi.max(lo));
            let last_due = self.nodes[i].writes.back().map_or(0, |(_, t)| *t);
            let due = (self.now + latency).max(last_due);
            let generation = self.nodes[i].write_generation;
            self.nodes[i].writes.push_back((rd, due));
            self.queue.push(
                due,
                Action::WriteDone {
                    node: i,
                    generation,
                },
            );
        }
    }

    /// The oldest write in flight at node `i` is durable now.
    pub(super) fn write_done(&mut self, i: usize) -> Result<(), Violation> {
        if let Some((rd, _)) = self.nodes[i].writes.pop_front() {
            self.complete(i, rd)?;
        }
        Ok(())
    }

    /// Persists `rd` at node `i`, then sends what waited for it and applies. A sync drawn to
    /// fail stops the node instead (see [`disk`](crate::sim::disk)).
    fn complete(&mut self, i: usize, rd: Ready) -> Result<(), Violation> {
        for e in &rd.committed {
            self.committed.record(e);
        }
        let fail = self.sync_fails(&rd);
        if fail {
            self.nodes[i].sync_fault.arm();
        }
        let r = self.call_node(i, |host| Ok(host.persist(&rd)));
        self.nodes[i].sync_fault.disarm();
        match r? {
            None => return Ok(()),
            Some(Err(e)) if fail => return self.stop_after_sync_error(i, &e),
            Some(Err(e)) => return Err(self.node_error(i, &e)),
            // A failed sync that the host ignored (the continue_after_fsync_error break).
            Some(Ok(())) if fail => self.stats.fsync_failures += 1,
            Some(Ok(())) => {}
        }
        let mut out = std::mem::take(&mut self.outbox);
        let r = self.call_node(i, |host| host.finish(rd, &mut out));
        self.outbox = out;
        r.map(drop)
    }

    /// Whether the sync of `rd` fails: a draw (from the storage stream, only in a run with
    /// failing syncs and before the faults' end) for a Ready that writes something.
    fn sync_fails(&mut self, rd: &Ready) -> bool {
        self.cfg.fsync_failure_rate > 0.0
            && self.now < self.cfg.storage_faults_until
            && rd.must_sync()
            && self.storage.chance(self.cfg.fsync_failure_rate)
    }

    /// Node `i`'s sync failed with `e`: the node stops at once, like a crash. The Ready's writes
    /// are lost (the failed fsync dropped them), and so are the writes queued behind it; none of
    /// the messages waiting for them leaves, nor do those of the Ready taken but not sent yet.
    /// It restarts after a drawn while, like a killed node (the fault's end restarts it too).
    fn stop_after_sync_error(&mut self, i: usize, e: &RaftError) -> Result<(), Violation> {
        self.stats.fsync_failures += 1;
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Fault {
                    fault: format!("{} stops: {e}", node_name(i)),
                },
            );
        }
        self.outbox.clear();
        let lost = std::mem::take(&mut self.nodes[i].writes);
        self.stats.writes_lost += lost.len() as u64;
        self.take_down(i);
        let down = self.storage.range(20, 600);
        self.schedule(self.now + down, Fault::Restart { node: i });
        Ok(())
    }

    /// Marks node `i` down with what its stores hold: its timers, waiters and the messages on
    /// their way to it go.
    fn take_down(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.write_generation += 1;
        let state = std::mem::replace(&mut n.state, NodeState::Gone);
        n.state = match state {
            NodeState::Up(host) => NodeState::Down(host.into_stores()),
            other => other,
        };
        n.timer_generation += 1;
        n.timer_at = None;
        n.waiters = Waiters::default();
        n.floor_reads.clear();
        for m in self.net.drop_to(Endpoint::Node(i)) {
            self.dropped(&m, DropReason::Killed);
        }
    }

    /// The log writes of a Ready, as the invariant checker sees them (when the Ready is taken:
    /// the node's log already holds them; whether they reach the disk is the crash's business).
    fn check_writes(&mut self, i: usize, rd: &Ready) -> Result<(), Violation> {
        let now = self.now;
        if let Some(index) = rd.truncate_from {
            self.invariants
                .log_changed(now, i, &LogChange::DeletedFrom { index })?;
        }
        if let Some(meta) = rd.compact_to {
            let change = LogChange::Compacted {
                upto: meta.last_included_index,
                term: meta.last_included_term,
            };
            self.invariants.log_changed(now, i, &change)?;
        }
        if let Some(first) = rd.entries.first() {
            let prev_term = match &self.nodes[i].state {
                NodeState::Up(host) => host.log().term_at(first.index - 1).unwrap_or(0),
                _ => 0,
            };
            let change = LogChange::Appended {
                prev_term,
                entries: rd.entries.clone(),
            };
            self.invariants.log_changed(now, i, &change)?;
        }
        Ok(())
    }

    /// After a call into node `i`: take its Readys, handle its events, send its messages,
    /// check invariants and reschedule its timer. `ticked`: the call was a tick, so the next
    /// one is at least 1 ms later (a node that keeps asking for a tick now would otherwise
    /// stall the clock).
    pub(super) fn after_node_call(&mut self, i: usize, ticked: bool) -> Result<(), Violation> {
        let now = self.now;
        self.drive(i)?;
        let events = match &mut self.nodes[i].state {
            NodeState::Up(host) => host.take_events(),
            _ => return Ok(()),
        };
        let mut restored = false;
        for ev in events {
            restored |= matches!(ev, Event::SnapshotRestored { .. });
            self.node_event(i, ev)?;
        }
        self.nodes[i].starting = false;

        // Events first (role changes read better before the messages they cause), then the
        // node's messages.
        let mut out = std::mem::take(&mut self.outbox);
        for (to, msg) in out.drain(..) {
            match node_index(&to) {
                Some(t) if t < self.nodes.len() => {
                    self.send(Endpoint::Node(i), Endpoint::Node(t), Payload::Raft(msg))
                }
                // A configuration may name a node nobody started (the playground's raw
                // changes): like a machine that is not there, it never answers.
                Some(t) => self.dropped(
                    &InFlight {
                        id: 0,
                        from: Endpoint::Node(i),
                        to: Endpoint::Node(t),
                        sent_at: now,
                        deliver_at: now,
                        payload: Payload::Raft(msg),
                        duplicate_of: None,
                    },
                    DropReason::UnknownNode,
                ),
                None => {
                    return Err(Violation {
                        invariant: Invariant::NodeError,
                        time: self.now,
                        nodes: vec![node_name(i)],
                        detail: format!("sent a message to {to}, which is no simulated node"),
                    });
                }
            }
        }
        self.outbox = out;

        self.answer_reads(i);

        let (deadline, snapshot, counters) = match &self.nodes[i].state {
            NodeState::Up(host) => {
                let st = host.status();
                self.invariants.observe(now, i, &st, host.log())?;
                let sm = host.state_machine();
                let applied = crate::state_machine::StateMachine::applied_index(sm);
                self.sessions.observe(now, i, applied, sm)?;
                (
                    host.next_deadline(),
                    st.snapshot_index,
                    host.snapshot_stats(),
                )
            }
            _ => return Ok(()),
        };
        self.count_snapshot_taken(i, snapshot, restored);
        self.count_snapshot_chunks(i, counters);
        self.schedule_node_timer(i, deadline, ticked);
        Ok(())
    }

    /// Adds what node `i`'s snapshot counters gained in the call just made.
    fn count_snapshot_chunks(&mut self, i: usize, now: crate::raft::SnapshotStats) {
        let before = std::mem::replace(&mut self.nodes[i].snapshot_counters, now);
        let st = &mut self.stats;
        st.snapshot_chunks_sent += now.chunks_sent.saturating_sub(before.chunks_sent);
        st.snapshot_transfers_completed += now
            .receptions_completed
            .saturating_sub(before.receptions_completed);
        st.snapshot_transfers_resumed += now
            .transfers_resumed
            .saturating_sub(before.transfers_resumed);
        st.snapshot_transfers_restarted += now
            .receptions_restarted
            .saturating_sub(before.receptions_restarted);
        st.snapshot_transfers_abandoned += now
            .transfers_abandoned
            .saturating_sub(before.transfers_abandoned);
    }

    /// Counts (and traces) a snapshot node `i` took in the call just made: its snapshot index
    /// grew to `index` and no snapshot was restored (installed or loaded) in that call.
    fn count_snapshot_taken(&mut self, i: usize, index: Index, restored: bool) {
        let before = std::mem::replace(&mut self.nodes[i].snapshot_index, index);
        if restored || index <= before {
            return;
        }
        self.stats.snapshots_taken += 1;
        if self.trace.enabled()
            && let NodeState::Up(node) = &self.nodes[i].state
        {
            // The snapshot's own term: the log's base may lie behind it (snapshot_trailing).
            let log = node.log();
            let term = log.term_at(index).unwrap_or(log.base().last_included_term);
            self.trace.record(
                self.now,
                TraceKind::Compact {
                    node: node_name(i),
                    index,
                    term,
                },
            );
        }
    }

    /// Answers the confirmed reads whose index node `i` has applied, and the reads waiting
    /// for their floor that it has reached; refuses those that waited too long.
    pub(super) fn answer_reads(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let NodeState::Up(host) = &n.state else {
            return;
        };
        let applied = host.last_applied();
        let confirmed = match n.waiters.no_reads() {
            true => Vec::new(),
            false => n.waiters.reads_applied(applied),
        };
        for read in confirmed {
            self.serve_when_applied(i, read, 0);
        }
        if self.nodes[i].floor_reads.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.nodes[i].floor_reads);
        let mut still = Vec::new();
        for (read, until) in waiting {
            if applied >= read.floor {
                self.serve_read(i, read);
            } else if now >= until {
                let w = read.waiter;
                self.reply(i, w.client, w.seq, w.attempt, Answer::Unavailable);
            } else {
                still.push((read, until));
            }
        }
        self.nodes[i].floor_reads = still;
    }

    /// Schedules node `i`'s timer for its `deadline` (its own time), in global time.
    pub(super) fn schedule_node_timer(&mut self, i: usize, deadline: Millis, ticked: bool) {
        let n = &mut self.nodes[i];
        let deadline = n.clock.global(self.now, deadline);
        if deadline == Millis::MAX {
            return;
        }
        let earliest = if ticked { self.now + 1 } else { self.now };
        let at = deadline.max(earliest);
        if n.timer_at == Some(at) {
            return;
        }
        n.timer_generation += 1;
        n.timer_at = Some(at);
        let generation = n.timer_generation;
        self.queue.push(
            at,
            Action::NodeTimer {
                node: i,
                generation,
            },
        );
    }

    pub(super) fn node_event(&mut self, i: usize, ev: Event) -> Result<(), Violation> {
        let now = self.now;
        let name = || node_name(i);
        match ev {
            Event::RoleChanged { role, term } => {
                if role == crate::raft::Role::Leader {
                    self.churn_elected(i);
                }
                if self.trace.enabled() {
                    self.trace.record(
                        now,
                        TraceKind::Role {
                            node: name(),
                            role,
                            term,
                        },
                    );
                }
            }
            Event::LeaderChanged { leader, term } => {
                if self.trace.enabled() {
                    self.trace.record(
                        now,
                        TraceKind::Leader {
                            node: name(),
                            leader: leader.map(|l| l.0),
                            term,
                        },
                    );
                }
            }
            Event::Committed { index } => {
                if self.trace.enabled() {
                    self.trace.record(
                        now,
                        TraceKind::Commit {
                            node: name(),
                            index,
                        },
                    );
                }
            }
            Event::Applied { index, term } => {
                if self.trace.enabled() {
                    self.trace.record(
                        now,
                        TraceKind::Apply {
                            node: name(),
                            index,
                            term,
                        },
                    );
                }
                self.invariants.applied(now, i, index, term)?;
            }
            Event::ProposalApplied { .. }
            | Event::ProposalLost { .. }
            | Event::ProposalUnknown { .. }
            | Event::ReadReady { .. } => {
                // Lost: replaced by another leader's entry. Unknown: covered by a snapshot
                // before it was applied here. Either way the client retries with the same seq.
                let index = match &ev {
                    Event::ProposalApplied { index, .. } => *index,
                    _ => 0,
                };
                for (w, outcome) in self.nodes[i].waiters.proposals_settled(&ev) {
                    let answer = match outcome {
                        Outcome::Applied(result) => Answer::Applied { result, index },
                        Outcome::Lost | Outcome::Unknown => Answer::Lost,
                    };
                    self.reply(i, w.client, w.seq, w.attempt, answer);
                }
            }
            Event::ReadFailed { .. } => {
                if let Some(read) = self.nodes[i].waiters.read_failed(&ev) {
                    let w = read.waiter;
                    self.reply(i, w.client, w.seq, w.attempt, Answer::Unavailable);
                }
            }
            Event::SnapshotRestored { index, term } => {
                if self.nodes[i].starting {
                    self.stats.snapshots_loaded += 1;
                } else {
                    self.stats.snapshots_installed += 1;
                }
                // The snapshot stands for every entry up to `index`: its last entry must be
                // the one every node applied there (state machine safety).
                self.invariants.applied(now, i, index, term)?;
                if self.trace.enabled() {
                    self.trace.record(
                        now,
                        TraceKind::Snapshot {
                            node: name(),
                            index,
                            term,
                        },
                    );
                }
            }
            Event::MembershipChanged { .. }
            | Event::ConfChangeApplied { .. }
            | Event::TransferStarted { .. }
            | Event::TransferAbandoned { .. } => self.churn_event(i, &ev),
        }
        Ok(())
    }

    /// Kills node `i`: of its writes in flight, a drawn prefix reached the disk (without the
    /// messages that waited for it ever leaving), the next one may have reached it in part
    /// (its term and vote, and a prefix of its entries: the log's records are written in
    /// order and recovery cuts the log at the first torn one), and the rest is lost.
    pub(super) fn kill_node(&mut self, i: usize) -> Result<(), Violation> {
        let writes = std::mem::take(&mut self.nodes[i].writes);
        let survive = self.disk.below(writes.len() as u64 + 1) as usize;
        self.stats.writes_unsent += survive as u64;
        self.stats.writes_lost += (writes.len() - survive) as u64;
        let mut writes = writes.into_iter().map(|(rd, _)| rd);
        for rd in writes.by_ref().take(survive) {
            self.call_node(i, |host| host.persist(&rd))?;
        }
        // A snapshot or compaction is not torn here: the snapshot store replaces its file
        // atomically, and a compaction rewrites the log's base the same way.
        let next = writes.next().filter(|rd| {
            rd.snapshot.is_none() && rd.compact_to.is_none() && !rd.entries.is_empty()
        });
        if let Some(mut rd) = next {
            if self.disk.chance(0.5) {
                let kept = self.disk.below(rd.entries.len() as u64) as usize;
                rd.entries.truncate(kept);
                self.stats.writes_torn += 1;
                self.call_node(i, |host| host.persist(&rd))?;
            } else if self.cfg.corrupt_tails {
                // Written whole, but the crash damaged its last record: the restart's checksum
                // must find it (and cut it off, as it was never acknowledged).
                let index = rd.entries.last().map_or(0, |e| e.index);
                self.call_node(i, |host| host.persist(&rd))?;
                self.nodes[i].damage = Some(Damage { index });
            }
        }
        self.take_down(i);
        Ok(())
    }

    /// Reads the damaged record, if any, of node `i`'s `stores` as its start does; a synced
    /// record may rot first (see [`SimConfig::disk_loss`]). `Err`: the node refuses to start
    /// (with the reason); its disk is dead.
    fn read_damage(&mut self, i: usize, stores: &mut Stores) -> Result<(), String> {
        let damage = match self.nodes[i].damage.take() {
            Some(d) => Some(d),
            None => self.rot_synced_record(stores),
        };
        let Some(damage) = damage else {
            return Ok(());
        };
        #[cfg(feature = "protocol-breaks")]
        let verify = !self.cfg.raft.breaks.ignore_log_checksum;
        #[cfg(not(feature = "protocol-breaks"))]
        let verify = true;
        let r = crate::sim::disk::recover(stores, damage, verify);
        let what = match &r {
            Ok(disk::Recovered::TailCut { from }) => {
                self.stats.corrupt_tails_cut += 1;
                format!("a corrupt last record at {from} cut off")
            }
            Ok(disk::Recovered::TakenAsRead { index }) => {
                format!("corrupt record {index} taken as it read (checksum not checked)")
            }
            Err(e) => {
                self.stats.corrupt_starts_refused += 1;
                e.clone()
            }
        };
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Fault {
                    fault: format!("{} reads its log: {what}", node_name(i)),
                },
            );
        }
        r.map(drop)
    }

    /// A synced record of `stores`' log that rots before this start: drawn only in a run with
    /// disk loss, before the faults' end, while no node's disk died yet, for a log with a
    /// record after it (a bad last record is the torn-write case).
    fn rot_synced_record(&mut self, stores: &Stores) -> Option<Damage> {
        if !self.cfg.disk_loss
            || self.now >= self.cfg.storage_faults_until
            || self.nodes.iter().any(|n| n.dead.is_some())
        {
            return None;
        }
        let first = stores.log.base().last_included_index + 1;
        let last = stores.log.last_index();
        if last <= first || !self.storage.chance(0.2) {
            return None;
        }
        let index = self.storage.range(first, last - 1);
        Some(Damage { index })
    }

    pub(super) fn start_node(&mut self, i: usize) -> Result<(), Violation> {
        let now = self.local_now(i);
        let seed = self.cfg.seed;
        let mut cfg = self.cfg.raft.clone();
        let n = &mut self.nodes[i];
        let NodeState::Down(_) = n.state else {
            return Ok(());
        };
        if n.dead.is_some() {
            return Ok(());
        }
        let NodeState::Down(mut stores) = std::mem::replace(&mut n.state, NodeState::Gone) else {
            return Ok(());
        };
        if let Err(e) = self.read_damage(i, &mut stores) {
            let n = &mut self.nodes[i];
            n.state = NodeState::Down(stores);
            n.dead = Some(e);
            return Ok(());
        }
        let n = &mut self.nodes[i];
        cfg.id = n.id.clone();
        // A node added later has no configuration of its own: the leader's reaches it.
        cfg.voters = if n.joined {
            Vec::new()
        } else {
            self.voters.clone()
        };
        let restarted = n.incarnation > 0;
        let rng_seed = mix_seed(seed, i as u64, u64::from(n.incarnation));
        #[cfg_attr(not(feature = "protocol-breaks"), allow(unused_mut))]
        let mut sm = KvStateMachine::with_limits(self.cfg.session_limits);
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.session_expiry_by_local_clock {
            n.local_clock.set(now);
            sm.expire_by_local_clock(n.local_clock.clone());
        }
        // A restart applies, inside Host::new, what its hard state says was committed: those
        // are applied entries too. They are read before it, since Host::new may snapshot and
        // compact them away before it returns.
        let replayed = stores.stable.hard_state().ok().and_then(|hs| {
            let lo = stores.log.base().last_included_index + 1;
            stores
                .log
                .read_range(lo, hs.commit.min(stores.log.last_index()) + 1)
                .ok()
        });
        match Host::new(cfg, stores, sm, rng_seed, now) {
            Ok(host) => {
                for e in replayed.iter().flatten() {
                    self.committed.record(e);
                }
                n.state = NodeState::Up(Box::new(host));
                n.incarnation += 1;
                n.starting = true;
                // A snapshot loaded at start was taken (or installed) before: not a new one.
                n.snapshot_index = 0;
                n.snapshot_counters = Default::default();
            }
            Err(e) => return Err(self.node_error(i, &e)),
        }
        if restarted {
            self.invariants.restarted(i);
        }
        self.after_node_call(i, false)
    }
}
