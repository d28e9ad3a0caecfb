//! Simulated clients: each runs at most one operation at a time, sends it to the node it
//! believes leads, follows leader hints, and retries on loss or timeout with the same
//! `(client_id, seq)` so the state machine's dedupe table applies a write at most once.
//!
//! Sessions: a client's writes are numbered in its session, from 1. Seq 1 is special: the
//! store starts a session for it whatever it knew, so a retried seq 1 whose session expired in
//! between would apply twice. So a session's seq 1 is a registration that writes nothing
//! ([`register_command`]), sent before the session's first write; the client's own writes
//! start at seq 2, and a retry of one of them after its session expired is refused
//! (`session_expired`). On that refusal the operation ends — failed when no attempt of it can
//! have applied, unknown otherwise (an earlier attempt may have applied before the session
//! expired) — and the client starts a new session under a new id: `c3`, then `c3.2`, `c3.3`...
//! The history and the trace name the client (`c3`) whatever its session.
//!
//! A client is a small state machine with no access to the cluster: its methods return
//! [`Effect`]s (send this, wake me at, an operation started or ended) that the cluster carries
//! out. That keeps it testable on its own and lets the playground drive clients by hand.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::history::{HistoryOp, OpStatus};
use super::network::{client_name, node_index, node_name};
use super::rng::{SimRng, Stream};
use crate::kvsm::SESSION_EXPIRED;
use crate::raft::{Index, Millis};
use crate::types::{ApplyResult, Command, NodeId, ReadPolicy};

/// The id of client `index`'s session `session` (0-based): `c3`, then `c3.2`, `c3.3`...
pub fn session_id(index: usize, session: u32) -> String {
    match session {
        0 => client_name(index),
        s => format!("{}.{}", client_name(index), s + 1),
    }
}

/// The command that registers session `client_id`: seq 1, writing nothing (an empty batch,
/// refused as a bad request, which still starts the session), so applying it twice is harmless.
pub fn register_command(client_id: &str) -> Command {
    Command::new(crate::types::OpType::BatchPut).with_client(client_id, 1)
}

/// An operation a client performs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Read `key` under a read policy.
    Get {
        /// The key.
        key: String,
        /// Stale (the serving node's state machine) or readindex (linearizable).
        policy: ReadPolicy,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` if it holds `expected` ("" also matches a missing key).
    Cas {
        /// The key.
        key: String,
        /// The value compared with.
        expected: String,
        /// The value written on a match.
        new: String,
    },
}

impl ClientOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            ClientOp::Put { key, .. }
            | ClientOp::Get { key, .. }
            | ClientOp::Delete { key }
            | ClientOp::Cas { key, .. } => key,
        }
    }

    /// Whether the operation goes through the Raft log.
    pub fn is_write(&self) -> bool {
        !matches!(self, ClientOp::Get { .. })
    }

    /// The command a write proposes, tagged with the client's identity; `None` for reads.
    pub fn command(&self, client_id: &str, seq: u64) -> Option<Command> {
        let cmd = match self {
            ClientOp::Put { key, value } => Command::put(key.as_str(), value.as_str()),
            ClientOp::Delete { key } => Command::delete(key.as_str()),
            ClientOp::Cas { key, expected, new } => {
                Command::cas(key.as_str(), expected.as_str(), new.as_str())
            }
            ClientOp::Get { .. } => return None,
        };
        Some(cmd.with_client(client_id, seq))
    }

    /// A short text form, e.g. `put k1=c1-3`.
    pub fn summary(&self) -> String {
        match self {
            ClientOp::Put { key, value } => format!("put {key}={value}"),
            ClientOp::Get { key, policy } => format!("get {key} {policy}"),
            ClientOp::Delete { key } => format!("delete {key}"),
            ClientOp::Cas { key, expected, new } => format!("cas {key} {expected:?}->{new:?}"),
        }
    }
}

/// Where and how a read is served, besides its [`ReadPolicy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// The node the first attempt goes to (a follower, say), instead of the node the client
    /// believes leads. Retries go where the answers point, as for any operation.
    pub node: Option<usize>,
    /// Read-your-writes: the serving node answers only once it has applied the client's own
    /// last acknowledged write (its index is the read's `min_index`), waiting a bounded time
    /// for it.
    pub own_writes: bool,
}

