//! Randomized fault schedules: which faults hit a run, when, and for how long.
//!
//! A [`FaultProfile`] says how often each kind of fault occurs and how long it lasts; a seed's
//! schedule stream turns it into a concrete, inspectable list of timed [`Fault`]s. Every fault
//! that lasts is followed by its own healing, and the schedule ends with a healing phase (all
//! links restored, all nodes restarted) after which the cluster must make progress again.

use serde::{Deserialize, Serialize};

use super::fault::Fault;
use super::rng::SimRng;
use crate::raft::Millis;

/// Relative weights of the fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWeights {
    /// Split the nodes into two groups.
    pub partition: u64,
    /// Cut one direction of one link.
    pub one_way: u64,
    /// Cut a node off from all others.
    pub isolate: u64,
    /// Kill a node and restart it later.
    pub kill: u64,
    /// Make every node link lossy.
    pub loss: u64,
    /// Make every node link duplicate messages.
    pub duplicate: u64,
    /// Slow down one node's links (or all links).
    pub latency: u64,
    /// Kill or isolate whichever node leads at that moment.
    pub leader: u64,
    /// Kill or isolate a follower for long (see [`FaultProfile::lag_min`]): a lagging follower
    /// the leader compacts its log past, which then catches up through a snapshot.
    pub lag: u64,
}

/// How a randomized schedule is drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultProfile {
    /// Faults start in `[0, fault_end)`; at `fault_end` everything heals.
    pub fault_end: Millis,
    /// The least gap between two faults' starts.
    pub gap_min: Millis,
    /// The greatest such gap.
    pub gap_max: Millis,
    /// The least time a fault lasts.
    pub duration_min: Millis,
    /// The greatest time a fault lasts.
    pub duration_max: Millis,
    /// How long a killed node stays down, at least.
    pub down_min: Millis,
    /// How long a killed node stays down, at most.
    pub down_max: Millis,
    /// The highest loss probability drawn.
    pub loss_max: f64,
    /// The highest duplication probability drawn.
    pub duplicate_max: f64,
    /// The highest latency a spike draws.
    pub spike_max: Millis,
    /// How long a lagging follower stays away, at least (cut short at `fault_end`).
    pub lag_min: Millis,
    /// How long a lagging follower stays away, at most.
    pub lag_max: Millis,
    /// The kinds' weights.
    pub weights: FaultWeights,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            fault_end: 3_000,
            gap_min: 100,
            gap_max: 600,
            duration_min: 100,
            duration_max: 900,
            down_min: 50,
            down_max: 900,
            loss_max: 0.3,
            duplicate_max: 0.3,
            spike_max: 120,
            lag_min: 600,
            lag_max: 2_500,
            weights: FaultWeights {
                partition: 3,
                one_way: 2,
                isolate: 2,
                kill: 3,
                loss: 1,
                duplicate: 1,
                latency: 1,
                leader: 2,
                lag: 2,
            },
        }
    }
}

/// Relative weights of the membership faults (see [`Fault::AddNode`] and the ones after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnWeights {
    /// Start a node and add it as a learner.
    pub add_learner: u64,
    /// Start a node, add it as a learner and promote it once it caught up.
    pub add_voter: u64,
    /// Promote a learner.
    pub promote: u64,
    /// Remove a voter other than the leader.
    pub remove_voter: u64,
    /// Remove the leader.
    pub remove_leader: u64,
    /// Remove a learner.
    pub remove_learner: u64,
    /// Replace a voter by a fresh node (a joint configuration).
    pub replace: u64,
    /// Hand leadership to another voter.
    pub transfer: u64,
}

/// How membership churn and leadership transfers are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChurnProfile {
    /// The share of seeds with churn.
    pub chance: f64,
    /// The least gap between two membership faults.
    pub gap_min: Millis,
    /// The greatest such gap.
    pub gap_max: Millis,
    /// The kinds' weights.
    pub weights: ChurnWeights,
    /// How long a refused change is retried (see `SimConfig::churn_patience`).
    pub patience: Millis,
    /// In seeds with churn, the chance that a newly elected leader is asked for a change of
    /// one voter at once (see `SimConfig::churn_on_election`).
    pub on_election: f64,
}

