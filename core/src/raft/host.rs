//! The host loop every host runs around a [`Node`]: it owns the stores and the state machine,
//! and carries out each [`Ready`] in the order its doc gives (send what may leave, write and
//! sync, send the rest, apply, advance). The simulator, kvserver's driver, the tests and the
//! playground all drive a node through this one piece of code.
//!
//! Besides the loop it does what every host would otherwise repeat:
//! - it loads a node from its stores (restoring the snapshot into the state machine);
//! - it checks a snapshot from the wire before the node adopts it, so garbage costs no state;
//! - it settles the proposals its node accepted, exactly once each: applied, lost (another
//!   leader's entry replaced it) or unknown (covered by a snapshot installed before it was
//!   applied here), reported as [`Event`]s;
//! - it snapshots the state machine every `snapshot_threshold` applied entries.
//!
//! [`Host::process`] runs the loop to the end, a write and a sync per Ready. A host that wants
//! durability to take time (the simulator's disk latency, a crash between a Ready and its
//! persistence) uses the three steps on their own: [`Host::begin`], [`Host::persist`] and
//! [`Host::finish`].

use std::collections::BTreeMap;

use super::membership::{ConfChange, ConfChangeError};
use super::node::{InitialState, Node, Proposal, ProposeError, RaftError, TransferError};
use super::{
    Config, Event, Index, LogStore, MemLogStore, Message, Millis, Payload, ReadId, Ready,
    ReceiveOp, SnapshotInfo, SnapshotMeta, SnapshotWriter, Source, Stores, Term, Transport,
    WrittenSnapshot, snapshot_reader,
};
use crate::state_machine::{ApplyEntry, SnapshotView, StateMachine};
use crate::types::NodeId;

/// The Ready of a node over state machine `M`.
pub type ReadyOf<M> = Ready<<M as StateMachine>::Command, <M as StateMachine>::Reply>;

/// A node, its stores and its state machine.
pub struct Host<M: StateMachine> {
    node: Node<M>,
    stores: Stores<M::Command>,
    sm: M,
    /// Proposals the node accepted as leader whose outcome is not settled: index -> term.
    /// Invariant: every key is > the node's `last_applied`.
    proposals: BTreeMap<Index, Term>,
    /// Events since the last `take_events`, oldest first.
    events: Vec<Event<M::Reply>>,
    /// The host writes snapshots off its thread ([`Host::begin_snapshot`]): the threshold
    /// no longer snapshots inline.
    background_snapshots: bool,
    /// A [`SnapshotJob`] was handed out and its result not yet given back.
    snapshot_job_out: bool,
    /// A Ready that installs a snapshot was handed out by [`Host::begin`] and not yet
    /// finished: its `finish` reads the stored snapshot, so no received snapshot may replace
    /// it until then (the last chunk of one is dropped meanwhile, and sent again).
    install_unfinished: bool,
}

/// A snapshot of the state machine to write, possibly on another thread (see
/// [`Host::begin_snapshot`]): a point-in-time view and the store's writer.
pub struct SnapshotJob {
    view: Box<dyn SnapshotView>,
    writer: Box<dyn SnapshotWriter>,
    index: Index,
}

impl SnapshotJob {
    /// The applied index the snapshot is at.
    pub fn index(&self) -> Index {
        self.index
    }

    /// Writes the view into the store's writer and makes it durable; hand the result to
    /// [`Host::snapshot_done`].
    pub fn run(self) -> Result<WrittenSnapshot, RaftError> {
        let SnapshotJob {
            view, mut writer, ..
        } = self;
        view.write_to(&mut writer)
            .map_err(|e| RaftError::StateMachine(e.0))?;
        Ok(writer.finish()?)
    }
}