/// A client's request to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The client's index.
    pub client: usize,
    /// The operation's sequence number (the same on every retry).
    pub seq: u64,
    /// For a write, its seq in the client's session (writes only, from 1: the state machine
    /// refuses a first write above 1 as from an expired session); 0 for a read.
    pub write_seq: u64,
    /// The client's session (0-based; see [`session_id`]).
    pub session: u32,
    /// This attempt registers the session ([`register_command`]) instead of running `op`.
    pub register: bool,
    /// Which attempt this is (1 for the first send).
    pub attempt: u32,
    /// The operation.
    pub op: ClientOp,
    /// A read-your-writes read: serve it only once the serving node applied this index.
    pub min_index: Option<Index>,
}

impl ClientRequest {
    /// The client id the command carries: the session's.
    pub fn session_id(&self) -> String {
        session_id(self.client, self.session)
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}#{} try{} {}",
            client_name(self.client),
            self.seq,
            self.attempt,
            self.op.summary()
        );
        if self.session > 0 {
            s.push_str(&format!(" session={}", self.session_id()));
        }
        if self.register {
            s.push_str(" register");
        }
        if let Some(m) = self.min_index {
            s.push_str(&format!(" min_index={m}"));
        }
        s
    }
}

/// A node's answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The write was applied with this result.
    Applied {
        /// What the state machine answered.
        result: ApplyResult,
        /// The index of the entry whose applying answered it.
        index: Index,
    },
    /// The read returned this value.
    Value {
        /// The value (`None`: key missing).
        value: Option<String>,
        /// The serving node's applied index when it read it.
        applied: Index,
    },
    /// The node does not lead; it names the leader it knows of.
    NotLeader {
        /// The leader hint.
        leader: Option<NodeId>,
    },
    /// The node accepted the write but its entry was replaced: it was not applied there.
    Lost,
    /// The node could not serve the read (for instance, leadership could not be confirmed).
    Unavailable,
}

impl Answer {
    /// A short text form.
    pub fn summary(&self) -> String {
        match self {
            Answer::Applied { result: r, index } if r.ok => match r.deleted {
                Some(n) => format!("ok deleted={n} at {index}"),
                None => format!("ok at {index}"),
            },
            Answer::Applied { result: r, index } => {
                format!("err {} at {index}", r.err_code.as_deref().unwrap_or("?"))
            }
            Answer::Value {
                value: Some(v),
                applied,
            } => format!("value {v:?} at {applied}"),
            Answer::Value {
                value: None,
                applied,
            } => format!("value none at {applied}"),
            Answer::NotLeader { leader: Some(l) } => format!("not_leader leader={l}"),
            Answer::NotLeader { leader: None } => "not_leader leader=?".to_string(),
            Answer::Lost => "lost".to_string(),
            Answer::Unavailable => "unavailable".to_string(),
        }
    }
}

/// A node's reply to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply {
    /// The client's index.
    pub client: usize,
    /// The operation's sequence number.
    pub seq: u64,
    /// The attempt this answers.
    pub attempt: u32,
    /// The answering node's index.
    pub node: usize,
    /// The answer.
    pub answer: Answer,
}

impl ClientReply {
    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{}#{} try{} {}",
            client_name(self.client),
            self.seq,
            self.attempt,
            self.answer.summary()
        )
    }
}

/// How clients time out and back off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// An attempt without an answer for this long is retried at another node.
    pub request_timeout: Millis,
    /// The least pause before retrying after a refusal.
    pub backoff_min: Millis,
    /// The greatest pause before retrying after a refusal.
    pub backoff_max: Millis,
    /// Give an operation up after this many attempts (0: never). Given-up operations are
    /// recorded as `fail` when no attempt can have taken effect and `unknown` otherwise.
    pub max_attempts: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: 500,
            backoff_min: 10,
            backoff_max: 50,
            max_attempts: 0,
        }
    }
}

