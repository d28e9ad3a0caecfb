//! Randomized runs: one seed decides the cluster size, the clients' workload and the fault
//! schedule; the run injects the faults, heals everything, and then demands liveness — a leader
//! and every client operation completed — on top of the invariants checked after every event.
//! Finally the clients' history must be linearizable.
//!
//! Each seed also draws its snapshot threshold (0, no snapshots, for some seeds; a small one for
//! most, so logs are compacted, lagging followers catch up through InstallSnapshot and restarted
//! nodes load a snapshot) and which clients read stale. Stale reads are served from whatever
//! node a client reaches, without confirming leadership, so they are not linearizable by
//! design: unless [`Scenario::check_stale_reads`] is set, the linearizability check covers the
//! writes and readindex reads only (see [`History::without_stale_reads`]), and stale reads must
//! merely return a value some write produced (see [`History::invented_stale_reads`]).
//! Every read — stale, read-your-writes, readindex, lease — must also return the committed
//! log's value at the serving node's applied index (see [`committed_reads`]). A share of the
//! other clients (`lease_read_chance`) read on the leader's lease; a share of the reads go to a
//! random node first (`Workload::follower_reads`), and half the stale reads wait for the
//! client's own last write (`Workload::own_writes_reads`).
//!
//! Half the seeds (`churn.chance`) add membership faults to the schedule (see
//! [`ChurnProfile`]); liveness then asks the members of the final configuration to converge,
//! while removed nodes (still running) may lag.
//!
//! Half the seeds (`drift_chance`) give every node a clock of its own: a rate drawn from ±5%
//! (`drift_max_ppm`) and up to three forward jumps of up to 10 ms, inside what
//! `Config::lease_drift_margin` allows for (see [`clock`](super::clock)).
//!
//! Each seed draws its client session limits (`session_weights`): none, a short ttl (a few
//! hundred ms to a few s of log time), a small cap (1 to 8 sessions), or both, so sessions
//! expire often: clients then see `session_expired` and start new sessions, the reads are
//! checked against a model that expires the same sessions, and every replica must hold the
//! same sessions at each applied index (see [`session_tables`](super::session_tables)).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::client::{ClientConfig, Workload};
use super::cluster::membership_summary;
use super::cluster::{Cluster, MAX_NODES, SimConfig, SimStats};
use super::committed_reads;
use super::fault::Fault;
use super::history::History;
use super::invariants::{Invariant, Violation};
use super::linearizability;
use super::network::{LinkConfig, node_index, node_name};
use super::rng::{SimRng, Stream};
use super::schedule::{ChurnProfile, FaultProfile, random_churn, random_schedule};
use super::trace::TraceMode;
use crate::kvsm::SessionLimits;
use crate::raft::{Config, Index, Millis};
use crate::types::{NodeId, ReadPolicy};

