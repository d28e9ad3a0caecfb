//! The values that cross into JavaScript: constructor options in, state out. Their field names
//! are the contract (see the crate docs and `www/types.js`); keep the three in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `new Playground(opts)`: every field optional.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Cluster size, 3..=9.
    pub nodes: u32,
    /// The seed: a number (below 2^53) or any text (see [`SeedValue::to_u64`]).
    pub seed: Option<SeedValue>,
    /// Probability that a message is dropped, 0..=1.
    pub loss: f64,
    /// Smallest one-way latency, ms.
    pub latency_min: f64,
    /// Largest one-way latency, ms.
    pub latency_max: f64,
    /// Smallest election timeout, ms.
    pub election_timeout_min: f64,
    /// Largest election timeout, ms.
    pub election_timeout_max: f64,
    /// Leader heartbeat interval, ms.
    pub heartbeat: f64,
    /// Snapshot every this many applied entries; 0 never.
    pub snapshot_threshold: f64,
    /// Trace lines `state()` keeps.
    pub trace_len: u32,
    /// Log entries per node `state()` carries.
    pub log_len: u32,
    /// Message lines (deliveries and drops) `state()` keeps in `message_trace`, for the Events
    /// panel's message filter; 0: none. They share the trace's numbering when kept.
    pub message_lines: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 5,
            seed: None,
            loss: 0.0,
            latency_min: 10.0,
            latency_max: 30.0,
            election_timeout_min: 150.0,
            election_timeout_max: 300.0,
            heartbeat: 50.0,
            snapshot_threshold: 0.0,
            trace_len: 200,
            log_len: 60,
            message_lines: 0,
        }
    }
}

/// A seed as JavaScript may give it.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SeedValue {
    /// A number; must be a non-negative integer below 2^53.
    Number(f64),
    /// Any text: a decimal u64 is that seed, anything else is hashed (see [`text_seed`]).
    Text(String),
}

/// The seed a text names: a decimal u64 (surrounding blanks ignored) is itself; any other text
/// (`hello world`, `-5`, `0x10`, `18446744073709551616`, the empty text) is the 64-bit FNV-1a
/// hash of its UTF-8 bytes, blanks trimmed. FNV-1a is fixed by its definition (offset basis
/// 0xcbf29ce484222325, prime 0x100000001b3), so a text seed replays on every build.
pub fn text_seed(text: &str) -> u64 {
    let t = text.trim();
    t.parse::<u64>().unwrap_or_else(|_| fnv1a64(t.as_bytes()))
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl SeedValue {
    /// The seed as a u64; a number that is not a whole one below 2^53 is refused with a
    /// readable complaint (a text never is).
    pub fn to_u64(&self) -> Result<u64, String> {
        match self {
            SeedValue::Number(x)
                if x.fract() == 0.0 && *x >= 0.0 && *x < 9_007_199_254_740_992.0 =>
            {
                Ok(*x as u64)
            }
            SeedValue::Number(x) => Err(format!(
                "seed must be a non-negative integer below 2^53 (or a decimal string), got {x}"
            )),
            SeedValue::Text(s) => Ok(text_seed(s)),
        }
    }
}

/// A whole number of milliseconds (or a count) from JavaScript, checked.
pub fn whole(what: &str, x: f64) -> Result<u64, String> {
    if (0.0..9_007_199_254_740_992.0).contains(&x) {
        Ok(x.floor() as u64)
    } else {
        Err(format!("{what} must be a finite number >= 0, got {x}"))
    }
}

/// What `state()` returns.
#[derive(Clone, Debug, Serialize)]
pub struct State {
    /// Simulated time, ms.
    pub now: u64,
    /// Events processed so far.
    pub events: u64,
    /// The seed, as a decimal string.
    pub seed: String,
    /// Nodes in id order.
    pub nodes: Vec<NodeState>,
    /// Messages in flight.
    pub messages: Vec<MessageState>,
    /// Messages dropped in the last [`DROP_SHOW_MS`] of simulated time, oldest first: most never
    /// flew (lost, or sent over a cut link), so without these the page would show nothing.
    pub drops: Vec<DropState>,
    /// Every ordered pair of nodes.
    pub links: Vec<LinkState>,
    /// Every client operation, oldest first.
    pub ops: Vec<OpState>,
    /// The last trace lines, oldest first.
    pub trace: Vec<TraceLine>,
    /// The last `message_lines` message deliveries and drops, oldest first, numbered in the
    /// same sequence as `trace` (so the two merge in order).
    pub message_trace: Vec<TraceLine>,
    /// The last event the simulator ran, one line (a delivery, a timer, a role change...):
    /// what a single step did, even when it left no trace line.
    pub last_event: Option<String>,
    /// The linearizability verdict.
    pub history: HistoryVerdict,
    /// Invariant violations seen.
    pub violations: Vec<String>,
    /// The network's settings.
    pub net: NetState,
    /// The configuration the page shows (see [`MembershipState`]).
    pub membership: MembershipState,
    /// The most nodes a run may hold (the ring draws at most this many): `add_node` refuses
    /// past it.
    pub max_nodes: u32,
}

/// The cluster's configuration as the page shows it: the leader's, or without a leader the
/// one of the running node that applied the most (a configuration takes effect when applied,
/// so it knows the latest), or with nothing running, of the node last seen so.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MembershipState {
    /// Who votes (the incoming half while joint).
    pub voters: Vec<String>,
    /// The outgoing voters of a joint configuration; empty otherwise.
    pub outgoing: Vec<String>,
    /// Members that receive the log but do not vote.
    pub learners: Vec<String>,
    /// Whether a joint configuration is in force (`outgoing` not empty).
    pub joint: bool,
    /// The node whose view this is (none before any node ran).
    pub from: Option<String>,
}