/// What a client does on its own: a number of random operations on a few keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// How many operations to run.
    pub ops: u32,
    /// The keys, e.g. `["k1", "k2"]`. Few keys make operations contend.
    pub keys: Vec<String>,
    /// The least pause between an answer and the next operation (at least 1 ms, so a history
    /// never shows one client's operations overlapping).
    pub think_min: Millis,
    /// The greatest such pause.
    pub think_max: Millis,
    /// Relative weights of put, get, delete and cas.
    pub mix: [u64; 4],
    /// How reads are served.
    pub read_policy: ReadPolicy,
    /// The chance that a read's first attempt goes to a random node (a follower, often)
    /// rather than to the node the client believes leads.
    pub follower_reads: f64,
    /// The chance that a stale read is a read-your-writes read (see [`ReadOptions`]).
    pub own_writes_reads: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            ops: 10,
            keys: vec!["k1".into(), "k2".into()],
            think_min: 1,
            think_max: 300,
            mix: [4, 3, 1, 2],
            read_policy: ReadPolicy::ReadIndex,
            follower_reads: 0.3,
            own_writes_reads: 0.5,
        }
    }
}

/// How an answered operation ended.
enum Done {
    /// A write, applied at `index` with `result`.
    Write { result: ApplyResult, index: Index },
    /// A read of `value`, served by `node` at its applied index `applied`.
    Read {
        value: Option<String>,
        node: usize,
        applied: Index,
    },
}

/// Something the cluster must do for a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send a request to a node.
    Send {
        /// The node's index.
        to: usize,
        /// The request.
        req: ClientRequest,
    },
    /// Wake the client at this time (replaces any earlier wake-up).
    WakeAt(Millis),
    /// An operation started.
    Invoked {
        /// Its sequence number.
        seq: u64,
        /// The operation.
        op: ClientOp,
    },
    /// An operation ended.
    Completed {
        /// Its sequence number.
        seq: u64,
        /// Its record for the history.
        record: HistoryOp,
    },
}

/// Where the current operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// Sent; waiting for an answer until the deadline.
    Waiting {
        /// When the attempt times out.
        deadline: Millis,
    },
    /// Refused; will be resent at this time.
    Backoff {
        /// When it is resent.
        until: Millis,
    },
}

/// The operation a client is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOp {
    /// Its sequence number.
    pub seq: u64,
    /// Its seq in the client's session (see [`ClientRequest::write_seq`]).
    pub write_seq: u64,
    /// The operation.
    pub op: ClientOp,
    /// When it started.
    pub invoke: Millis,
    /// The current attempt (1-based).
    pub attempt: u32,
    /// The node the current attempt went (or goes) to.
    pub target: usize,
    /// What it waits for.
    pub state: AttemptState,
    /// Whether some attempt may have taken effect (sent without a refusal coming back).
    pub maybe_applied: bool,
    /// A read-your-writes read: the client's last acknowledged write index when it began.
    pub min_index: Option<Index>,
    /// The node the first attempt goes to, when the operation chose one (taken by the first
    /// send).
    pub pin: Option<usize>,
    /// A write waiting for its session's registration: attempts register until one is
    /// answered, then `op` itself goes.
    #[serde(default)]
    pub registering: bool,
    /// The last attempt that was a registration (0: none).
    #[serde(default)]
    pub last_register_attempt: u32,
}

/// One simulated client.
#[derive(Clone, Debug)]
pub struct Client {
    index: usize,
    id: String,
    nodes: usize,
    cfg: ClientConfig,
    rng: SimRng,
    next_seq: u64,
    /// The last write seq handed out in the client's session (1: the registration).
    last_write_seq: u64,
    /// The client's session (0-based; see [`session_id`]).
    session: u32,
    /// Whether the session's registration was answered.
    registered: bool,
    /// Writes refused as from an expired session since the cluster last asked.
    refused: u32,
    leader_guess: usize,
    /// Where the client goes next without a hint: it steps through every node in turn, and
    /// hints do not move it, so stale hints (removed nodes naming each other) cannot keep an
    /// operation cycling among a few nodes. Invariant: `< nodes`.
    rotation: usize,
    /// Nodes outside the committed configuration, as the cluster told the client (a real
    /// client's endpoint list is updated the same way): the rotation skips them, since a
    /// removed node that never learnt of its removal can serve nothing new. Never all nodes.
    removed: std::collections::BTreeSet<usize>,
    pending: Option<PendingOp>,
    queue: VecDeque<(ClientOp, ReadOptions)>,
    workload: Option<Workload>,
    /// Operations the workload has yet to start.
    remaining: u32,
    /// The last value seen per key, so cas can guess a matching `expected`.
    seen: BTreeMap<String, String>,
    completed: u64,
    /// The highest log index at which one of this client's writes was acknowledged: what a
    /// read-your-writes read waits for.
    last_write_index: Index,
}