/// What a randomized run looks like; the seed fills in the details.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Relative weights of cluster sizes 1..=9 (index 0 is one node).
    pub size_weights: [u64; 9],
    /// The least number of clients.
    pub clients_min: usize,
    /// The greatest number of clients.
    pub clients_max: usize,
    /// The least number of operations per client.
    pub ops_min: u32,
    /// The greatest number of operations per client.
    pub ops_max: u32,
    /// The clients' workload; `ops` is drawn per client from `ops_min..=ops_max`.
    pub workload: Workload,
    /// The faults.
    pub faults: FaultProfile,
    /// How node links behave before faults.
    pub node_link: LinkConfig,
    /// Adjusts every node's Raft configuration (timing, protocol breaks).
    pub configure: fn(&mut Config),
    /// How long after the healing the clients have to finish.
    pub liveness_window: Millis,
    /// How much trace to keep.
    pub trace: TraceMode,
    /// Whether to check the leader commit rule (see [`Invariant::CommitRule`]).
    pub check_commit_rule: bool,
    /// Whether to check the client history for linearizability at the end.
    pub check_linearizability: bool,
    /// Relative weights of a seed running without snapshots (threshold 0) and with them.
    pub snapshot_weights: [u64; 2],
    /// The least snapshot threshold a seed with snapshots draws.
    pub snapshot_threshold_min: u64,
    /// The greatest snapshot threshold a seed with snapshots draws.
    pub snapshot_threshold_max: u64,
    /// The chance that a client reads stale instead of with `workload.read_policy`.
    pub stale_read_chance: f64,
    /// The chance that a client that does not read stale reads on the leader's lease
    /// ([`ReadPolicy::Lease`]) instead of with `workload.read_policy`.
    pub lease_read_chance: f64,
    /// The share of seeds whose writes take time (the others are durable at once).
    pub disk_latency_chance: f64,
    /// The longest write a seed with disk latency draws.
    pub disk_latency_max: Millis,
    /// Whether stale reads are part of the linearizability check. Off (the default), they are
    /// left out of it, since they may return old values by design; they must still return a
    /// value some write produced.
    pub check_stale_reads: bool,
    /// The share of seeds whose nodes' clocks drift (the others all read the global time).
    pub drift_chance: f64,
    /// The most a drifting clock is off the global rate, in parts per million: each node draws
    /// its rate from `±drift_max_ppm`. The default, 5%, keeps any two clocks' disagreement about
    /// a lease well inside `Config::lease_drift_margin`.
    pub drift_max_ppm: i32,
    /// The most forward clock jumps a drifting seed draws (each on a random node at a random
    /// time before the healing).
    pub clock_jumps_max: u64,
    /// The longest forward jump, in ms.
    pub clock_jump_max: Millis,
    /// Membership churn and leadership transfers.
    pub churn: ChurnProfile,
    /// The clients' timeouts and backoff.
    pub client: ClientConfig,
    /// Relative weights of a seed's session limits: none, a ttl only, a cap only, both.
    pub session_weights: [u64; 4],
    /// The shortest session ttl a seed draws, in ms of log time.
    pub session_ttl_min: Millis,
    /// The longest.
    pub session_ttl_max: Millis,
    /// The greatest session cap a seed draws (the least is 1).
    pub session_max_max: u64,
    /// The share of seeds whose syncs may fail (see [`SimConfig::fsync_failure_rate`]).
    pub fsync_failure_chance: f64,
    /// In those seeds, the chance that a sync fails.
    pub fsync_failure_rate: f64,
    /// The share of seeds whose disks return corrupt records: kills leave damaged last
    /// records ([`SimConfig::corrupt_tails`]), and, with a fixed membership of 3 or more
    /// nodes, a restart may find a synced record rotten ([`SimConfig::disk_loss`]).
    pub corrupt_read_chance: f64,
    /// A deliberate break: nodes expire sessions by their own clock instead of the log's.
    #[cfg(feature = "protocol-breaks")]
    pub session_expiry_by_local_clock: bool,
}

fn keep_config(_: &mut Config) {}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            size_weights: [4, 3, 35, 5, 35, 3, 10, 2, 3],
            clients_min: 1,
            clients_max: 4,
            ops_min: 3,
            ops_max: 15,
            workload: Workload::default(),
            faults: FaultProfile::default(),
            node_link: LinkConfig::default(),
            configure: keep_config,
            liveness_window: 20_000,
            trace: TraceMode::Full,
            check_commit_rule: true,
            check_linearizability: true,
            snapshot_weights: [1, 4],
            snapshot_threshold_min: 3,
            snapshot_threshold_max: 20,
            stale_read_chance: 0.25,
            lease_read_chance: 0.4,
            disk_latency_chance: 0.5,
            disk_latency_max: 20,
            check_stale_reads: false,
            drift_chance: 0.5,
            drift_max_ppm: 50_000,
            clock_jumps_max: 3,
            clock_jump_max: 10,
            churn: ChurnProfile::default(),
            client: ClientConfig::default(),
            session_weights: [1, 1, 1, 1],
            session_ttl_min: 200,
            session_ttl_max: 3_000,
            session_max_max: 8,
            fsync_failure_chance: 0.25,
            fsync_failure_rate: 0.01,
            corrupt_read_chance: 0.25,
            #[cfg(feature = "protocol-breaks")]
            session_expiry_by_local_clock: false,
        }
    }
}