impl Default for ChurnProfile {
    fn default() -> Self {
        ChurnProfile {
            chance: 0.5,
            gap_min: 100,
            gap_max: 600,
            weights: ChurnWeights {
                add_learner: 2,
                add_voter: 4,
                promote: 1,
                remove_voter: 3,
                remove_leader: 1,
                remove_learner: 1,
                replace: 2,
                transfer: 3,
            },
            patience: 2_000,
            on_election: 0.2,
        }
    }
}

/// Draws membership faults in `[0, fault_end)`, sorted by time.
pub fn random_churn(rng: &mut SimRng, p: &ChurnProfile, fault_end: Millis) -> Vec<(Millis, Fault)> {
    let w = &p.weights;
    let weights = [
        w.add_learner,
        w.add_voter,
        w.promote,
        w.remove_voter,
        w.remove_leader,
        w.remove_learner,
        w.replace,
        w.transfer,
    ];
    let mut out = Vec::new();
    let mut t = rng.range(p.gap_min, p.gap_max);
    while t < fault_end {
        let fault = match rng.weighted(&weights) {
            0 => Fault::AddNode { promote: false },
            1 => Fault::AddNode { promote: true },
            2 => Fault::Promote,
            3 => Fault::RemoveVoter,
            4 => Fault::RemoveLeader,
            5 => Fault::RemoveLearner,
            6 => Fault::ReplaceVoter,
            _ => Fault::TransferLeader,
        };
        out.push((t, fault));
        t += rng.range(p.gap_min.max(1), p.gap_max.max(1));
    }
    out
}

