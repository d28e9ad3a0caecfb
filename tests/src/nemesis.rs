//! The nemesis of the Jepsen-style suite ([`crate::jepsen`]): seeded faults against a real
//! cluster, one at a time — apply, hold, revert, pause — drawn from:
//!
//! - `kill`: kill -9 a random member or the leader, restart it after the hold;
//! - `pause`: SIGSTOP a random member or the leader, SIGCONT after the hold;
//! - `isolate`: cut every link of a random member or the leader;
//! - `majority_minority`: split the members in two, the leader on the side drawn;
//! - `one_way`: cut one direction of a link (half the time the leader's outgoing links);
//! - `bridge`: two halves that only a bridge node connects;
//! - `latency` and `loss`: on every link;
//! - `transfer_leader`: a leadership transfer to the voter the leader picks;
//! - `membership`: the next step of a cycle add learner → promote → remove or replace (the
//!   voters stay between N and N+1; a removed or replaced node is killed);
//! - `failpoint`: one of kvserver's failpoints on a random member or the leader (the cluster
//!   runs `kvserver-failpoints`): an I/O error at the log's fsync (before or after it), at a
//!   snapshot's save or before applying, which must stop the node cleanly (it answers 503
//!   `unavailable`; killed and restarted after the hold), a slow fsync, or messages dropped
//!   before sending (cleared after the hold).
//!
//! Links are proxied between the first N nodes only (those the cluster started with); nodes
//! added by membership changes talk to the others directly, so partitions leave them whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use raftkv_core::sim::{SimRng, Stream};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::Cluster;

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// kill -9, then restart.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Every link of one node cut.
    Isolate,
    /// Majority and minority, the leader on either side.
    MajorityMinority,
    /// One direction of links cut.
    OneWay,
    /// Two halves joined by one node.
    Bridge,
    /// Delay on every link.
    Latency,
    /// Loss on every link.
    Loss,
    /// A leadership transfer.
    TransferLeader,
    /// A membership change.
    Membership,
    /// A failpoint of `kvserver-failpoints` ([`FAILPOINTS`]).
    Failpoint,
}

impl FaultKind {
    /// Every kind, each with the name `RAFTKV_JEPSEN_FAULTS` knows it by.
    pub const NAMED: &[(&str, FaultKind)] = &[
        ("kill", FaultKind::Kill),
        ("pause", FaultKind::Pause),
        ("isolate", FaultKind::Isolate),
        ("majority-minority", FaultKind::MajorityMinority),
        ("one-way", FaultKind::OneWay),
        ("bridge", FaultKind::Bridge),
        ("latency", FaultKind::Latency),
        ("loss", FaultKind::Loss),
        ("transfer-leader", FaultKind::TransferLeader),
        ("membership", FaultKind::Membership),
        ("failpoint", FaultKind::Failpoint),
    ];
}

/// The failpoints the nemesis draws from: name, actions, and whether the node stops on it
/// (an I/O error) and must be restarted, rather than only slowed or made lossy.
pub const FAILPOINTS: &[(&str, &str, bool)] = &[
    ("log-before-fsync", "return", true),
    ("log-after-fsync", "return", true),
    ("snapshot-before-save", "return", true),
    ("before-apply", "return", true),
    ("log-before-fsync", "sleep(150)", false),
    ("before-send", "10%return", false),
];

/// What the nemesis may do, and how often.
#[derive(Clone, Debug)]
pub struct NemesisConfig {
    /// Fault kinds with their weights.
    pub kinds: Vec<(FaultKind, u64)>,
    /// How long a fault is held, ms (low, high).
    pub hold_ms: (u64, u64),
    /// The pause between faults, ms (low, high).
    pub gap_ms: (u64, u64),
}

impl NemesisConfig {
    /// Every kind of fault.
    pub fn all() -> Self {
        use FaultKind::*;
        NemesisConfig {
            kinds: vec![
                (Kill, 3),
                (Pause, 2),
                (Isolate, 3),
                (MajorityMinority, 2),
                (OneWay, 2),
                (Bridge, 1),
                (Latency, 1),
                (Loss, 1),
                (TransferLeader, 2),
                (Membership, 2),
                (Failpoint, 2),
            ],
            hold_ms: (1_000, 4_000),
            gap_ms: (300, 1_500),
        }
    }