/// The concrete shape of one seed's run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// One workload per client.
    pub workloads: Vec<Workload>,
    /// The timed faults, healing included.
    pub schedule: Vec<(Millis, Fault)>,
    /// When everything heals.
    pub fault_end: Millis,
    /// Every node's snapshot threshold (0: no snapshots).
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind each snapshot (see `Config::snapshot_trailing`).
    pub snapshot_trailing: u64,
    /// How long the nodes' writes take (see [`SimConfig::disk_latency`]).
    pub disk_latency: (Millis, Millis),
    /// Each node slot's clock rate (see [`SimConfig::clock_ppm`]); all 0 without drift. The
    /// clock jumps are in `schedule`.
    pub clock_ppm: Vec<i32>,
    /// Whether the seed churns: membership faults in `schedule`, and changes asked of new
    /// leaders (see [`ChurnProfile::on_election`]).
    pub churn: bool,
    /// Every node's client session limits.
    pub session_limits: SessionLimits,
    /// Snapshot chunk bytes, chunks in flight and chunk timeout (see
    /// `Config::snapshot_chunk_size` and the rest): small chunks, so that a snapshot crosses
    /// the faulty network in many messages.
    pub snapshot_chunks: (u64, usize, Millis),
    /// The chance that a sync fails (0: none do).
    pub fsync_failure_rate: f64,
    /// Whether the disks return corrupt records (see [`Scenario::corrupt_read_chance`]).
    pub corrupt_reads: bool,
}

impl Scenario {
    /// The plan `seed` draws (from its schedule stream only).
    pub fn plan(&self, seed: u64) -> RunPlan {
        let mut rng = SimRng::new(seed, Stream::Schedule);
        let nodes = rng.weighted(&self.size_weights) + 1;
        let clients = rng.range(self.clients_min as u64, self.clients_max as u64) as usize;
        let workloads = (0..clients)
            .map(|_| Workload {
                ops: rng.range(u64::from(self.ops_min), u64::from(self.ops_max)) as u32,
                read_policy: if rng.chance(self.stale_read_chance) {
                    ReadPolicy::Stale
                } else {
                    self.workload.read_policy
                },
                ..self.workload.clone()
            })
            .collect();
        let schedule = random_schedule(&mut rng, nodes, &self.faults);
        let snapshot_threshold = match rng.weighted(&self.snapshot_weights) {
            1 => rng.range(self.snapshot_threshold_min, self.snapshot_threshold_max),
            _ => 0,
        };
        // Drawn last, so that adding it left every earlier draw (and older seeds' shapes) alone.
        // A third of the seeds with snapshots compact right up to the snapshot, so lagging
        // followers still need InstallSnapshot; the rest keep up to twice the threshold.
        let snapshot_trailing = match (snapshot_threshold, rng.below(3)) {
            (0, _) | (_, 0) => 0,
            (t, _) => rng.range(1, 2 * t),
        };
        // Drawn after it, for the same reason. Half the seeds (`disk_latency_chance`) make writes take up to 1 ms to
        // `disk_latency_max` (20 ms by default),
        // longer than a message's trip at times: answers then reach a leader before its own
        // entry is durable, and kills hit writes in flight.
        let disk_latency = match rng.chance(self.disk_latency_chance) {
            false => (0, 0),
            true => (0, rng.range(1, self.disk_latency_max.max(1))),
        };
        let mut schedule = schedule;
        let clock_ppm = self.draw_clocks(&mut rng, nodes, &mut schedule);
        let mut workloads: Vec<Workload> = workloads;
        for w in &mut workloads {
            if rng.chance(self.lease_read_chance) && w.read_policy != ReadPolicy::Stale {
                w.read_policy = ReadPolicy::Lease;
            }
        }
        let churn = rng.chance(self.churn.chance);
        if churn {
            schedule.extend(random_churn(&mut rng, &self.churn, self.faults.fault_end));
            schedule.sort_by_key(|(t, _)| *t);
        }
        // Drawn last, like the others before it.
        let (ttl, max) = match rng.weighted(&self.session_weights) {
            0 => (false, false),
            1 => (true, false),
            2 => (false, true),
            _ => (true, true),
        };
        let session_limits = SessionLimits {
            ttl: if ttl {
                rng.range(self.session_ttl_min, self.session_ttl_max)
            } else {
                0
            },
            max: if max {
                rng.range(1, self.session_max_max.max(1))
            } else {
                0
            },
        };
        // Drawn last, for the same reason as above.
        let snapshot_chunks = (
            rng.range(64, 512),
            rng.range(1, 4) as usize,
            rng.range(60, 600),
        );
        // From a stream of their own, so that every other draw stays what it was.
        let mut mix = SimRng::new(seed, Stream::StorageMix);
        let fsync_failure_rate = match mix.chance(self.fsync_failure_chance) {
            true => self.fsync_failure_rate,
            false => 0.0,
        };
        let corrupt_reads = mix.chance(self.corrupt_read_chance);
        RunPlan {
            fsync_failure_rate,
            corrupt_reads,
            seed,
            nodes,
            workloads,
            schedule,
            fault_end: self.faults.fault_end,
            snapshot_threshold,
            snapshot_trailing,
            disk_latency,
            clock_ppm,
            churn,
            session_limits,
            snapshot_chunks,
        }
    }