impl Client {
    /// Client `index` of a cluster of `nodes` nodes, drawing from its own stream of `seed`.
    pub fn new(index: usize, nodes: usize, cfg: ClientConfig, seed: u64) -> Self {
        let mut rng = SimRng::new(seed, Stream::Client(index as u32));
        let leader_guess = rng.index(nodes);
        Client {
            index,
            id: client_name(index),
            nodes: nodes.max(1),
            cfg,
            rng,
            next_seq: 1,
            last_write_seq: 1,
            session: 0,
            registered: false,
            refused: 0,
            leader_guess,
            rotation: leader_guess,
            removed: Default::default(),
            pending: None,
            queue: VecDeque::new(),
            workload: None,
            remaining: 0,
            seen: BTreeMap::new(),
            completed: 0,
            last_write_index: 0,
        }
    }

    /// Gives the client a workload; returns the wake-up for its first operation.
    pub fn set_workload(&mut self, now: Millis, w: Workload) -> Vec<Effect> {
        self.remaining = w.ops;
        let think = self.rng.range(w.think_min.max(1), w.think_max.max(1));
        self.workload = Some(w);
        if self.pending.is_none() {
            vec![Effect::WakeAt(now + think)]
        } else {
            Vec::new()
        }
    }

    /// Queues an operation; starts it at once if the client is idle.
    pub fn submit(&mut self, now: Millis, op: ClientOp) -> Vec<Effect> {
        self.submit_with(now, op, ReadOptions::default())
    }

    /// Queues a read of `key` under `policy`, served as `opts` says; starts it at once if the
    /// client is idle.
    pub fn submit_read(
        &mut self,
        now: Millis,
        key: &str,
        policy: ReadPolicy,
        opts: ReadOptions,
    ) -> Vec<Effect> {
        let op = ClientOp::Get {
            key: key.to_string(),
            policy,
        };
        self.submit_with(now, op, opts)
    }

    fn submit_with(&mut self, now: Millis, op: ClientOp, opts: ReadOptions) -> Vec<Effect> {
        self.queue.push_back((op, opts));
        if self.pending.is_none() {
            self.start_next(now)
        } else {
            Vec::new()
        }
    }

    /// The client's id, e.g. `c1`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client id of its current session, e.g. `c1` or `c1.2`.
    pub fn session_id(&self) -> String {
        session_id(self.index, self.session)
    }

    /// How many writes were refused as from an expired session since the last call.
    pub fn take_refused(&mut self) -> u32 {
        std::mem::take(&mut self.refused)
    }

    /// The node the client believes leads.
    pub fn leader_guess(&self) -> usize {
        self.leader_guess
    }

    /// Points the client at a node (the playground's "send to n3").
    pub fn set_leader_guess(&mut self, node: usize) {
        if node < self.nodes {
            self.leader_guess = node;
        }
    }

    /// The cluster has `nodes` nodes now (nodes were added): retries cycle through them all.
    pub fn set_node_count(&mut self, nodes: usize) {
        self.nodes = nodes.max(1);
        self.rotation %= self.nodes;
    }

    /// The committed configuration does not hold the nodes in `removed` (removed, or added
    /// and not yet taken in): retries skip them. Ignored if it would leave none.
    pub fn set_removed(&mut self, removed: std::collections::BTreeSet<usize>) {
        if (0..self.nodes).any(|n| !removed.contains(&n)) {
            self.removed = removed;
        }
    }