    /// Only the kinds named in `names` (comma-separated, as in [`FaultKind::NAMED`]), with
    /// their weights in [`all`](Self::all); an unknown name is an error that lists the known.
    pub fn only(names: &str) -> Result<Self, String> {
        let mut wanted = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match FaultKind::NAMED.iter().find(|(n, _)| *n == name) {
                Some((_, kind)) => wanted.push(*kind),
                None => {
                    let known: Vec<&str> = FaultKind::NAMED.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown fault kind {name:?}; known: {}",
                        known.join(", ")
                    ));
                }
            }
        }
        let mut config = Self::all();
        config.kinds.retain(|(kind, _)| wanted.contains(kind));
        if config.kinds.is_empty() {
            return Err(format!("no fault kind in {names:?}"));
        }
        Ok(config)
    }

    /// Partitions only (the stale-read proof).
    pub fn partitions() -> Self {
        NemesisConfig {
            kinds: vec![(FaultKind::Isolate, 3), (FaultKind::MajorityMinority, 1)],
            hold_ms: (2_000, 4_000),
            gap_ms: (300, 800),
        }
    }
}

/// The nemesis: owns the cluster while faults run.
pub struct Nemesis {
    rng: SimRng,
    cfg: NemesisConfig,
    cluster: Cluster,
    /// Client addresses of the members, shared with the clients.
    addrs: Arc<RwLock<Vec<String>>>,
    /// Positions of the voters.
    members: Vec<usize>,
    /// Nodes whose links are proxied (the first N).
    proxied: usize,
    /// A learner added and not promoted yet.
    learner: Option<usize>,
    faults: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    leaders: BTreeSet<(u64, String)>,
    http: reqwest::Client,
    /// When the nemesis began: its log's clock.
    t0: Instant,
}

impl Nemesis {
    /// A nemesis drawing from `seed`'s schedule stream.
    pub fn new(
        seed: u64,
        cfg: NemesisConfig,
        cluster: Cluster,
        addrs: Arc<RwLock<Vec<String>>>,
    ) -> Self {
        let n = cluster.size();
        Nemesis {
            rng: SimRng::new(seed, Stream::Schedule),
            cfg,
            cluster,
            addrs,
            members: (0..n).collect(),
            proxied: n,
            learner: None,
            faults: BTreeMap::new(),
            refused: BTreeMap::new(),
            leaders: BTreeSet::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .unwrap_or_default(),
            t0: Instant::now(),
        }
    }

    /// The voters' positions.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// (faults by kind, refused faults by kind, leader changes observed).
    pub fn figures(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>, u64) {
        (
            self.faults.clone(),
            self.refused.clone(),
            self.leaders.len().saturating_sub(1) as u64,
        )
    }

    fn count(&mut self, kind: &str) {
        *self.faults.entry(kind.to_string()).or_default() += 1;
    }

    fn refuse(&mut self, kind: &str, why: &str) {
        eprintln!("nemesis: {kind} refused or skipped: {why}");
        *self.refused.entry(kind.to_string()).or_default() += 1;
    }

    fn publish(&self) {
        let addrs: Vec<String> = self
            .members
            .iter()
            .map(|&i| self.cluster.addr(i).to_string())
            .collect();
        if let Ok(mut a) = self.addrs.write() {
            *a = addrs;
        }
    }