    /// Each node's clock rate, and forward jumps added to `schedule`: for a share of the seeds
    /// (`drift_chance`) only.
    fn draw_clocks(
        &self,
        rng: &mut SimRng,
        nodes: usize,
        schedule: &mut Vec<(Millis, Fault)>,
    ) -> Vec<i32> {
        if !rng.chance(self.drift_chance) {
            return vec![0; MAX_NODES];
        }
        let max = u64::from(self.drift_max_ppm.unsigned_abs());
        let ppm = (0..MAX_NODES)
            .map(|_| (rng.range(0, 2 * max) as i64 - max as i64) as i32)
            .collect();
        for _ in 0..rng.range(0, self.clock_jumps_max) {
            let at = rng.range(0, self.faults.fault_end.saturating_sub(1));
            let node = rng.index(nodes);
            let ms = rng.range(1, self.clock_jump_max.max(1));
            schedule.push((at, Fault::ClockJump { node, ms }));
        }
        schedule.sort_by_key(|(t, _)| *t);
        ppm
    }

    /// Builds the cluster of `plan` with its faults scheduled and workloads set, at time 0.
    pub fn build(&self, plan: &RunPlan, trace: TraceMode) -> Result<Cluster, Violation> {
        let mut cfg = SimConfig::new(plan.seed, plan.nodes);
        cfg.clients = plan.workloads.len();
        cfg.client = self.client;
        cfg.node_link = self.node_link;
        cfg.trace = trace;
        cfg.check_commit_rule = self.check_commit_rule;
        cfg.disk_latency = plan.disk_latency;
        cfg.clock_ppm = plan.clock_ppm.clone();
        cfg.churn_patience = self.churn.patience;
        cfg.churn_until = plan.fault_end;
        cfg.churn_on_election = if plan.churn {
            self.churn.on_election
        } else {
            0.0
        };
        cfg.session_limits = plan.session_limits;
        cfg.fsync_failure_rate = plan.fsync_failure_rate;
        cfg.corrupt_tails = plan.corrupt_reads;
        // A dead disk takes a voter for good: only where a majority is left whatever happens
        // (no membership changes, three nodes or more).
        cfg.disk_loss = plan.corrupt_reads && !plan.churn && plan.nodes >= 3;
        cfg.storage_faults_until = plan.fault_end;
        #[cfg(feature = "protocol-breaks")]
        {
            cfg.session_expiry_by_local_clock = self.session_expiry_by_local_clock;
        }
        let mut raft = Config::new(NodeId::from("n1"), vec![NodeId::from("n1")]);
        raft.snapshot_threshold = plan.snapshot_threshold;
        raft.snapshot_trailing = plan.snapshot_trailing;
        (
            raft.snapshot_chunk_size,
            raft.snapshot_window,
            raft.snapshot_chunk_timeout,
        ) = plan.snapshot_chunks;
        // `configure` has the last word (a test may pin the threshold, say).
        (self.configure)(&mut raft);
        cfg.raft = raft;
        let mut cluster = Cluster::new(cfg)?;
        for (t, f) in &plan.schedule {
            cluster.schedule(*t, f.clone());
        }
        for (i, w) in plan.workloads.iter().enumerate() {
            cluster.set_workload(i, w.clone());
        }
        Ok(cluster)
    }

    /// Runs `seed`: faults, healing, then liveness. On failure with a reduced trace, the seed
    /// is replayed with the full trace to show what led there.
    pub fn run(&self, seed: u64) -> Result<RunReport, Box<RunFailure>> {
        let plan = self.plan(seed);
        match self.run_plan(&plan, self.trace) {
            Ok(r) => Ok(r),
            Err((v, cluster)) => {
                let mut f = RunFailure {
                    seed,
                    nodes: plan.nodes,
                    violation: v.clone(),
                    trace_tail: cluster
                        .as_ref()
                        .map(|c| c.trace().tail(60))
                        .unwrap_or_default(),
                    trace_hash: cluster.as_ref().map_or(0, |c| c.trace().hash()),
                    replayed_identically: None,
                    history: cluster.map(|c| c.history().clone()).unwrap_or_default(),
                };
                if self.trace != TraceMode::Full {
                    if let Err((again, Some(c))) = self.run_plan(&plan, TraceMode::Full) {
                        f.replayed_identically = Some(again == v);
                        f.trace_tail = c.trace().tail(60);
                        f.trace_hash = c.trace().hash();
                    } else {
                        f.replayed_identically = Some(false);
                    }
                }
                Err(Box::new(f))
            }
        }
    }

