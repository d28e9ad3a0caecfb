//! The playground's simulation session in plain Rust: a [`Cluster`] plus the bookkeeping the page
//! needs (client operations by id, per-link counters, a short readable trace). Errors are
//! readable strings; `lib.rs` turns them into `JsError`s. Native tests and the events/s example
//! drive this type directly.

use std::collections::{BTreeMap, VecDeque};

use raftkv_core::ReadPolicy;
use raftkv_core::raft::{Config, Membership, Role, Status};
use raftkv_core::sim::clock::MAX_DRIFT_PPM;
use raftkv_core::sim::network::{Endpoint, MsgFilter, RAFT_KINDS, node_name};
use raftkv_core::sim::{
    ClientOp, Cluster, Fault, LinkConfig, ReadOptions, SimConfig, TraceKind, TraceMode,
};

use crate::contract::{
    DROP_SHOW_MS, DropState, HistoryVerdict, Options, TraceLine, VoteSeen, whole,
};

/// The most drops [`Session::drops`] keeps, whatever the loss rate: enough to draw, bounded.
const MAX_DROPS: usize = 200;

/// The longest clock jump [`Session::jump_clock`] takes, ms.
pub const MAX_JUMP_MS: u64 = 60_000;

/// How long after the original a message duplicated by hand arrives, ms.
pub const DUPLICATE_GAP_MS: u64 = 5;

/// The longest delay [`Session::delay_message`] takes, ms.
pub const MAX_DELAY_MS: u64 = 60_000;

/// The error for a message that is not (or no longer) in flight.
fn not_in_flight(id: f64) -> String {
    format!("message #{id} is not in flight (delivered or dropped already)")
}

/// One operation the page issued. Each runs on its own simulated client, so operations overlap
/// like requests from independent users; the op id is the client's number (`c<id>`).
#[derive(Clone, Debug)]
pub struct OpRecord {
    /// The op id (1-based).
    pub id: u64,
    /// The client running it.
    pub client: usize,
    /// What it does.
    pub op: ClientOp,
    /// The node it was sent to first, when the page chose one (otherwise the leader).
    pub target: Option<usize>,
    /// When it was issued.
    pub invoked_at: u64,
    /// Its entry in the cluster's history, once it ended.
    pub done: Option<usize>,
}

/// Deliveries and drops over one directed link.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkCount {
    /// Delivered messages.
    pub delivered: u64,
    /// Dropped messages.
    pub dropped: u64,
}

/// A running playground simulation.
pub struct Session {
    /// The simulated cluster.
    pub cluster: Cluster,
    /// The options it was built with.
    pub opts: Options,
    /// The seed.
    pub seed: u64,
    /// Every operation issued, by id - 1.
    pub ops: Vec<OpRecord>,
    /// Per directed link, row-major (`from * n + to`, `n` the node count: see [`Session::link`]).
    pub links: Vec<LinkCount>,
    /// The last `opts.trace_len` readable trace lines.
    pub trace: VecDeque<TraceLine>,
    /// The last `opts.message_lines` deliveries and drops, as trace lines.
    pub message_trace: VecDeque<TraceLine>,
    /// Each node's status when last seen running (what a dead node shows).
    pub last_status: Vec<Option<Status>>,
    /// Whether each node was ever seen a member of the configuration the page shows: one that
    /// no longer is was removed, one that never was is still joining.
    pub ever_member: Vec<bool>,
    /// The last linearizability verdict and the history length it covered.
    pub verdict: Option<(usize, HistoryVerdict)>,
    /// Recent node-to-node drops, oldest first (see [`DROP_SHOW_MS`]).
    pub drops: VecDeque<DropState>,
    /// Node-to-node messages sent and not yet delivered or dropped, by id, with their kind and
    /// summary: a drop whose id is not here never flew.
    flying: BTreeMap<u64, (String, String)>,
    history_cursor: usize,
    /// Trace lines made so far (the next line's `seq`).
    trace_seq: u64,
    /// Per node: the vote replies received since it last became (pre-)candidate.
    pub votes: Vec<Vec<VoteSeen>>,
    /// The last event run, one line (see `State::last_event`).
    pub last_event: Option<String>,
}