/// One node. Its Raft fields come from core's `Status` but are listed here rather than
/// flattened from it: the page's contract (`www/types.js`, `ring.js`) names the election timer
/// `timer_start`/`timer_deadline` where `Status` says `election_timer_start`/`election_deadline`,
/// and omits `last_log_term`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeState {
    /// `n1`..`nN`.
    pub id: String,
    /// False after kill, until restart.
    pub alive: bool,
    /// follower | pre_candidate | candidate | leader (the last role while dead).
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Vote in `term`.
    pub voted_for: Option<String>,
    /// The leader it knows of.
    pub leader_id: Option<String>,
    /// Commit index.
    pub commit_index: u64,
    /// Last applied index.
    pub last_applied: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Last index covered by its snapshot.
    pub snapshot_index: u64,
    /// When its election timer started.
    pub timer_start: u64,
    /// When its election timer fires.
    pub timer_deadline: u64,
    /// The last entries of its log.
    pub log: Vec<LogEntryState>,
    /// Its applied key/value state.
    pub kv: BTreeMap<String, String>,
    /// Its place in the configuration the page shows ([`State::membership`]): `voter` (in
    /// both halves while joint), `incoming` / `outgoing` (in one half of a joint
    /// configuration), `learner`, `joining` (started, never a member yet) or `removed` (was a
    /// member, no longer is; it keeps running, ignored).
    pub member: String,
    /// Its own view of the configuration, one line (`""` while it has none).
    pub config: String,
    /// The voter it is handing its leadership to (a leader with a transfer pending).
    pub transfer_to: Option<String>,
    /// While it leads with a read lease: until when, on its own clock.
    pub lease_until: Option<u64>,
    /// The time its own clock shows: `timer_start`, `timer_deadline` and `lease_until` are on
    /// it.
    pub clock: u64,
    /// How fast its clock runs against simulated time, in parts per million (+: fast).
    pub drift_ppm: i32,
    /// While it leads: what it knows of each member (itself included).
    pub progress: Vec<PeerProgress>,
    /// The vote replies it received since it last became (pre-)candidate, in arrival order
    /// (empty once it is neither).
    pub votes: Vec<VoteSeen>,
}

/// What a leader knows of one member's log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerProgress {
    /// The member.
    pub id: String,
    /// Whether it votes.
    pub voter: bool,
    /// The next index the leader sends it.
    pub next_index: u64,
    /// The highest index known stored there.
    pub match_index: u64,
    /// probe, replicate or snapshot.
    pub state: String,
}

/// A vote reply a (pre-)candidate received.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoteSeen {
    /// The voter.
    pub from: String,
    /// Whether it granted the vote.
    pub granted: bool,
}

/// One log entry.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntryState {
    /// Its index.
    pub index: u64,
    /// Its term.
    pub term: u64,
    /// One line: `put x=1`, `no-op`, ...
    pub summary: String,
}