    /// Runs a plan. On failure, returns the violation and the cluster as it stopped.
    #[allow(clippy::result_large_err)]
    pub fn run_plan(
        &self,
        plan: &RunPlan,
        trace: TraceMode,
    ) -> Result<RunReport, (Violation, Option<Cluster>)> {
        let mut c = self.build(plan, trace).map_err(|v| (v, None))?;
        match self.run_to_end(plan, &mut c) {
            Ok(()) => Ok(RunReport {
                seed: plan.seed,
                nodes: plan.nodes,
                clients: plan.workloads.len(),
                ops_planned: plan.workloads.iter().map(|w| u64::from(w.ops)).sum(),
                ops_ok: c.history().counts().0 as u64,
                end_time: c.now(),
                fault_end: plan.fault_end,
                stats: c.stats(),
                trace_hash: c.trace().hash(),
                trace_events: c.trace().len(),
                leader: c.leader().map(node_name),
                history: c.history().clone(),
                snapshot_threshold: plan.snapshot_threshold,
                snapshot_trailing: plan.snapshot_trailing,
                slow_disk: plan.disk_latency.1 > 0,
                drift_ppm: plan.clock_ppm[..plan.nodes.min(plan.clock_ppm.len())]
                    .iter()
                    .map(|p| p.unsigned_abs())
                    .max()
                    .unwrap_or(0),
                clock_jumps: plan
                    .schedule
                    .iter()
                    .filter(|(_, f)| matches!(f, Fault::ClockJump { .. }))
                    .count() as u64,
                churn: plan.churn,
                final_voters: c.membership().map_or(0, |m| m.voters.len()),
                final_learners: c.membership().map_or(0, |m| m.learners.len()),
                final_nodes: c.node_count(),
                session_limits: plan.session_limits,
            }),
            Err(v) => Err((v, Some(c))),
        }
    }

    /// Runs a cluster built by [`Scenario::build`] through its faults, the healing and the
    /// liveness checks.
    pub fn run_to_end(&self, plan: &RunPlan, c: &mut Cluster) -> Result<(), Violation> {
        c.run_until(plan.fault_end)?;
        let deadline = plan.fault_end + self.liveness_window;
        let live = c.run_while_not(deadline, |c| c.clients_done() && c.leader().is_some())?;
        if !live {
            let pending: Vec<String> = c
                .clients()
                .iter()
                .filter(|cl| !cl.is_done())
                .map(|cl| match cl.pending() {
                    Some(p) => format!("{}#{} ({})", cl.id(), p.seq, p.op.summary()),
                    None => cl.id().to_string(),
                })
                .collect();
            return Err(Violation {
                invariant: Invariant::Liveness,
                time: c.now(),
                nodes: (0..c.node_count()).map(node_name).collect(),
                detail: format!(
                    "{} ms after healing: leader {}, unfinished clients [{}]",
                    self.liveness_window,
                    c.leader().map_or("none".to_string(), node_name),
                    pending.join(", ")
                ),
            });
        }
        // The final configuration settles (no joint one left) and every member catches up
        // with the leader's commit index; removed nodes and nodes never added may lag.
        let caught_up = |c: &Cluster| {
            let Some((commit, members)) = final_members(c) else {
                return false;
            };
            members
                .iter()
                .all(|i| c.status(*i).is_some_and(|s| s.last_applied == commit))
        };
        let deadline = c.now() + 5_000;
        if !c.run_while_not(deadline, caught_up)? {
            let members = final_members(c).map(|(_, m)| m);
            let applied: Vec<String> = (0..c.node_count())
                .filter(|i| members.as_ref().is_none_or(|m| m.contains(i)))
                .map(|i| match c.status(i) {
                    Some(s) => format!("{}:{}/{}", node_name(i), s.last_applied, s.commit_index),
                    None => format!("{}:down", node_name(i)),
                })
                .collect();
            return Err(Violation {
                invariant: Invariant::Liveness,
                time: c.now(),
                nodes: (0..c.node_count()).map(node_name).collect(),
                detail: format!(
                    "members did not catch up with leader {} (configuration {}): applied/commit {}",
                    c.leader().map_or("none".to_string(), node_name),
                    c.membership()
                        .map_or("none".to_string(), |m| membership_summary(&m)),
                    applied.join(" ")
                ),
            });
        }
        if self.check_linearizability {
            let checked = if self.check_stale_reads {
                linearizability::check(c.history())
            } else {
                linearizability::check(&c.history().without_stale_reads())
            };
            let detail = match checked {
                Err(e) => Some(e.to_string()),
                Ok(()) => c.history().invented_stale_reads().first().map(|r| {
                    format!(
                        "a stale read returned a value no write produced: {}",
                        r.to_json_line()
                    )
                }),
            };
            if let Some(detail) = detail {
                return Err(Violation {
                    invariant: Invariant::Linearizability,
                    time: c.now(),
                    nodes: Vec::new(),
                    detail,
                });
            }
        }
        // Every read served from a node's state machine, stale ones included, against the
        // committed log at the node's applied index.
        if let Err(e) =
            committed_reads::check_with_limits(c.history(), c.committed_log(), plan.session_limits)
        {
            return Err(Violation {
                invariant: Invariant::CommittedReads,
                time: c.now(),
                nodes: Vec::new(),
                detail: e.to_string(),
            });
        }
        Ok(())
    }
}