impl Session {
    /// Validates `opts` and builds the cluster.
    pub fn new(opts: Options) -> Result<Session, String> {
        if !(3..=9).contains(&opts.nodes) {
            return Err(format!("nodes must be 3..=9, got {}", opts.nodes));
        }
        let seed = match &opts.seed {
            Some(s) => s.to_u64()?,
            None => 1,
        };
        check_loss(opts.loss)?;
        let (lat_min, lat_max) = latency(opts.latency_min, opts.latency_max)?;
        let et_min = whole("election_timeout_min", opts.election_timeout_min)?;
        let et_max = whole("election_timeout_max", opts.election_timeout_max)?;
        let hb = whole("heartbeat", opts.heartbeat)?;
        // Core's timing rule, checked here to name the options it comes from.
        Config::validate_timing(hb, et_min, et_max).map_err(|e| {
            format!(
                "heartbeat / election_timeout_min / election_timeout_max: {}",
                e.0
            )
        })?;
        let snap = whole("snapshot_threshold", opts.snapshot_threshold)?;
        if opts.trace_len > 10_000 || opts.log_len > 10_000 || opts.message_lines > 10_000 {
            return Err("trace_len, log_len and message_lines must be at most 10000".to_string());
        }
        let n = opts.nodes as usize;
        let mut cfg = SimConfig::new(seed, n);
        cfg.raft.election_timeout_min = et_min;
        cfg.raft.election_timeout_max = et_max;
        cfg.raft.heartbeat_interval = hb;
        cfg.raft.snapshot_threshold = snap;
        cfg.node_link = LinkConfig {
            latency_min: lat_min,
            latency_max: lat_max,
            loss: opts.loss,
            duplicate: 0.0,
        };
        cfg.trace = TraceMode::Full;
        let cluster = Cluster::new(cfg).map_err(|v| v.to_string())?;
        let mut s = Session {
            cluster,
            seed,
            ops: Vec::new(),
            links: vec![LinkCount::default(); n * n],
            trace: VecDeque::new(),
            message_trace: VecDeque::new(),
            last_status: vec![None; n],
            ever_member: vec![true; n],
            verdict: None,
            drops: VecDeque::new(),
            flying: BTreeMap::new(),
            history_cursor: 0,
            trace_seq: 0,
            votes: vec![Vec::new(); n],
            last_event: None,
            opts,
        };
        s.sync();
        Ok(s)
    }

    /// Simulated time, ms.
    pub fn now(&self) -> u64 {
        self.cluster.now()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.cluster.stats().events
    }

    /// The node ids, `n1`..`nN`.
    pub fn node_ids(&self) -> Vec<String> {
        (0..self.cluster.node_count()).map(node_name).collect()
    }

    /// Runs the next event; false when nothing is scheduled (or the run stopped on a violation).
    pub fn step(&mut self) -> bool {
        let r = self.cluster.step().unwrap_or(false);
        self.sync();
        r
    }

    /// Runs every event due within `ms`, then sets the clock to now + `ms`; returns events run.
    /// After an invariant violation the run is stopped and this does nothing.
    pub fn advance(&mut self, ms: f64) -> Result<u64, String> {
        let ms = whole("advance: ms", ms)?;
        let before = self.events();
        let target = within_horizon(self.now().saturating_add(ms))?;
        // A violation is kept by the cluster and reported by state(); not an error of the call.
        let _ = self.cluster.run_until(target);
        self.sync();
        Ok(self.events() - before)
    }

    /// Replay helper: runs events until `events` have run in total or none is due at or before
    /// `t`, then moves the clock to `t` (never backwards) without running anything more.
    pub fn run_to(&mut self, t: f64, events: f64) -> Result<(), String> {
        let t = within_horizon(whole("run_to: t", t)?)?;
        let events = whole("run_to: events", events)?;
        while self.events() < events && self.cluster.step_until(t).unwrap_or(false) {}
        // Not run_until(t): a dropped action still queued before `t` is not an event, and
        // running past it could take events the live run had not run when the action came.
        if self.cluster.failure().is_none() {
            self.cluster.advance_clock_to(t);
        }
        self.sync();
        Ok(())
    }

    /// Rewind helper: runs events until `events` have run in total (or nothing is scheduled),
    /// leaving the clock at the last one's time, as single steps would. A step back rebuilds
    /// the run and comes here: the clock a step left is the time of that event, which the page
    /// does not know beforehand, so `run_to` (which needs a time) cannot land there.
    pub fn run_events(&mut self, events: f64) -> Result<(), String> {
        let events = whole("run_events: events", events)?;
        while self.events() < events && self.cluster.step().unwrap_or(false) {}
        self.sync();
        Ok(())
    }

    /// The counters of the directed link `from -> to`.
    pub fn link(&self, from: usize, to: usize) -> LinkCount {
        let n = self.cluster.node_count();
        self.links.get(from * n + to).copied().unwrap_or_default()
    }