    /// The leader among the members, as their statuses say (the highest term's claim); notes
    /// every (term, leader) seen.
    async fn leader(&mut self) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (i, s) in self.cluster.statuses().await {
            if s["role"] == "leader" {
                let term = s["term"].as_u64().unwrap_or(0);
                self.leaders
                    .insert((term, s["id"].as_str().unwrap_or("").to_string()));
                if self.members.contains(&i) && best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|b| b.1)
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.rng.index(from.len())]
    }

    fn proxied_members(&self) -> Vec<usize> {
        self.members
            .iter()
            .copied()
            .filter(|&i| i < self.proxied)
            .collect()
    }

    fn ms(&mut self, (lo, hi): (u64, u64)) -> Duration {
        Duration::from_millis(self.rng.range(lo, hi))
    }

    /// One fault: a gap, then a fault drawn and held (not past `until` by much), then reverted.
    pub async fn step(&mut self, until: Instant) {
        let gap = self.ms(self.cfg.gap_ms);
        tokio::time::sleep(gap).await;
        let weights: Vec<u64> = self.cfg.kinds.iter().map(|k| k.1).collect();
        let kind = self.cfg.kinds[self.rng.weighted(&weights)].0;
        let hold = self.ms(self.cfg.hold_ms);
        let on_leader = self.rng.chance(0.5);
        let leader = self.leader().await;
        let target = match (on_leader, leader) {
            (true, Some(l)) => l,
            _ => {
                let m = self.members.clone();
                self.pick(&m)
            }
        };
        let who = if Some(target) == leader {
            "leader"
        } else {
            "random"
        };
        let hold_until = (Instant::now() + hold).min(until.max(Instant::now()));
        eprintln!(
            "nemesis {:>7.1} s: {kind:?} on {} ({}), hold {} ms",
            self.t0.elapsed().as_secs_f64(),
            self.cluster.id(target),
            if Some(target) == leader {
                "leader"
            } else {
                "random"
            },
            hold.as_millis()
        );
        match kind {
            FaultKind::Kill => {
                if let Err(e) = self.cluster.kill(target) {
                    return self.refuse("kill", &e);
                }
                self.count(&format!("kill ({who})"));
                tokio::time::sleep_until(hold_until).await;
                if let Err(e) = self.cluster.restart(target).await {
                    eprintln!("nemesis: restarting {}: {e}", self.cluster.id(target));
                }
            }
            FaultKind::Pause => {
                if let Err(e) = self.cluster.pause(target) {
                    return self.refuse("pause", &e);
                }
                self.count(&format!("pause ({who})"));
                tokio::time::sleep_until(hold_until).await;
                if let Err(e) = self.cluster.resume(target) {
                    eprintln!("nemesis: resuming {}: {e}", self.cluster.id(target));
                }
            }
            FaultKind::Isolate => {
                if target >= self.proxied {
                    return self.refuse("isolate", "target's links are not proxied");
                }
                self.cluster.isolate(target);
                self.count(&format!("isolate ({who})"));
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::MajorityMinority => {
                let mut side = self.proxied_members();
                if side.len() < 3 {
                    return self.refuse("majority_minority", "fewer than 3 proxied members");
                }
                // Shuffle, then the first floor(n/2) are the minority.
                for i in (1..side.len()).rev() {
                    let j = self.rng.index(i + 1);
                    side.swap(i, j);
                }
                let minority_size = side.len() / 2;
                let leader_in_minority = self.rng.chance(0.5);
                if let Some(l) = leader.filter(|l| side.contains(l)) {
                    let pos = side.iter().position(|&x| x == l).unwrap_or(0);
                    let want = if leader_in_minority {
                        0
                    } else {
                        side.len() - 1
                    };
                    side.swap(pos, want);
                }
                let (minority, majority) = side.split_at(minority_size);
                for &a in minority {
                    for &b in majority {
                        self.cluster.cut_between(a, b);
                    }
                }
                let side_name = if leader_in_minority {
                    "leader in minority"
                } else {
                    "leader in majority"
                };
                self.count(&format!("majority/minority ({side_name})"));
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::OneWay => {
                let p = self.proxied_members();
                if p.len() < 2 || target >= self.proxied {
                    return self.refuse("one_way", "no proxied pair");
                }
                // The target's outgoing links (to every other member), or one random link.
                let all = self.rng.chance(0.5);
                let others: Vec<usize> = p.iter().copied().filter(|&x| x != target).collect();
                let to_cut = if all {
                    others
                } else {
                    vec![self.pick(&others)]
                };
                for to in &to_cut {
                    if let Some(l) = self.cluster.link(target, *to) {
                        l.cut();
                    }
                }
                self.count(&format!("one-way cut ({who} outgoing)"));
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::Bridge => {
                let mut p = self.proxied_members();
                if p.len() < 3 {
                    return self.refuse("bridge", "fewer than 3 proxied members");
                }
                for i in (1..p.len()).rev() {
                    let j = self.rng.index(i + 1);
                    p.swap(i, j);
                }
                // p[0] is the bridge; the rest split in two halves.
                let rest = &p[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                for &x in a {
                    for &y in b {
                        self.cluster.cut_between(x, y);
                    }
                }
                self.count("bridge");
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::Latency => {
                let d = Duration::from_millis(self.rng.range(5, 80));
                for (_, l) in self.cluster.links() {
                    l.set_delay(d);
                }
                self.count("latency");
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::Loss => {
                let p = self.rng.range(5, 30) as f64 / 1000.0;
                for (_, l) in self.cluster.links() {
                    l.set_loss(p);
                }
                self.count("loss");
                tokio::time::sleep_until(hold_until).await;
                self.cluster.heal_all();
            }
            FaultKind::TransferLeader => {
                let Some(l) = leader else {
                    return self.refuse("transfer_leader", "no leader");
                };
                match self.admin(l, "/cluster/transfer-leader", json!({})).await {
                    Ok(_) => self.count("transfer leader"),
                    Err(e) => self.refuse("transfer_leader", &e),
                }
            }
            FaultKind::Membership => self.membership(leader).await,
            FaultKind::Failpoint => self.failpoint(target, who, hold_until).await,
        }
    }

    /// Turns a drawn failpoint on at `target`, holds it, and reverts it: a node stopped by its
    /// I/O error is killed and restarted (a stopped node never resumes on its own), the others
    /// have the point cleared. Counted by point, action and whether the node was seen stopped
    /// cleanly (503 `unavailable`) at the end of the hold.
    async fn failpoint(&mut self, target: usize, who: &str, hold_until: Instant) {
        let (name, actions, stops) = FAILPOINTS[self.rng.index(FAILPOINTS.len())];
        let url = format!(
            "http://{}/debug/failpoints/{name}",
            self.cluster.addr(target)
        );
        match self.http.put(&url).body(actions).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                let why = format!("PUT {url}: {}", r.status());
                return self.refuse("failpoint", &why);
            }
            Err(e) => return self.refuse("failpoint", &format!("PUT {url}: {e}")),
        }
        tokio::time::sleep_until(hold_until).await;
        if !stops {
            self.count(&format!("failpoint {name}={actions} ({who})"));
            if let Err(e) = self.http.delete(&url).send().await {
                eprintln!(
                    "nemesis: clearing {name} at {}: {e}",
                    self.cluster.id(target)
                );
            }
            return;
        }
        let probe = format!(
            "http://{}/kv/nemesis-probe?consistency=stale",
            self.cluster.addr(target)
        );
        let stopped = match self.http.get(&probe).send().await {
            Ok(r) if r.status().as_u16() == 503 => {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                v["err_code"] == "unavailable"
            }
            _ => false,
        };
        let outcome = if stopped {
            "stopped with 503 unavailable"
        } else {
            "not reached in the hold"
        };
        self.count(&format!("failpoint {name}={actions} ({who}, {outcome})"));
        if let Err(e) = self.cluster.kill(target) {
            eprintln!("nemesis: killing {}: {e}", self.cluster.id(target));
        }
        if let Err(e) = self.cluster.restart(target).await {
            eprintln!("nemesis: restarting {}: {e}", self.cluster.id(target));
        }
    }

    /// POSTs an admin request at member `at` (following redirects): the body on 200.
    async fn admin(&self, at: usize, path: &str, body: Value) -> Result<Value, String> {
        let mut url = format!("http://{}{path}", self.cluster.addr(at));
        for _ in 0..5 {
            let resp = self
                .http
                .request(Method::POST, &url)
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            let status = resp.status().as_u16();
            if status == 307
                && let Some(loc) = resp.headers().get("location").and_then(|l| l.to_str().ok())
            {
                url = loc.to_string();
                continue;
            }
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            return if status == 200 {
                Ok(v)
            } else {
                Err(format!("POST {path}: {status} {v}"))
            };
        }
        Err(format!("POST {path}: too many redirects"))
    }

    /// Re-reads the voters from the leader's configuration.
    async fn sync_members(&mut self) {
        let Some(l) = self.leader().await else {
            return;
        };
        let url = format!("http://{}/cluster", self.cluster.addr(l));
        let Ok(resp) = self.http.get(&url).send().await else {
            return;
        };
        let Ok(v) = resp.json::<Value>().await else {
            return;
        };
        let Some(voters) = v["voters"].as_array() else {
            return;
        };
        let ids: Vec<&str> = voters.iter().filter_map(|x| x.as_str()).collect();
        let members: Vec<usize> = (0..self.cluster.size())
            .filter(|&i| ids.contains(&self.cluster.id(i)))
            .collect();
        if !members.is_empty() && members != self.members {
            eprintln!("nemesis: members are now {ids:?}");
            self.members = members;
            self.publish();
        }
    }

    /// The next step of the membership cycle.
    async fn membership(&mut self, leader: Option<usize>) {
        let Some(l) = leader else {
            return self.refuse("membership", "no leader");
        };
        if let Some(learner) = self.learner {
            // Promote, retrying while it catches up.
            let id = self.cluster.id(learner).to_string();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match self.admin(l, "/cluster/promote", json!({"id": id})).await {
                    Ok(_) => {
                        self.count("membership: promote");
                        self.learner = None;
                        self.members.push(learner);
                        self.publish();
                        return;
                    }
                    Err(e) if Instant::now() >= deadline => {
                        self.refuse("membership: promote", &e);
                        self.sync_members().await;
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                }
            }
        }
        if self.members.len() <= self.proxied {
            // Add a learner.
            let i = match self.cluster.add_node().await {
                Ok(i) => i,
                Err(e) => return self.refuse("membership: add", &e),
            };
            let (id, addr) = (
                self.cluster.id(i).to_string(),
                self.cluster.peer_addr(i).to_string(),
            );
            match self
                .admin(l, "/cluster/learners", json!({"id": id, "addr": addr}))
                .await
            {
                Ok(_) => {
                    self.count("membership: add learner");
                    self.learner = Some(i);
                }
                Err(e) => {
                    self.refuse("membership: add", &e);
                    let _ = self.cluster.kill(i);
                }
            }
            return;
        }
        // Nodes added here are not proxied, so each proxied member removed or replaced leaves
        // the partitions fewer links to cut: a 30-minute run ran out of proxied pairs half way.
        // A proxied member is a victim only while more than `keep` remain (3 of 5, 1 of 3).
        let keep = self.proxied.saturating_sub(2).min(3);
        let proxied_left = self.proxied_members().len();
        let m: Vec<usize> = self
            .members
            .iter()
            .copied()
            .filter(|&x| x >= self.proxied || proxied_left > keep)
            .collect();
        if m.is_empty() {
            return self.refuse(
                "membership",
                "no member to remove but the proxied ones kept",
            );
        }
        let victim = self.pick(&m);
        let victim_id = self.cluster.id(victim).to_string();
        if self.rng.chance(0.5) {
            match self
                .admin(l, "/cluster/remove", json!({"id": victim_id}))
                .await
            {
                Ok(_) => {
                    self.count("membership: remove");
                    self.members.retain(|&x| x != victim);
                    self.publish();
                    let _ = self.cluster.kill(victim);
                }
                Err(e) => {
                    self.refuse("membership: remove", &e);
                    self.sync_members().await;
                }
            }
        } else {
            let i = match self.cluster.add_node().await {
                Ok(i) => i,
                Err(e) => return self.refuse("membership: replace", &e),
            };
            let (id, addr) = (
                self.cluster.id(i).to_string(),
                self.cluster.peer_addr(i).to_string(),
            );
            let body = json!({"remove": victim_id, "add": {"id": id, "addr": addr}});
            match self.admin(l, "/cluster/replace", body).await {
                Ok(_) => {
                    self.count("membership: replace");
                    self.members.retain(|&x| x != victim);
                    self.members.push(i);
                    self.publish();
                    let _ = self.cluster.kill(victim);
                }
                Err(e) => {
                    self.refuse("membership: replace", &e);
                    self.sync_members().await;
                    if !self.members.contains(&i) {
                        let _ = self.cluster.kill(i);
                    }
                }
            }
        }
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The cluster, to change.
    pub fn cluster_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// The quiet phase's start: every link healed, every member running, the voters re-read.
    pub async fn quiet(&mut self) -> Result<(), String> {
        let log = |what: &str| {
            eprintln!(
                "nemesis {:>7.1} s: quiet phase: {what}",
                self.t0.elapsed().as_secs_f64()
            )
        };
        log("healing every link, restarting every member");
        self.cluster.heal_all();
        for i in self.members.clone() {
            if !self.cluster.is_running(i) {
                self.cluster.restart(i).await?;
            }
        }
        self.cluster
            .wait_for_leader(Duration::from_secs(60))
            .await?;
        eprintln!(
            "nemesis {:>7.1} s: quiet phase: a leader",
            self.t0.elapsed().as_secs_f64()
        );
        self.sync_members().await;
        for i in self.members.clone() {
            if !self.cluster.is_running(i) {
                self.cluster.restart(i).await?;
            }
        }
        Ok(())
    }
}