    /// The next node in turn, skipping removed ones.
    fn rotate(&mut self) -> usize {
        for _ in 0..self.nodes {
            self.rotation = (self.rotation + 1) % self.nodes;
            if !self.removed.contains(&self.rotation) {
                break;
            }
        }
        debug_assert!(self.rotation < self.nodes);
        self.rotation
    }

    /// The highest log index at which one of this client's writes was acknowledged.
    pub fn last_write_index(&self) -> Index {
        self.last_write_index
    }

    /// The operation in progress.
    pub fn pending(&self) -> Option<&PendingOp> {
        self.pending.as_ref()
    }

    /// How many operations completed (with an answer or given up).
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Whether the client has nothing left to do.
    pub fn is_done(&self) -> bool {
        self.pending.is_none() && self.queue.is_empty() && self.remaining == 0
    }

    /// The timer fired: start the next operation, resend after a backoff, or time out.
    pub fn on_wake(&mut self, now: Millis) -> Vec<Effect> {
        let Some(p) = self.pending.as_mut() else {
            return self.start_next(now);
        };
        match p.state {
            AttemptState::Waiting { deadline } if now >= deadline => {
                // No answer: the request or its reply may be lost, or the node is down or
                // partitioned. The write may have been applied; try elsewhere.
                if p.op.is_write() && !p.registering {
                    p.maybe_applied = true;
                }
                self.leader_guess = self.rotate();
                self.retry(now)
            }
            AttemptState::Backoff { until } if now >= until => self.send_attempt(now),
            // A stale wake-up: re-arm for the real one.
            AttemptState::Waiting { deadline } => vec![Effect::WakeAt(deadline)],
            AttemptState::Backoff { until } => vec![Effect::WakeAt(until)],
        }
    }

    /// A reply arrived.
    pub fn on_reply(&mut self, now: Millis, reply: &ClientReply) -> Vec<Effect> {
        let Some(p) = self.pending.as_mut() else {
            return Vec::new();
        };
        if reply.seq != p.seq {
            return Vec::new();
        }
        let current = reply.attempt == p.attempt && matches!(p.state, AttemptState::Waiting { .. });
        match &reply.answer {
            // An answer to any attempt of this operation is its answer: retries share one seq,
            // so the dedupe table gives every copy the same result.
            // The registration's answer: now the write itself goes. A late answer to an
            // earlier registration attempt is ignored.
            Answer::Applied { .. } if reply.attempt <= p.last_register_attempt => {
                if !p.registering {
                    return Vec::new();
                }
                p.registering = false;
                self.registered = true;
                self.send_attempt(now)
            }
            // The session expired: this attempt did not apply. If no other attempt can have,
            // the write surely did not happen; otherwise its outcome is unknown.
            Answer::Applied { result, .. }
                if result.err_code.as_deref() == Some(SESSION_EXPIRED) =>
            {
                self.session_expired(now)
            }
            Answer::Applied { result, index } => {
                let done = Done::Write {
                    result: result.clone(),
                    index: *index,
                };
                self.finish(now, done)
            }
            Answer::Value { value, applied } => {
                let done = Done::Read {
                    value: value.clone(),
                    node: reply.node,
                    applied: *applied,
                };
                self.finish(now, done)
            }
            // A refusal only matters for the attempt we are waiting on.
            _ if !current => Vec::new(),
            Answer::NotLeader { leader } => {
                let hinted = leader
                    .as_ref()
                    .and_then(node_index)
                    .filter(|l| *l < self.nodes);
                match hinted {
                    Some(l) if l != reply.node => {
                        self.leader_guess = l;
                        // Follow a fresh hint at once.
                        self.send_retry_now(now)
                    }
                    _ => {
                        self.leader_guess = self.rotate();
                        self.retry(now)
                    }
                }
            }
            Answer::Lost => {
                // The entry was replaced, but a duplicate copy of the request may still commit.
                if !p.registering {
                    p.maybe_applied = true;
                }
                self.leader_guess = self.rotate();
                self.retry(now)
            }
            Answer::Unavailable => {
                self.leader_guess = self.rotate();
                self.retry(now)
            }
        }
    }