    /// The index of node `id` (`n1`..`nN`).
    pub fn node(&self, id: &str) -> Result<usize, String> {
        let n = self.cluster.node_count();
        id.strip_prefix('n')
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|k| (1..=n).contains(k) && format!("n{k}") == id)
            .map(|k| k - 1)
            .ok_or_else(|| format!("unknown node {id:?}: this cluster has n1..n{n}"))
    }

    fn pair(&self, a: &str, b: &str) -> Result<(usize, usize), String> {
        let (x, y) = (self.node(a)?, self.node(b)?);
        if x == y {
            return Err(format!("a link joins two different nodes, got {a} and {b}"));
        }
        Ok((x, y))
    }

    fn fault(&mut self, f: Fault) -> Result<(), String> {
        // A violation stops the run; state() reports it.
        let _ = self.cluster.apply_fault(&f);
        self.sync();
        Ok(())
    }

    /// Crashes a node (nothing if it is down already).
    pub fn kill(&mut self, id: &str) -> Result<(), String> {
        let i = self.node(id)?;
        if !self.cluster.is_up(i) {
            return Ok(());
        }
        self.fault(Fault::Kill { node: i })
    }

    /// Starts a crashed node from its stores (nothing if it runs).
    pub fn restart(&mut self, id: &str) -> Result<(), String> {
        let i = self.node(id)?;
        if self.cluster.is_up(i) {
            return Ok(());
        }
        self.fault(Fault::Restart { node: i })
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&mut self, from: &str, to: &str) -> Result<(), String> {
        let (a, b) = self.pair(from, to)?;
        self.fault(Fault::Cut { from: a, to: b })
    }

    /// Restores the directed link `from -> to`.
    pub fn heal(&mut self, from: &str, to: &str) -> Result<(), String> {
        let (a, b) = self.pair(from, to)?;
        self.fault(Fault::Heal { from: a, to: b })
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&mut self, a: &str, b: &str) -> Result<(), String> {
        self.cut(a, b)?;
        self.cut(b, a)
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal_both(&mut self, a: &str, b: &str) -> Result<(), String> {
        self.heal(a, b)?;
        self.heal(b, a)
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: &str) -> Result<(), String> {
        let i = self.node(id)?;
        self.fault(Fault::Isolate { node: i })
    }

    /// Cuts the links between groups of nodes, written `n1,n2 | n3,n4,n5` (blanks ignored);
    /// the nodes named in no group form one more group. Links within a group are left as they
    /// are.
    pub fn partition(&mut self, spec: &str) -> Result<(), String> {
        let groups = self.parse_groups(spec)?;
        self.fault(Fault::Partition { groups })
    }

    fn parse_groups(&self, spec: &str) -> Result<Vec<Vec<usize>>, String> {
        let mut seen = vec![false; self.cluster.node_count()];
        let mut groups = Vec::new();
        for part in spec.split('|') {
            let mut g = Vec::new();
            for id in part.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                let i = self.node(id)?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(format!("{id} is named twice in the partition {spec:?}"));
                }
                g.push(i);
            }
            if g.is_empty() {
                return Err(format!(
                    "a partition is groups of nodes like \"n1,n2 | n3,n4,n5\", got {spec:?}"
                ));
            }
            groups.push(g);
        }
        if groups.len() < 2 && seen.iter().all(|x| *x) {
            return Err(format!(
                "a partition needs two groups at least, got {spec:?}"
            ));
        }
        Ok(groups)
    }

    /// Restores every link.
    pub fn heal_all(&mut self) -> Result<(), String> {
        self.fault(Fault::HealAll)
    }

    /// Sets every node link's loss probability.
    pub fn set_loss(&mut self, p: f64) -> Result<(), String> {
        check_loss(p)?;
        self.fault(Fault::Loss { p })
    }

    /// Sets every node link's duplication probability (0..=1): each message is then delivered
    /// twice with that probability, each copy with its own latency.
    pub fn set_duplicate(&mut self, p: f64) -> Result<(), String> {
        if !(0.0..=1.0).contains(&p) {
            return Err(format!("duplication must be within 0..1, got {p}"));
        }
        self.fault(Fault::Duplicate { p })
    }

    /// Sets the directed link `from -> to`'s loss probability and latency range (ms), leaving
    /// the other links as they are. A later global loss or latency setting overrides it.
    pub fn set_link(
        &mut self,
        from: &str,
        to: &str,
        loss: f64,
        min: f64,
        max: f64,
    ) -> Result<(), String> {
        let (a, b) = self.pair(from, to)?;
        check_loss(loss)?;
        let (min, max) = latency(min, max)?;
        self.fault(Fault::Link {
            from: a,
            to: b,
            loss,
            min,
            max,
        })
    }

    /// Drops every node-to-node message of `kind` (`request_vote`, `append_entries`, ...) from
    /// node `from` to node `to` from now on, "" (or "*") meaning any node: "every RequestVote
    /// from n2" is `("request_vote", "n2", "")`. Messages already in flight are dropped when
    /// they arrive, as over a cut link.
    pub fn filter(&mut self, kind: &str, from: &str, to: &str) -> Result<(), String> {
        let filter = self.msg_filter(kind, from, to)?;
        self.fault(Fault::Filter { filter })
    }

    /// Stops the filter [`Session::filter`] set with the same arguments.
    pub fn unfilter(&mut self, kind: &str, from: &str, to: &str) -> Result<(), String> {
        let filter = self.msg_filter(kind, from, to)?;
        if !self.cluster.network().filters().contains(&filter) {
            return Err(format!("no filter {filter} is set"));
        }
        self.fault(Fault::Unfilter { filter })
    }

    fn msg_filter(&self, kind: &str, from: &str, to: &str) -> Result<MsgFilter, String> {
        if !RAFT_KINDS.contains(&kind) {
            return Err(format!(
                "a filter's message kind must be one of {}, got {kind:?}",
                RAFT_KINDS.join(", ")
            ));
        }
        let end = |e: &str| match e.trim() {
            "" | "*" => Ok(None),
            id => self.node(id).map(Some),
        };
        Ok(MsgFilter {
            kind: kind.to_string(),
            from: end(from)?,
            to: end(to)?,
        })
    }

    /// Sets every node link's latency range.
    pub fn set_latency(&mut self, min: f64, max: f64) -> Result<(), String> {
        let (min, max) = latency(min, max)?;
        self.fault(Fault::Latency {
            node: None,
            min,
            max,
        })
    }

    /// Issues an operation on a fresh client, sent first to node `to` when given, otherwise
    /// to the current leader (or a random node when none leads); returns its op id. A node
    /// that does not lead answers with the leader it knows of, and the client follows.
    pub fn submit(&mut self, op: ClientOp, to: Option<&str>) -> Result<u64, String> {
        if op.key().is_empty() {
            return Err("a key is required".to_string());
        }
        let target = self.target(to)?;
        let client = self.cluster.add_client();
        if let Some(l) = target.or(self.cluster.leader()) {
            self.cluster.set_client_target(client, l);
        }
        let id = self.ops.len() as u64 + 1;
        self.ops.push(OpRecord {
            id,
            client,
            op: op.clone(),
            target,
            invoked_at: self.now(),
            done: None,
        });
        match op {
            ClientOp::Get { key, policy } => {
                let opts = ReadOptions {
                    node: target,
                    own_writes: false,
                };
                self.cluster.submit_read(client, &key, policy, opts);
            }
            op => self.cluster.submit(client, op),
        }
        self.sync();
        Ok(id)
    }

    /// The node an operation is sent to: `None` or `""` for the leader.
    fn target(&self, to: Option<&str>) -> Result<Option<usize>, String> {
        to.filter(|t| !t.is_empty())
            .map(|t| self.node(t))
            .transpose()
    }

    /// Parses a read mode: `stale`, `readindex` or `lease`.
    pub fn read_policy(mode: &str) -> Result<ReadPolicy, String> {
        mode.parse().map_err(|_| {
            format!(r#"read mode must be "stale", "readindex" or "lease", got {mode:?}"#)
        })
    }

    // ----- clocks -----

    /// Node `id`'s clock runs `ppm` parts per million off simulated time from now on (+: fast),
    /// within ±500000 (±50%).
    pub fn set_clock_drift(&mut self, id: &str, ppm: f64) -> Result<(), String> {
        let i = self.node(id)?;
        let max = f64::from(MAX_DRIFT_PPM);
        if !(ppm.is_finite() && ppm.fract() == 0.0 && ppm.abs() <= max) {
            return Err(format!(
                "clock drift must be a whole number of ppm within ±{MAX_DRIFT_PPM} (±50%), got {ppm}"
            ));
        }
        let r = self.cluster.set_clock_drift(i, ppm as i32);
        self.sync();
        r
    }

    /// Node `id`'s clock jumps `ms` (1..=60000) forward now: its timers in the skipped
    /// stretch fire at once.
    pub fn jump_clock(&mut self, id: &str, ms: f64) -> Result<(), String> {
        let i = self.node(id)?;
        if !(ms.is_finite() && ms.fract() == 0.0 && (1.0..=MAX_JUMP_MS as f64).contains(&ms)) {
            return Err(format!(
                "a clock jump must be a whole number of ms within 1..={MAX_JUMP_MS}, got {ms}"
            ));
        }
        let r = self.cluster.jump_clock(i, ms as u64);
        self.sync();
        r
    }

    /// Keeps a drop to draw, at most [`MAX_DROPS`].
    /// Keeps a delivery or drop line for the Events panel's message filter, when asked for
    /// (`message_lines`); it takes the next number of the trace, so the two lists merge in order.
    /// Unasked, the trace's numbers stay those of its own lines alone.
    fn push_message_line(&mut self, at: u64, text: &str) {
        let keep = self.opts.message_lines as usize;
        if keep == 0 {
            return;
        }
        if self.message_trace.len() >= keep {
            self.message_trace.pop_front();
        }
        self.message_trace.push_back(TraceLine {
            seq: self.trace_seq,
            at,
            node: None,
            text: text.to_string(),
            kind: "message",
        });
        self.trace_seq += 1;
    }

    fn push_drop(&mut self, d: DropState) {
        if self.drops.len() >= MAX_DROPS {
            self.drops.pop_front();
        }
        self.drops.push_back(d);
    }

    /// The network loses node-to-node message `id`, now in flight (the page's "drop it"). Its
    /// delivery, still queued, then finds nothing and does nothing.
    pub fn drop_message(&mut self, id: f64) -> Result<(), String> {
        let n = self.cluster.node_count();
        let k = self.flying_id(id)?;
        let m = self
            .cluster
            .network_mut()
            .land(k)
            .ok_or_else(|| not_in_flight(id))?;
        self.flying.remove(&m.id);
        if let (Endpoint::Node(a), Endpoint::Node(b)) = (m.from, m.to) {
            debug_assert!(a < n && b < n);
            self.links[a * n + b].dropped += 1;
            self.last_event = Some(format!(
                "{}→{} {} dropped (by hand)",
                node_name(a),
                node_name(b),
                m.payload.kind()
            ));
            self.push_drop(DropState {
                from: node_name(a),
                to: node_name(b),
                kind: m.payload.kind().to_string(),
                at: self.cluster.now(),
                reason: "by_hand".to_string(),
                at_send: false,
            });
        }
        Ok(())
    }

    /// The id of node-to-node message `id` if it is in flight.
    fn flying_id(&self, id: f64) -> Result<u64, String> {
        (id.is_finite() && id >= 0.0 && id.fract() == 0.0)
            .then_some(id as u64)
            .filter(|k| self.flying.contains_key(k))
            .ok_or_else(|| not_in_flight(id))
    }

    /// The network delivers node-to-node message `id`, now in flight, twice (the page's
    /// "duplicate"): a copy arrives [`DUPLICATE_GAP_MS`] after the original. Returns the copy's
    /// id. Raft must shrug the copy off: a repeated append or vote changes nothing.
    pub fn duplicate_message(&mut self, id: f64) -> Result<u64, String> {
        let k = self.flying_id(id)?;
        let copy = self
            .cluster
            .duplicate_in_flight(k, DUPLICATE_GAP_MS)
            .ok_or_else(|| not_in_flight(id))?;
        self.sync();
        self.last_event = Some(format!("message #{k} duplicated by hand: copy #{copy}"));
        Ok(copy)
    }

    /// The network holds node-to-node message `id`, now in flight, `ms` (1..=60000) longer
    /// (the page's "delay"). Returns when it now arrives.
    pub fn delay_message(&mut self, id: f64, ms: f64) -> Result<u64, String> {
        let k = self.flying_id(id)?;
        if !(ms.is_finite() && ms.fract() == 0.0 && (1.0..=MAX_DELAY_MS as f64).contains(&ms)) {
            return Err(format!(
                "a delay must be a whole number of ms within 1..={MAX_DELAY_MS}, got {ms}"
            ));
        }
        let at = self
            .cluster
            .delay_in_flight(k, ms as u64)
            .ok_or_else(|| not_in_flight(id))?;
        self.last_event = Some(format!("message #{k} delayed by hand to {at} ms"));
        Ok(at)
    }

    /// After nodes were added: every per-node table grows, link counters keep their values.
    fn grow(&mut self) {
        let n = self.cluster.node_count();
        let old = self.last_status.len();
        if n <= old {
            return;
        }
        let mut links = vec![LinkCount::default(); n * n];
        for a in 0..old {
            for b in 0..old {
                links[a * n + b] = self.links[a * old + b];
            }
        }
        self.links = links;
        self.last_status.resize(n, None);
        self.ever_member.resize(n, false);
        self.votes.resize(n, Vec::new());
    }

    /// Catches up with what the cluster did: link counters, trace lines, finished ops, statuses.
    pub(crate) fn sync(&mut self) {
        self.grow();
        let n = self.cluster.node_count();
        // Each event is read once, here, and then dropped: the cluster keeps only the trace's
        // running hash, so a page left open does not keep every event ever simulated.
        for ev in &self.cluster.take_trace_events() {
            match &ev.kind {
                TraceKind::Send {
                    id,
                    from,
                    to,
                    kind,
                    summary,
                    ..
                } => {
                    if node_of(from, n).is_some() && node_of(to, n).is_some() {
                        self.flying.insert(*id, (kind.clone(), summary.clone()));
                    }
                }
                TraceKind::Deliver { id, from, to, kind } => {
                    let sent = self.flying.remove(id);
                    let summary = sent.as_ref().map_or("", |(_, s)| s.as_str());
                    let line = format!("{from}→{to} {kind} {summary} delivered");
                    self.push_message_line(ev.time, &line);
                    self.last_event = Some(line);
                    if let (Some(a), Some(b)) = (node_of(from, n), node_of(to, n)) {
                        self.links[a * n + b].delivered += 1;
                        if kind.ends_with("vote_response") {
                            // The summary says "t<term> granted" or "t<term> denied". A
                            // campaign asked again (a pre-candidate timing out stays one) keeps
                            // each voter's latest answer only.
                            let v = VoteSeen {
                                from: from.clone(),
                                granted: summary.ends_with("granted"),
                            };
                            let seen = &mut self.votes[b];
                            match seen.iter_mut().find(|x| x.from == v.from) {
                                Some(x) => *x = v,
                                None => seen.push(v),
                            }
                        }
                    }
                }
                TraceKind::Drop {
                    id,
                    from,
                    to,
                    kind,
                    reason,
                } => {
                    let flew = self.flying.remove(id).is_some();
                    let line = format!("{from}→{to} {kind} dropped ({})", reason.as_str());
                    self.push_message_line(ev.time, &line);
                    self.last_event = Some(line);
                    if let (Some(a), Some(b)) = (node_of(from, n), node_of(to, n)) {
                        self.links[a * n + b].dropped += 1;
                        self.push_drop(DropState {
                            from: from.clone(),
                            to: to.clone(),
                            kind: kind.clone(),
                            at: ev.time,
                            reason: reason.as_str().to_string(),
                            at_send: !flew,
                        });
                    }
                }
                kind => {
                    if let TraceKind::Role { node, .. } = kind
                        && let Some(i) = node_of(node, n)
                    {
                        // A new candidacy (or none): the replies of the last one no longer count.
                        debug_assert!(i < self.votes.len());
                        self.votes[i].clear();
                    }
                    if let Some((node, text)) = readable(kind) {
                        self.last_event = Some(match &node {
                            Some(who) => format!("{who} {text}"),
                            None => text.clone(),
                        });
                        if self.trace.len() >= self.opts.trace_len as usize {
                            self.trace.pop_front();
                        }
                        if self.opts.trace_len > 0 {
                            let kind = if matches!(
                                kind,
                                TraceKind::Invoke { .. } | TraceKind::Complete { .. }
                            ) {
                                "client"
                            } else {
                                "state"
                            };
                            self.trace.push_back(TraceLine {
                                seq: self.trace_seq,
                                at: ev.time,
                                node,
                                text,
                                kind,
                            });
                        }
                        self.trace_seq += 1;
                    } else {
                        // The trace's own line, without its time.
                        let line = ev.to_string();
                        let line = line.trim_start();
                        self.last_event = Some(
                            line.split_once(' ')
                                .map_or(line, |(_, rest)| rest)
                                .to_string(),
                        );
                    }
                }
            }
        }
        let horizon = self.cluster.now().saturating_sub(DROP_SHOW_MS);
        while self.drops.front().is_some_and(|d| d.at < horizon) {
            self.drops.pop_front();
        }
        let history = &self.cluster.history().ops;
        for (k, h) in history.iter().enumerate().skip(self.history_cursor) {
            // Op ids are client numbers: `c<id>` ran op <id>.
            if let Some(rec) = h
                .client
                .strip_prefix('c')
                .and_then(|x| x.parse::<usize>().ok())
                .and_then(|id| self.ops.get_mut(id.wrapping_sub(1)))
            {
                rec.done = Some(k);
            }
        }
        self.history_cursor = history.len();
        for i in 0..n {
            if let Some(s) = self.cluster.status(i) {
                self.last_status[i] = Some(s);
            }
        }
        if let Some((_, m)) = self.shown_membership() {
            for id in m.members() {
                if let Some(i) = node_of(id.as_str(), n) {
                    self.ever_member[i] = true;
                }
            }
        }
    }

    /// The configuration the page shows and the node it comes from: the leader's; without a
    /// leader, that of the running node that applied the most (a configuration takes effect
    /// when applied, so it knows the latest); with none running, of the node last seen so.
    pub fn shown_membership(&self) -> Option<(usize, Membership)> {
        let pick = |statuses: Vec<(usize, &Status)>| {
            statuses
                .into_iter()
                .filter(|(_, s)| !s.membership.is_empty())
                .max_by_key(|(i, s)| {
                    (
                        s.role == Role::Leader,
                        s.last_applied,
                        s.term,
                        std::cmp::Reverse(*i),
                    )
                })
                .map(|(i, s)| (i, s.membership.clone()))
        };
        let seen = |up: bool| {
            (0..self.last_status.len())
                .filter(|i| !up || self.cluster.is_up(*i))
                .filter_map(|i| self.last_status[i].as_ref().map(|s| (i, s)))
                .collect::<Vec<_>>()
        };
        pick(seen(true)).or_else(|| pick(seen(false)))
    }
}