impl<M: StateMachine> Host<M> {
    /// Starts a node from what `stores` hold: the snapshot is restored into `sm` (which must
    /// be empty) and the log is loaded. The node starts as a follower at `now`.
    pub fn new(
        cfg: Config,
        stores: Stores<M::Command>,
        mut sm: M,
        rng_seed: u64,
        now: Millis,
    ) -> Result<Self, RaftError> {
        let hard_state = stores.stable.hard_state()?;
        let mut stores = stores;
        // A reception cut by the stop is not durable state: the leader sends it again.
        stores.snapshot.abort_receive()?;
        let snapshot = stores.snapshot.info()?;
        // A durable state machine resumes where it stopped; it needs the stored snapshot only
        // if that is newer (one received from the leader whose install did not finish).
        if let Some(snap) = &snapshot
            && snap.meta.last_included_index > sm.applied_index()
        {
            let mut reader = snapshot_reader(stores.snapshot.as_ref(), snap.size, Source::Stored);
            sm.install(snap.meta.last_included_index, &mut reader)
                .map_err(|e| RaftError::Corrupt(format!("stored snapshot: {e}")))?;
        }
        let log = load_log(stores.log.as_ref())?;
        let init = InitialState {
            hard_state,
            log,
            snapshot,
            applied: sm.applied_index(),
        };
        let node = Node::new(cfg, init, rng_seed, now)?;
        let mut host = Host {
            node,
            stores,
            sm,
            proposals: BTreeMap::new(),
            events: Vec::new(),
            background_snapshots: false,
            snapshot_job_out: false,
            install_unfinished: false,
        };
        // A snapshot saved but not yet cut behind (a crash between the two) is reconciled in
        // the first Ready; a follower sends nothing at start.
        let mut out = Vec::new();
        host.process(&mut out)?;
        debug_assert!(out.is_empty(), "a starting node sends nothing");
        Ok(host)
    }