    /// Ends the run for this client: a pending operation is recorded without an answer.
    pub fn abandon(&mut self, _now: Millis) -> Vec<Effect> {
        self.remaining = 0;
        self.queue.clear();
        match self.pending.take() {
            Some(p) => {
                self.completed += 1;
                let status = if p.maybe_applied {
                    OpStatus::Unknown
                } else {
                    OpStatus::Fail
                };
                vec![Effect::Completed {
                    seq: p.seq,
                    record: HistoryOp::from_op(&self.id, &p.op, p.invoke, None, status, None, None),
                }]
            }
            None => Vec::new(),
        }
    }

    fn start_next(&mut self, now: Millis) -> Vec<Effect> {
        let (op, opts) = match self.queue.pop_front() {
            Some(op) => op,
            None if self.remaining > 0 => {
                self.remaining -= 1;
                self.draw_op()
            }
            None => return Vec::new(),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let read = !op.is_write();
        let write_seq = if read {
            0
        } else {
            self.last_write_seq += 1;
            self.last_write_seq
        };
        let pin = opts.node.filter(|n| read && *n < self.nodes);
        self.pending = Some(PendingOp {
            seq,
            write_seq,
            op: op.clone(),
            invoke: now,
            attempt: 0,
            target: pin.unwrap_or(self.leader_guess),
            state: AttemptState::Backoff { until: now },
            maybe_applied: false,
            min_index: (read && opts.own_writes).then_some(self.last_write_index),
            pin,
            registering: !read && !self.registered,
            last_register_attempt: 0,
        });
        let mut fx = vec![Effect::Invoked { seq, op }];
        fx.extend(self.send_attempt(now));
        fx
    }

    fn draw_op(&mut self) -> (ClientOp, ReadOptions) {
        let Some(w) = self.workload.as_ref() else {
            // Unreachable: `remaining` is only set with a workload. A harmless read keeps going.
            let op = ClientOp::Get {
                key: "k".into(),
                policy: ReadPolicy::Stale,
            };
            return (op, ReadOptions::default());
        };
        let key = w
            .keys
            .get(self.rng.index(w.keys.len()))
            .cloned()
            .unwrap_or_else(|| "k".to_string());
        let kind = self.rng.weighted(&w.mix);
        // Unique values let a history checker tell every write apart.
        let value = format!("{}-{}", self.id, self.next_seq);
        let op = match kind {
            1 => {
                let node = self
                    .rng
                    .chance(w.follower_reads)
                    .then(|| self.rng.index(self.nodes));
                let own_writes =
                    w.read_policy == ReadPolicy::Stale && self.rng.chance(w.own_writes_reads);
                let op = ClientOp::Get {
                    key,
                    policy: w.read_policy,
                };
                return (op, ReadOptions { node, own_writes });
            }
            2 => ClientOp::Delete { key },
            3 => {
                // Mostly the last value seen (likely to match), sometimes "" (matches a missing
                // key), so both outcomes occur.
                let expected = if self.rng.chance(0.7) {
                    self.seen.get(&key).cloned().unwrap_or_default()
                } else {
                    String::new()
                };
                ClientOp::Cas {
                    key,
                    expected,
                    new: value,
                }
            }
            _ => ClientOp::Put { key, value },
        };
        (op, ReadOptions::default())
    }

    fn retry(&mut self, now: Millis) -> Vec<Effect> {
        let Some(p) = self.pending.as_mut() else {
            return Vec::new();
        };
        if self.cfg.max_attempts > 0 && p.attempt >= self.cfg.max_attempts {
            return self.give_up(now);
        }
        let pause = self.rng.range(self.cfg.backoff_min, self.cfg.backoff_max);
        let until = now + pause;
        p.state = AttemptState::Backoff { until };
        vec![Effect::WakeAt(until)]
    }

    fn send_retry_now(&mut self, now: Millis) -> Vec<Effect> {
        match self.pending.as_ref() {
            Some(p) if self.cfg.max_attempts > 0 && p.attempt >= self.cfg.max_attempts => {
                self.give_up(now)
            }
            _ => self.send_attempt(now),
        }
    }

    fn give_up(&mut self, now: Millis) -> Vec<Effect> {
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        self.completed += 1;
        let status = if p.maybe_applied {
            OpStatus::Unknown
        } else {
            OpStatus::Fail
        };
        let mut fx = vec![Effect::Completed {
            seq: p.seq,
            record: HistoryOp::from_op(&self.id, &p.op, p.invoke, None, status, None, None),
        }];
        fx.extend(self.after_op(now));
        fx
    }

    fn send_attempt(&mut self, now: Millis) -> Vec<Effect> {
        let Some(p) = self.pending.as_mut() else {
            return Vec::new();
        };
        p.attempt += 1;
        if p.registering {
            p.last_register_attempt = p.attempt;
        }
        p.target = p.pin.take().unwrap_or(self.leader_guess);
        let deadline = now + self.cfg.request_timeout;
        p.state = AttemptState::Waiting { deadline };
        vec![
            Effect::Send {
                to: p.target,
                req: ClientRequest {
                    client: self.index,
                    seq: p.seq,
                    write_seq: if p.registering { 1 } else { p.write_seq },
                    session: self.session,
                    register: p.registering,
                    attempt: p.attempt,
                    op: p.op.clone(),
                    min_index: p.min_index,
                },
            },
            Effect::WakeAt(deadline),
        ]
    }

    /// The pending write was refused as from an expired session: it ends (failed, or unknown
    /// if an earlier attempt may have applied) and the client starts a new session.
    fn session_expired(&mut self, now: Millis) -> Vec<Effect> {
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        self.completed += 1;
        self.refused += 1;
        self.session += 1;
        self.registered = false;
        self.last_write_seq = 1;
        let status = if p.maybe_applied {
            OpStatus::Unknown
        } else {
            OpStatus::Fail
        };
        let mut fx = vec![Effect::Completed {
            seq: p.seq,
            record: HistoryOp::from_op(&self.id, &p.op, p.invoke, None, status, None, None),
        }];
        fx.extend(self.after_op(now));
        fx
    }

    fn finish(&mut self, now: Millis, done: Done) -> Vec<Effect> {
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        self.completed += 1;
        // A stale read proves nothing about who leads.
        let stale = matches!(
            p.op,
            ClientOp::Get {
                policy: ReadPolicy::Stale,
                ..
            }
        );
        if !stale {
            self.leader_guess = p.target;
            self.rotation = p.target;
        }
        let (result, read) = match &done {
            Done::Write { result, .. } => (Some(result), None),
            Done::Read { value, .. } => (None, Some(value.clone())),
        };
        let mut rec = HistoryOp::from_op(
            &self.id,
            &p.op,
            p.invoke,
            Some(now),
            OpStatus::Ok,
            result,
            read,
        );
        match &done {
            Done::Write { index, .. } => {
                rec.index = Some(*index);
                self.last_write_index = self.last_write_index.max(*index);
            }
            Done::Read { node, applied, .. } => {
                rec.node = Some(node_name(*node));
                rec.applied = Some(*applied);
                rec.min_index = p.min_index;
            }
        }
        // Remember what this client saw, for cas.
        match (&p.op, &rec.value) {
            (ClientOp::Put { key, value }, _) => {
                self.seen.insert(key.clone(), value.clone());
            }
            (ClientOp::Get { key, .. }, Some(Some(v))) => {
                self.seen.insert(key.clone(), v.clone());
            }
            (ClientOp::Get { key, .. }, _) | (ClientOp::Delete { key }, _) => {
                self.seen.remove(key);
            }
            (ClientOp::Cas { key, new, .. }, _) if result.is_some_and(|r| r.ok) => {
                self.seen.insert(key.clone(), new.clone());
            }
            (ClientOp::Cas { .. }, _) => {}
        }
        let mut fx = vec![Effect::Completed {
            seq: p.seq,
            record: rec,
        }];
        fx.extend(self.after_op(now));
        fx
    }

    fn after_op(&mut self, now: Millis) -> Vec<Effect> {
        if !self.queue.is_empty() {
            return self.start_next(now);
        }
        match &self.workload {
            Some(w) if self.remaining > 0 => {
                let think = self.rng.range(w.think_min.max(1), w.think_max.max(1));
                vec![Effect::WakeAt(now + think)]
            }
            _ => Vec::new(),
        }
    }
}