/// The latest simulated time a run may reach: one day. Beyond it a single call could keep the
/// browser busy for minutes (a mistyped share link, say).
pub const HORIZON_MS: u64 = 86_400_000;

fn within_horizon(t: u64) -> Result<u64, String> {
    if t <= HORIZON_MS {
        Ok(t)
    } else {
        Err(format!(
            "simulated time is limited to {HORIZON_MS} ms (one day); {t} ms asked"
        ))
    }
}

fn check_loss(p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("loss must be within 0..1, got {p}"))
    }
}

fn latency(min: f64, max: f64) -> Result<(u64, u64), String> {
    if !(min.is_finite() && max.is_finite() && min >= 1.0 && max >= min && max <= 60_000.0) {
        return Err(format!(
            "latency needs 1 <= min <= max <= 60000 ms, got {min}..{max}"
        ));
    }
    Ok((min.floor() as u64, max.floor() as u64))
}

fn node_of(name: &str, n: usize) -> Option<usize> {
    let k: usize = name.strip_prefix('n')?.parse().ok()?;
    (1..=n).contains(&k).then_some(k - 1)
}

/// Whether an in-flight message between these endpoints would be dropped now.
pub fn doomed(c: &Cluster, from: usize, to: usize) -> bool {
    c.network().is_cut(Endpoint::Node(from), Endpoint::Node(to)) || !c.is_up(to)
}