    /// Inputs for the node without processing them: a host that persists with a delay takes
    /// the Readys itself ([`begin`](Self::begin), [`persist`](Self::persist),
    /// [`finish`](Self::finish)).
    pub fn feed(&mut self) -> Feed<'_, M> {
        Feed { host: self }
    }

    /// Handles a message from `from` and processes what follows.
    pub fn step(
        &mut self,
        now: Millis,
        from: &NodeId,
        msg: Message<M::Command>,
        out: &mut impl Transport<M::Command>,
    ) -> Result<(), RaftError> {
        self.feed().step(now, from, msg)?;
        self.process(out)
    }

    /// Advances the node's timers to `now` and processes what follows.
    pub fn tick(
        &mut self,
        now: Millis,
        out: &mut impl Transport<M::Command>,
    ) -> Result<(), RaftError> {
        self.feed().tick(now)?;
        self.process(out)
    }

    /// Proposes a command (see [`Node::propose`]); its outcome comes as an event.
    pub fn propose(
        &mut self,
        now: Millis,
        cmd: M::Command,
        out: &mut impl Transport<M::Command>,
    ) -> Result<Proposal, ProposeError> {
        let p = self.feed().propose(now, cmd)?;
        self.process(out)?;
        Ok(p)
    }

    /// Proposes a configuration change (see [`Node::propose_conf_change`]); its outcome
    /// comes as [`Event::ConfChangeApplied`] or [`Event::ProposalLost`].
    pub fn propose_conf_change(
        &mut self,
        now: Millis,
        change: ConfChange,
        out: &mut impl Transport<M::Command>,
    ) -> Result<Proposal, ConfChangeError> {
        let p = self.feed().propose_conf_change(now, change)?;
        self.process(out)?;
        Ok(p)
    }

    /// Asks for a linearizable read (see [`Node::read_index`]).
    pub fn read_index(
        &mut self,
        now: Millis,
        out: &mut impl Transport<M::Command>,
    ) -> Result<ReadId, ProposeError> {
        let id = self.feed().read_index(now)?;
        self.process(out)?;
        Ok(id)
    }

    /// A lease read at `now` (see [`Node::read_lease`]): the read index if this leader holds
    /// a valid lease, to answer once `last_applied() >= index`; `None`: use
    /// [`read_index`](Self::read_index). Nothing to process: a lease read sends nothing.
    pub fn read_lease(&self, now: Millis) -> Option<Index> {
        self.node.read_lease(now)
    }

    /// Hands leadership to `to` (see [`Node::transfer_leader`]) and processes what follows
    /// (TimeoutNow, or what the target lacks). The outer error is fatal (storage failed while
    /// processing), the inner one a refusal.
    pub fn transfer_leader(
        &mut self,
        now: Millis,
        to: Option<NodeId>,
        out: &mut impl Transport<M::Command>,
    ) -> Result<Result<NodeId, TransferError>, RaftError> {
        let r = self.feed().transfer_leader(now, to);
        self.process(out)?;
        Ok(r)
    }

    /// Snapshots the state machine now, whatever the threshold, and compacts the log behind
    /// it (hosts may call this, e.g. before a planned shutdown). Like the threshold, it waits
    /// while a follower is receiving the current snapshot (see [`Node::snapshot_pinned`]) or
    /// a [`SnapshotJob`] is out.
    pub fn create_snapshot(
        &mut self,
        out: &mut impl Transport<M::Command>,
    ) -> Result<(), RaftError> {
        self.take_snapshot()?;
        self.process(out)
    }

    /// Carries out every Ready the node has, one after the other.
    pub fn process(&mut self, out: &mut impl Transport<M::Command>) -> Result<(), RaftError> {
        while let Some(mut rd) = self.begin()? {
            for (to, msg) in rd.messages.drain(..) {
                out.send(&to, msg);
            }
            self.persist(&rd)?;
            self.finish(rd, out)?;
        }
        Ok(())
    }

    /// Takes the node's next Ready, if it has one, and settles the proposals it decides: those
    /// covered by an installed snapshot are unknown, those in a truncated suffix are lost. The
    /// caller sends its `messages` now, then calls [`persist`](Self::persist) and
    /// [`finish`](Self::finish), Readys in the order they were taken.
    pub fn begin(&mut self) -> Result<Option<ReadyOf<M>>, RaftError> {
        if !self.node.has_ready() {
            return Ok(None);
        }
        let mut rd = self.node.ready()?;
        self.fill_chunks(&mut rd.messages)?;
        self.fill_chunks(&mut rd.persisted_messages)?;
        self.events.append(&mut rd.events);
        if let Some(s) = rd.snapshot.as_ref().filter(|s| s.install) {
            self.install_unfinished = true;
            let later = self.proposals.split_off(&(s.meta.last_included_index + 1));
            for (index, term) in std::mem::replace(&mut self.proposals, later) {
                self.events.push(Event::ProposalUnknown { index, term });
            }
        }
        if let Some(from) = rd.truncate_from {
            for (index, term) in self.proposals.split_off(&from) {
                self.events.push(Event::ProposalLost { index, term });
            }
        }
        Ok(Some(rd))
    }

    /// Writes a Ready's durable part to the stores, in order, and syncs them. An error means
    /// the write may be lost: the host must stop the node (never retry and go on), and send
    /// none of the Ready's `persisted_messages`.
    pub fn persist(&mut self, rd: &ReadyOf<M>) -> Result<(), RaftError> {
        let r = persist_to(&mut self.stores, rd);
        #[cfg(feature = "protocol-breaks")]
        if r.is_err() && self.node.config().breaks.continue_after_fsync_error {
            return Ok(());
        }
        r
    }

    /// After `persist`: sends the messages that waited for it, restores an installed snapshot,
    /// applies the committed entries, and tells the node.
    pub fn finish(
        &mut self,
        rd: ReadyOf<M>,
        out: &mut impl Transport<M::Command>,
    ) -> Result<(), RaftError> {
        for (to, msg) in rd.persisted_messages {
            out.send(&to, msg);
        }
        // A durable state machine may already hold entries the node hands out again after a
        // restart (they are re-handed so configurations take effect): those are skipped.
        let mut applied = self.node.last_applied().max(self.sm.applied_index());
        let installed = rd
            .snapshot
            .as_ref()
            .filter(|s| s.install)
            .map(|s| s.meta.last_included_index);
        if let Some(s) = rd.snapshot.as_ref().filter(|s| s.install) {
            // Checked before the node adopted it: failing now means our own state is wrong.
            let size = self
                .stores
                .snapshot
                .info()?
                .filter(|i| i.meta == s.meta)
                .map(|i| i.size)
                .ok_or_else(|| {
                    RaftError::Corrupt("the snapshot to install is not the stored one".into())
                })?;
            let mut reader = snapshot_reader(self.stores.snapshot.as_ref(), size, Source::Stored);
            self.sm
                .install(s.meta.last_included_index, &mut reader)
                .map_err(|e| RaftError::Corrupt(format!("installing a snapshot: {e}")))?;
            applied = applied.max(s.meta.last_included_index);
            self.install_unfinished = false;
        }
        let fresh: Vec<_> = rd.committed.iter().filter(|e| e.index > applied).collect();
        debug_assert!(
            fresh.iter().zip(applied + 1..).all(|(e, i)| e.index == i),
            "entries apply in order"
        );
        let batch: Vec<ApplyEntry<'_, M::Command>> = fresh
            .iter()
            .map(|e| ApplyEntry {
                index: e.index,
                time: e.time,
                cmd: e.payload.command(),
            })
            .collect();
        let mut replies = self
            .sm
            .apply_batch(&batch)
            .map_err(|e| RaftError::StateMachine(e.0))?
            .into_iter();
        for entry in fresh {
            let applied_as = match &entry.payload {
                Payload::Command(_) => match replies.next() {
                    Some(r) => AppliedAs::Command(r),
                    None => {
                        return Err(RaftError::StateMachine(
                            "apply_batch answered fewer replies than commands".into(),
                        ));
                    }
                },
                Payload::Config(_) => AppliedAs::Config,
                Payload::Noop => AppliedAs::Noop,
            };
            applied = entry.index;
            self.events.push(Event::Applied {
                index: entry.index,
                term: entry.term,
            });
            self.settle(entry.index, entry.term, applied_as);
        }
        debug_assert!(
            self.proposals
                .first_key_value()
                .is_none_or(|(i, _)| *i > applied),
            "a proposal at or below the applied index was never settled"
        );
        // A durable state machine may hold more than the node has handed out so far (after a
        // restart the log comes out again in batches from the snapshot): the node hears of
        // no more than it handed out, and the entries the state machine already holds are
        // skipped as they come.
        let handed_out = rd
            .committed
            .last()
            .map(|e| e.index)
            .into_iter()
            .chain(installed)
            .chain([self.node.last_applied()])
            .max()
            .unwrap_or(0);
        self.node.advance(rd.last_entry, applied.min(handed_out))?;
        self.maybe_snapshot()
    }

    /// The entry at `index`, of `term`, was applied: the proposal made there, if any, took
    /// effect only if it is that very entry (same index and term).
    fn settle(&mut self, index: Index, term: Term, applied: AppliedAs<M::Reply>) {
        let Some(proposed_term) = self.proposals.remove(&index) else {
            return;
        };
        let event = match applied {
            AppliedAs::Command(result) if proposed_term == term => Event::ProposalApplied {
                index,
                term,
                result,
            },
            AppliedAs::Config if proposed_term == term => Event::ConfChangeApplied { index, term },
            _ => Event::ProposalLost {
                index,
                term: proposed_term,
            },
        };
        self.events.push(event);
    }

    /// Once `snapshot_threshold` entries were applied since the last snapshot, snapshots the
    /// state machine (the next Ready compacts the log), unless snapshots are written off the
    /// host's thread.
    fn maybe_snapshot(&mut self) -> Result<(), RaftError> {
        if !self.background_snapshots && self.snapshot_due() {
            self.take_snapshot()?;
        }
        Ok(())
    }

    /// Whether the threshold calls for a snapshot now. Not while a durable state machine is
    /// ahead of what the node handed out after a restart: its snapshot would be of an index
    /// the node has not applied yet, which the node refuses.
    fn snapshot_due(&self) -> bool {
        let threshold = self.node.config().snapshot_threshold;
        let applied = self.node.last_applied();
        threshold > 0
            && applied.saturating_sub(self.node.snapshot_index()) >= threshold
            && self.sm.applied_index() <= applied
    }

    /// Snapshots the state machine at its applied index, inline, streaming it into the store.
    fn take_snapshot(&mut self) -> Result<(), RaftError> {
        if let Some(job) = self.snapshot_job()? {
            let written = job.run();
            self.snapshot_job_out = false;
            self.commit_snapshot(written?)?;
        }
        Ok(())
    }

    /// Makes the state machine snapshot itself off the host's thread from now on: the
    /// threshold no longer snapshots inline; the host asks [`begin_snapshot`](Self::begin_snapshot)
    /// after processing, runs the job where it likes and gives the result to
    /// [`snapshot_done`](Self::snapshot_done).
    pub fn set_background_snapshots(&mut self, on: bool) {
        self.background_snapshots = on;
    }

    /// A snapshot to write, when the threshold calls for one, no job is out, and no follower
    /// is receiving the current snapshot. The job holds a point-in-time view: entries applied
    /// meanwhile are not in it.
    pub fn begin_snapshot(&mut self) -> Result<Option<SnapshotJob>, RaftError> {
        if !self.snapshot_due() {
            return Ok(None);
        }
        self.snapshot_job()
    }

    /// A job's result: the written snapshot becomes the stored one and the node compacts its
    /// log behind it (processed like any input), unless a newer snapshot arrived from the
    /// leader meanwhile. An error is fatal, as an inline one would be.
    pub fn snapshot_done(
        &mut self,
        result: Result<WrittenSnapshot, RaftError>,
        out: &mut impl Transport<M::Command>,
    ) -> Result<(), RaftError> {
        self.snapshot_job_out = false;
        self.commit_snapshot(result?)?;
        self.process(out)
    }

    /// A job for a snapshot at the applied index, if that is past the last snapshot, no job is
    /// out and the current snapshot is not being sent.
    fn snapshot_job(&mut self) -> Result<Option<SnapshotJob>, RaftError> {
        let applied = self.node.last_applied();
        if applied <= self.node.snapshot_index()
            || self.snapshot_job_out
            || self.node.snapshot_pinned()
        {
            return Ok(None);
        }
        let view = self
            .sm
            .snapshot_view()
            .map_err(|e| RaftError::StateMachine(e.0))?;
        debug_assert_eq!(
            view.index(),
            applied,
            "the state machine is at the node's applied index"
        );
        let meta = SnapshotMeta {
            last_included_index: applied,
            last_included_term: self.node.log().term_at(applied)?,
        };
        let membership = self.node.membership_at_index(applied);
        let writer = self.stores.snapshot.create(meta, &membership)?;
        self.snapshot_job_out = true;
        Ok(Some(SnapshotJob {
            view,
            writer,
            index: applied,
        }))
    }

    /// Stores a written snapshot and tells the node, unless the node holds a newer one.
    fn commit_snapshot(&mut self, written: WrittenSnapshot) -> Result<(), RaftError> {
        if written.info.meta.last_included_index <= self.node.snapshot_index() {
            return Ok(());
        }
        let info = written.info.clone();
        self.stores.snapshot.commit(written)?;
        self.node.snapshot_taken(info)
    }

    /// Fills the bytes of this node's outgoing snapshot chunks from the snapshot store (the
    /// node leaves them empty). A chunk of a snapshot the store no longer holds is dropped:
    /// the transfer starts over with the new one.
    fn fill_chunks(
        &mut self,
        msgs: &mut Vec<(NodeId, Message<M::Command>)>,
    ) -> Result<(), RaftError> {
        if !msgs
            .iter()
            .any(|(_, m)| matches!(m, Message::InstallSnapshot(_)))
        {
            return Ok(());
        }
        let chunk = self.node.config().snapshot_chunk_size;
        let stored = self.stores.snapshot.info()?.map(|i| i.meta);
        let mut keep = Vec::with_capacity(msgs.len());
        for (to, mut msg) in msgs.drain(..) {
            if let Message::InstallSnapshot(m) = &mut msg {
                let meta = SnapshotMeta {
                    last_included_index: m.last_included_index,
                    last_included_term: m.last_included_term,
                };
                if stored != Some(meta) {
                    continue;
                }
                let len = chunk.min(m.size.saturating_sub(m.offset));
                if m.data.is_empty() && len > 0 {
                    m.data = self.stores.snapshot.read_chunk(m.offset, len)?;
                }
            }
            keep.push((to, msg));
        }
        *msgs = keep;
        Ok(())
    }

    /// Carries out what the node asked of the snapshot store for the chunks it took; a
    /// complete snapshot is checked with the state machine, made the stored one, and handed
    /// back to the node.
    fn apply_receive_ops(&mut self) -> Result<(), RaftError> {
        for op in self.node.take_receive_ops() {
            match op {
                ReceiveOp::Begin(info) => self.stores.snapshot.begin_receive(&info)?,
                ReceiveOp::Append(data) => self.stores.snapshot.append_chunk(&data)?,
                ReceiveOp::Abort => self.stores.snapshot.abort_receive()?,
                ReceiveOp::Complete(info) => {
                    let ok = self.check_received(&info);
                    if ok {
                        self.stores.snapshot.finish_receive()?;
                    } else {
                        self.stores.snapshot.abort_receive()?;
                    }
                    self.node.snapshot_received(ok)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the received bytes are a snapshot of our state machine at `info`'s index.
    fn check_received(&self, info: &SnapshotInfo) -> bool {
        #[cfg(feature = "protocol-breaks")]
        if self.node.config().breaks.snapshot_chunk_any_offset {
            return true;
        }
        let mut reader =
            snapshot_reader(self.stores.snapshot.as_ref(), info.size, Source::Received);
        M::check_snapshot(info.meta.last_included_index, &mut reader).is_ok()
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event<M::Reply>> {
        std::mem::take(&mut self.events)
    }

    /// The node.
    pub fn node(&self) -> &Node<M> {
        &self.node
    }

    /// The state machine (read-only: only committed entries change it).
    pub fn state_machine(&self) -> &M {
        &self.sm
    }

    /// Stops the node and hands back its stores: what a crash leaves behind.
    pub fn into_stores(self) -> Stores<M::Command> {
        self.stores
    }
}

/// A host's inputs that leave the processing to the caller (see [`Host::feed`]).
pub struct Feed<'a, M: StateMachine> {
    host: &'a mut Host<M>,
}

impl<M: StateMachine> Feed<'_, M> {
    /// A message from `from`. The chunks of a snapshot the node takes are written to the
    /// snapshot store at once; a complete one is checked with the state machine before the
    /// node adopts it, so garbage from the wire costs no state.
    pub fn step(
        self,
        now: Millis,
        from: &NodeId,
        msg: Message<M::Command>,
    ) -> Result<(), RaftError> {
        let chunk = match &msg {
            // A snapshot completed now would replace the stored one under an install that is
            // still being persisted: as if lost, the leader sends this last chunk again.
            Message::InstallSnapshot(m) if m.done && self.host.install_unfinished => {
                #[cfg(feature = "protocol-breaks")]
                let dropped = !self
                    .host
                    .node
                    .config()
                    .breaks
                    .snapshot_over_unfinished_install;
                #[cfg(not(feature = "protocol-breaks"))]
                let dropped = true;
                if dropped {
                    return Ok(());
                }
                true
            }
            Message::InstallSnapshot(_) => true,
            _ => false,
        };
        self.host.node.step(now, from, msg)?;
        if chunk {
            self.host.apply_receive_ops()?;
        }
        Ok(())
    }

    /// Timers up to `now`.
    pub fn tick(self, now: Millis) -> Result<(), RaftError> {
        self.host.node.tick(now)
    }

    /// A proposal; the host settles its outcome.
    pub fn propose(self, now: Millis, cmd: M::Command) -> Result<Proposal, ProposeError> {
        let p = self.host.node.propose(now, cmd)?;
        self.host.proposals.insert(p.index, p.term);
        Ok(p)
    }

    /// A configuration change; the host settles its outcome like a proposal's.
    pub fn propose_conf_change(
        self,
        now: Millis,
        change: ConfChange,
    ) -> Result<Proposal, ConfChangeError> {
        let p = self.host.node.propose_conf_change(now, change)?;
        self.host.proposals.insert(p.index, p.term);
        Ok(p)
    }

    /// A linearizable read.
    pub fn read_index(self, now: Millis) -> Result<ReadId, ProposeError> {
        self.host.node.read_index(now)
    }

    /// A lease read (see [`Node::read_lease`]).
    pub fn read_lease(self, now: Millis) -> Option<Index> {
        self.host.node.read_lease(now)
    }

    /// A leadership transfer (see [`Node::transfer_leader`]).
    pub fn transfer_leader(self, now: Millis, to: Option<NodeId>) -> Result<NodeId, TransferError> {
        self.host.node.transfer_leader(now, to)
    }
}

impl<M: StateMachine> std::ops::Deref for Host<M> {
    type Target = Node<M>;
    /// A host reads as its node: `host.status()`, `host.last_applied()`, `host.log()`.
    fn deref(&self) -> &Node<M> {
        &self.node
    }
}

/// What applying one entry did.
enum AppliedAs<R> {
    /// A command, with the state machine's answer.
    Command(R),
    /// A configuration entry (it took effect in the node when it was handed out).
    Config,
    /// The no-op.
    Noop,
}

/// Writes a Ready's durable part to `stores` in the order the Ready's doc gives, then syncs:
/// term and vote, the truncation, the new base, the new entries. The Ready's snapshot is
/// already in the snapshot store (written when taken or received), before the log is cut
/// behind it here.
fn persist_to<C, R>(stores: &mut Stores<C>, rd: &Ready<C, R>) -> Result<(), RaftError> {
    if let Some(hs) = &rd.hard_state {
        stores.stable.set_hard_state(hs)?;
    }
    if let Some(from) = rd.truncate_from {
        stores.log.delete_from(from)?;
    }
    if let Some(SnapshotMeta {
        last_included_index,
        last_included_term,
    }) = rd.compact_to
    {
        stores
            .log
            .truncate_prefix(last_included_index, last_included_term)?;
    }
    stores.log.append(&rd.entries)?;
    if rd.must_sync() {
        stores.stable.sync()?;
        stores.log.sync()?;
    }
    Ok(())
}

/// Copies a durable log into memory, for the node.
fn load_log<C: Clone + Send>(log: &dyn LogStore<C>) -> Result<MemLogStore<C>, RaftError> {
    let base = log.base();
    let mut mem = MemLogStore::with_base(base);
    const CHUNK: Index = 4096;
    let mut lo = base.last_included_index + 1;
    let last = log.last_index();
    while lo <= last {
        let hi = last.min(lo + CHUNK - 1);
        mem.append(&log.read_range(lo, hi + 1)?)
            .map_err(RaftError::Storage)?;
        lo = hi + 1;
    }
    Ok(mem)
}