/// Draws a schedule for `nodes` nodes: timed faults, each lasting fault followed by its
/// healing, then the healing phase at `fault_end`. Sorted by time (stable: equal times keep
/// their drawing order).
pub fn random_schedule(rng: &mut SimRng, nodes: usize, p: &FaultProfile) -> Vec<(Millis, Fault)> {
    let mut out: Vec<(Millis, Fault)> = Vec::new();
    let w = &p.weights;
    let weights = [
        w.partition,
        w.one_way,
        w.isolate,
        w.kill,
        w.loss,
        w.duplicate,
        w.latency,
        w.leader,
        w.lag,
    ];
    let mut t = rng.range(p.gap_min, p.gap_max);
    while t < p.fault_end {
        let dur = rng.range(p.duration_min, p.duration_max);
        let end = (t + dur).min(p.fault_end);
        let node = rng.index(nodes);
        match rng.weighted(&weights) {
            0 if nodes > 1 => {
                // A random non-trivial split: each node joins group A or B.
                let mut a = Vec::new();
                let mut b = Vec::new();
                for n in 0..nodes {
                    if rng.chance(0.5) {
                        a.push(n);
                    } else {
                        b.push(n);
                    }
                }
                if a.is_empty() || b.is_empty() {
                    // Make it a real split: move one node across.
                    let (from, to) = if a.is_empty() {
                        (&mut b, &mut a)
                    } else {
                        (&mut a, &mut b)
                    };
                    if let Some(x) = from.pop() {
                        to.push(x);
                    }
                }
                out.push((t, Fault::Partition { groups: vec![a, b] }));
                out.push((end, Fault::HealAll));
            }
            1 if nodes > 1 => {
                let other = (node + 1 + rng.index(nodes - 1)) % nodes;
                out.push((
                    t,
                    Fault::Cut {
                        from: node,
                        to: other,
                    },
                ));
                out.push((
                    end,
                    Fault::Heal {
                        from: node,
                        to: other,
                    },
                ));
            }
            2 if nodes > 1 => {
                out.push((t, Fault::Isolate { node }));
                out.push((end, Fault::HealAll));
            }
            3 => {
                let down = rng.range(p.down_min, p.down_max);
                out.push((t, Fault::Kill { node }));
                out.push(((t + down).min(p.fault_end), Fault::Restart { node }));
            }
            4 => {
                let loss = p.loss_max * (rng.below(1_000) as f64 / 1_000.0);
                out.push((t, Fault::Loss { p: loss }));
                out.push((end, Fault::ResetLinks));
            }
            5 => {
                let dup = p.duplicate_max * (rng.below(1_000) as f64 / 1_000.0);
                out.push((t, Fault::Duplicate { p: dup }));
                out.push((end, Fault::ResetLinks));
            }
            6 => {
                let max = rng.range(20, p.spike_max.max(20));
                let target = if rng.chance(0.5) { Some(node) } else { None };
                out.push((
                    t,
                    Fault::Latency {
                        node: target,
                        min: max / 4,
                        max,
                    },
                ));
                out.push((end, Fault::ResetLinks));
            }
            7 => {
                if nodes > 1 && rng.chance(0.5) {
                    out.push((t, Fault::IsolateLeader));
                    out.push((end, Fault::HealAll));
                } else {
                    out.push((t, Fault::KillLeader));
                    let down = rng.range(p.down_min, p.down_max);
                    out.push(((t + down).min(p.fault_end), Fault::RestartAll));
                }
            }
            8 if nodes > 1 => {
                let away = rng.range(p.lag_min, p.lag_max);
                let back = (t + away).min(p.fault_end);
                if rng.chance(0.5) {
                    out.push((t, Fault::IsolateFollower));
                    out.push((back, Fault::HealAll));
                } else {
                    out.push((t, Fault::KillFollower));
                    out.push((back, Fault::RestartAll));
                }
            }
            // Faults between nodes mean nothing in a one-node cluster.
            _ => {}
        }
        t += rng.range(p.gap_min.max(1), p.gap_max.max(1));
    }
    out.push((p.fault_end, Fault::HealAll));
    out.push((p.fault_end, Fault::ResetLinks));
    out.push((p.fault_end, Fault::RestartAll));
    out.sort_by_key(|(t, _)| *t);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Stream;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn schedules_are_reproducible_sorted_and_end_healed() {
        let p = FaultProfile::default();
        let a = random_schedule(&mut SimRng::new(3, Stream::Schedule), 5, &p);
        let b = random_schedule(&mut SimRng::new(3, Stream::Schedule), 5, &p);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.iter().all(|(t, _)| *t <= p.fault_end));
        let tail: Vec<&Fault> = a[a.len() - 3..].iter().map(|(_, f)| f).collect();
        assert_eq!(
            tail,
            [&Fault::HealAll, &Fault::ResetLinks, &Fault::RestartAll]
        );
        // Every kill is followed by a restart of the same node.
        for (i, (t, f)) in a.iter().enumerate() {
            if let Fault::Kill { node } = f {
                assert!(
                    a[i..].iter().any(|(t2, g)| t2 >= t
                        && matches!(g, Fault::Restart { node: n } | Fault::Kill { node: n } if n == node)
                        || *g == Fault::RestartAll),
                    "kill of {node} never undone"
                );
            }
        }
        assert!(a.len() > 6, "a 3 s window draws several faults: {a:?}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_kind_occurs_across_seeds() {
        let p = FaultProfile::default();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..30 {
            for (_, f) in random_schedule(&mut SimRng::new(seed, Stream::Schedule), 3, &p) {
                kinds.insert(f.to_string().split(' ').next().unwrap_or("").to_string());
            }
        }
        for k in [
            "partition",
            "cut",
            "heal",
            "isolate",
            "kill",
            "restart",
            "loss",
            "duplicate",
            "latency",
            "heal_all",
            "reset_links",
            "restart_all",
            "kill_follower",
            "isolate_follower",
        ] {
            assert!(kinds.contains(k), "missing {k}: {kinds:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn one_node_clusters_only_get_node_faults() {
        let p = FaultProfile::default();
        for seed in 0..10 {
            for (_, f) in random_schedule(&mut SimRng::new(seed, Stream::Schedule), 1, &p) {
                assert!(
                    !matches!(
                        f,
                        Fault::Partition { .. }
                            | Fault::Cut { .. }
                            | Fault::Isolate { .. }
                            | Fault::IsolateFollower
                            | Fault::KillFollower
                    ),
                    "{f}"
                );
            }
        }
    }
}