/// The trace events worth a line in the page's trace panel (messages are drawn, not listed).
fn readable(kind: &TraceKind) -> Option<(Option<String>, String)> {
    let op_id = |client: &str| client.strip_prefix('c').unwrap_or(client).to_string();
    Some(match kind {
        TraceKind::Role { node, role, term } => {
            let r = match role {
                Role::Follower => "follower",
                Role::PreCandidate => "pre-candidate",
                Role::Candidate => "candidate",
                Role::Leader => "leader",
            };
            (Some(node.clone()), format!("becomes {r} in term {term}"))
        }
        TraceKind::Leader {
            node,
            leader: Some(l),
            term,
        } if l != node => (
            Some(node.clone()),
            format!("follows leader {l} (term {term})"),
        ),
        TraceKind::Commit { node, index } => {
            (Some(node.clone()), format!("commits up to #{index}"))
        }
        TraceKind::Snapshot { node, index, term } => (
            Some(node.clone()),
            format!("installs a snapshot up to #{index} (term {term})"),
        ),
        TraceKind::Compact { node, index, .. } => (
            Some(node.clone()),
            format!("snapshots and compacts its log up to #{index}"),
        ),
        TraceKind::Invoke { client, op, .. } => {
            (None, format!("op #{} starts: {op}", op_id(client)))
        }
        TraceKind::Complete { client, status, .. } => (
            None,
            format!("op #{} ends: {}", op_id(client), serde_name(status)),
        ),
        TraceKind::Conf { node, what } => (Some(node.clone()), what.clone()),
        TraceKind::Membership {
            node,
            index,
            config,
        } => (
            Some(node.clone()),
            format!("configuration of #{index} in force: {config}"),
        ),
        TraceKind::Fault { fault } => match fault.split_once(' ') {
            Some(("kill", n)) => (Some(n.to_string()), "crashed (killed)".to_string()),
            Some(("restart", n)) => (Some(n.to_string()), "restarted from its stores".to_string()),
            Some(("clock_rate", rest)) => match rest.split_once(' ') {
                Some((n, ppm)) => (Some(n.to_string()), format!("its clock now runs {ppm} off")),
                None => (None, fault.clone()),
            },
            Some(("clock_jump", rest)) => match rest.split_once(' ') {
                Some((n, ms)) => (Some(n.to_string()), format!("its clock jumps {ms} forward")),
                None => (None, fault.clone()),
            },
            _ => (None, fault.clone()),
        },
        _ => return None,
    })
}