/// The leader's commit index and the members of the configuration in force at the leader,
/// once there is a leader whose configuration is not joint.
fn final_members(c: &Cluster) -> Option<(Index, Vec<usize>)> {
    let leader = c.leader()?;
    let host = c.node(leader)?;
    let m = host.membership();
    if m.is_joint() {
        return None;
    }
    // A member whose disk died stays down: the others must converge without it.
    let members = m
        .members()
        .iter()
        .filter_map(node_index)
        .filter(|i| *i < c.node_count() && c.disk_dead(*i).is_none())
        .collect();
    Some((host.commit_index(), members))
}

/// What a successful run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Number of clients.
    pub clients: usize,
    /// Operations the workloads asked for.
    pub ops_planned: u64,
    /// Operations answered.
    pub ops_ok: u64,
    /// Simulated time at the end.
    pub end_time: Millis,
    /// When the faults healed.
    pub fault_end: Millis,
    /// Counters.
    pub stats: SimStats,
    /// FNV-1a 64 of the trace text.
    pub trace_hash: u64,
    /// Events in the trace.
    pub trace_events: u64,
    /// The leader at the end.
    pub leader: Option<String>,
    /// The client history.
    pub history: History,
    /// The snapshot threshold the seed drew (0: no snapshots).
    pub snapshot_threshold: u64,
    /// The entries kept behind each snapshot that the seed drew.
    pub snapshot_trailing: u64,
    /// Whether the seed's writes took time to become durable.
    pub slow_disk: bool,
    /// The largest clock rate offset among the seed's nodes, in ppm (0: no drift).
    pub drift_ppm: u32,
    /// Forward clock jumps in the seed's schedule.
    pub clock_jumps: u64,
    /// Whether the seed churned (membership faults and changes asked of new leaders).
    pub churn: bool,
    /// Voters of the final configuration.
    pub final_voters: usize,
    /// Learners of the final configuration.
    pub final_learners: usize,
    /// Nodes at the end, removed and never-added ones included.
    pub final_nodes: usize,
    /// The session limits the seed drew.
    pub session_limits: SessionLimits,
}

/// A failed run: the seed, what broke, and the end of the trace.
#[derive(Clone, Debug)]
pub struct RunFailure {
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// What broke.
    pub violation: Violation,
    /// The last lines of the trace before it broke.
    pub trace_tail: String,
    /// FNV-1a 64 of the trace up to the failure.
    pub trace_hash: u64,
    /// When the run had a reduced trace: whether the full-trace replay failed the same way.
    pub replayed_identically: Option<bool>,
    /// The client history up to the failure.
    pub history: History,
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} ({} nodes): {}",
            self.seed, self.nodes, self.violation
        )?;
        if let Some(same) = self.replayed_identically {
            writeln!(f, "replay with full trace reproduced it: {same}")?;
        }
        writeln!(f, "trace hash {:016x}; last events:", self.trace_hash)?;
        f.write_str(&self.trace_tail)
    }
}