/// A message in flight.
#[derive(Clone, Debug, Serialize)]
pub struct MessageState {
    /// Unique per run.
    pub id: u64,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// `Message::kind()`.
    pub kind: String,
    /// When it left.
    pub sent_at: u64,
    /// When it arrives (or is dropped).
    pub deliver_at: u64,
    /// Whether the network will drop it.
    pub dropped: bool,
    /// One line describing it.
    pub summary: String,
    /// Every field it carries, as `[name, value]` pairs in a fixed order per kind (`term`,
    /// `prev_log_index`, `entries`, `leader_commit`, `granted`, `success`, `match_index`, ...).
    pub fields: Vec<[String; 2]>,
    /// A vote reply: whether granted; an append reply: whether it succeeded; otherwise none.
    pub granted: Option<bool>,
    /// An AppendEntries carrying entries: the first and last index it carries.
    pub entries: Option<[u64; 2]>,
}

/// How long (simulated ms) a dropped message stays in [`State::drops`].
pub const DROP_SHOW_MS: u64 = 150;

/// A message the network dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DropState {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// `Message::kind()`.
    pub kind: String,
    /// When it was dropped.
    pub at: u64,
    /// `lost`, `partitioned`, `node_down`, `killed` or `by_hand` (the page's "drop it").
    pub reason: String,
    /// Dropped as it was sent (it never flew), rather than on the way or on arrival.
    pub at_send: bool,
}

/// One direction of a link.
#[derive(Clone, Debug, Serialize)]
pub struct LinkState {
    /// Sender side.
    pub from: String,
    /// Receiver side.
    pub to: String,
    /// Whether this direction is cut.
    pub cut: bool,
    /// Messages delivered over it.
    pub delivered: u64,
    /// Messages dropped on it.
    pub dropped: u64,
    /// Its loss probability.
    pub loss: f64,
    /// Its smallest latency, ms.
    pub latency_min: u64,
    /// Its largest latency, ms.
    pub latency_max: u64,
}

/// A client operation.
#[derive(Clone, Debug, Serialize)]
pub struct OpState {
    /// The op id `put`/`get`/`delete`/`cas` returned.
    pub id: u64,
    /// put | get | delete | cas.
    pub op: String,
    /// The key.
    pub key: String,
    /// The value (put, cas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The expected value (cas).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// stale | readindex | lease (get).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The node it was sent to first, when the console chose one (otherwise the leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The node serving it: for an answered get the node that served it, otherwise the one
    /// the client sent to last.
    pub node: Option<String>,
    /// An answered write: the log index it committed at. An answered get: the serving node's
    /// applied index when it read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// pending | ok | failed.
    pub status: String,
    /// The reply, one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// When the client issued it.
    pub invoked_at: u64,
    /// When the reply arrived.
    pub completed_at: Option<u64>,
}

/// One trace line.
#[derive(Clone, Debug, Serialize)]
pub struct TraceLine {
    /// Its number in the run (0 first): the page appends the lines past the last it showed.
    pub seq: u64,
    /// When.
    pub at: u64,
    /// Which node (none for network and client events).
    pub node: Option<String>,
    /// What happened.
    pub text: String,
    /// Its kind, for the Events filter: `state` (what a node did), `client` (an op began or
    /// ended) or `message` (a delivery or a drop).
    pub kind: &'static str,
}

/// The linearizability verdict.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryVerdict {
    /// None until checked, or when the checker gave up.
    pub linearizable: Option<bool>,
    /// Completed ops in the checked history.
    pub ops: u64,
    /// Answered stale reads, left out of the linearizability check (stale by design); each is
    /// still checked to return a value some write produced.
    pub stale_unchecked: u64,
    /// Stale reads that returned a value no write produced (0 unless something broke).
    pub stale_invented: u64,
    /// Explanation.
    pub detail: String,
}

/// The network's settings.
#[derive(Clone, Debug, Serialize)]
pub struct NetState {
    /// Drop probability.
    pub loss: f64,
    /// Duplication probability.
    pub duplicate: f64,
    /// Smallest latency, ms.
    pub latency_min: u64,
    /// Largest latency, ms.
    pub latency_max: u64,
    /// The message filters set by hand, in the order set.
    pub filters: Vec<FilterState>,
}

/// A message filter: every node-to-node message of `kind` from `from` to `to` is dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilterState {
    /// The message kind, e.g. `request_vote`.
    pub kind: String,
    /// The sender, or `None` for any node.
    pub from: Option<String>,
    /// The receiver, or `None` for any node.
    pub to: Option<String>,
}