fn serde_name(s: &raftkv_core::sim::OpStatus) -> &'static str {
    match s {
        raftkv_core::sim::OpStatus::Ok => "ok",
        raftkv_core::sim::OpStatus::Fail => "failed",
        raftkv_core::sim::OpStatus::Unknown => "unknown outcome",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_is_checked_with_cores_rule_and_names_the_options() {
        let err = |o: Options| Session::new(o).err().unwrap_or_default();
        let e = err(Options {
            heartbeat: 500.0,
            ..Options::default()
        });
        assert!(
            e.starts_with("heartbeat / election_timeout_min / election_timeout_max: ")
                && e.contains("heartbeat (500 ms) < election timeout min (150 ms)"),
            "{e}"
        );
        let e = err(Options {
            election_timeout_min: 400.0,
            ..Options::default()
        });
        assert!(e.contains("min (400 ms) <= max (300 ms)"), "{e}");
        assert!(
            Session::new(Options {
                heartbeat: 0.0,
                ..Options::default()
            })
            .is_err()
        );
        assert!(Session::new(Options::default()).is_ok());
    }

    /// A live run advanced in the page's uneven frame-sized chunks, with link cuts and heals
    /// between them, and a replay that gets to each action with `run_to(t, events)` and to
    /// the end with one `advance`, as a shared link does: the two traces are the same, times
    /// included. (The actions were stamped one event early or late before `run_to` stopped
    /// moving the clock by running to it.)
    #[test]
    fn a_replay_with_run_to_reproduces_a_live_run_in_chunks_exactly() {
        for seed in 1..=20 {
            replay_matches_live(seed);
        }
    }

    fn replay_matches_live(seed: u32) {
        let opts = || Options {
            nodes: 5,
            seed: Some(crate::contract::SeedValue::Number(f64::from(seed))),
            trace_len: 10_000,
            ..Options::default()
        };
        type Action = (u64, u64, bool, &'static str, &'static str);
        let cuts = [
            (600, true, "n4", "n5"),
            (1_400, false, "n4", "n5"),
            (2_100, true, "n1", "n2"),
        ];
        let mut live = Session::new(opts()).unwrap();
        let mut actions: Vec<Action> = Vec::new();
        let mut chunk = 1u64;
        while live.now() < 3_000 {
            live.advance((chunk % 17 + 1) as f64).unwrap();
            chunk += 1;
            for &(at, cut, a, b) in &cuts {
                if live.now() >= at && !actions.iter().any(|x| x.0 >= at && x.3 == a && x.2 == cut)
                {
                    actions.push((live.now(), live.events(), cut, a, b));
                    if cut {
                        live.cut_both(a, b).unwrap()
                    } else {
                        live.heal_both(a, b).unwrap()
                    }
                }
            }
        }
        let mut replay = Session::new(opts()).unwrap();
        for &(t, ev, cut, a, b) in &actions {
            replay.run_to(t as f64, ev as f64).unwrap();
            assert_eq!(
                (replay.now(), replay.events()),
                (t, ev),
                "at the action of {t} ms"
            );
            if cut {
                replay.cut_both(a, b).unwrap()
            } else {
                replay.heal_both(a, b).unwrap()
            }
        }
        let left = live.now() - replay.now();
        replay.advance(left as f64).unwrap();
        let trace = |s: &Session| format!("{:?}", s.trace);
        assert!(live.events() > 100);
        assert_eq!(live.events(), replay.events());
        assert_eq!(trace(&live), trace(&replay), "seed {seed}");
    }
}
