//! A randomized, seeded, Jepsen-style run against a real cluster: concurrent clients doing every
//! kind of operation at random nodes while a nemesis injects faults ([`crate::nemesis`]), then a
//! quiet phase (heal, restart, wait for a leader, read everything), then the checks.
//!
//! The seed drives every choice of the clients and the nemesis: the same seed replays the same
//! schedule (real timing differs from run to run, so the interleaving does not replay exactly).
//!
//! # The history
//!
//! Every operation is recorded in the JSON-lines format of `core/src/sim/history.rs` (its doc
//! describes every field, the multi-key operations `mput`, `mdelete`, `mget` included), with
//! times in microseconds since the run began, from one monotonic clock ([`Instant`]) shared by
//! every client:
//!
//! - `invoke` is taken before the first attempt, `complete` when the definite answer arrived;
//! - a write without a definite answer is resent with the same `(client_id, seq)` until one
//!   comes (the dedupe table answers a resend with the original outcome), so `unknown` is left
//!   only for writes still unanswered when the run gave up on them;
//! - `fail` only when the write certainly did not apply: every attempt was refused before it
//!   reached the log (`not_leader`, `overloaded`, `transferring`, a 4xx other than a cas
//!   mismatch) or never reached a node (connection refused); one timed-out attempt makes it
//!   `unknown`;
//! - reads are not retried: an unanswered read is `fail` (refused) or `unknown` (timed out),
//!   and constrains nothing;
//! - reads at `stale` consistency carry `"stale": true` (they may be old by design) unless the
//!   run is told to pretend they are linearizable ([`JepsenConfig::force_stale`]);
//! - the quiet phase's final readindex reads are in the history too (client `final`).
//!
//! # The checks
//!
//! - linearizability of everything but stale reads, by core's checker
//!   ([`raftkv_core::sim::linearizability`]) and by `scripts/check_history.py`;
//! - stale reads are never invented (each value read was written by an operation invoked
//!   before the read completed);
//! - durability: every acknowledged write's value is its key's final value, or was overwritten
//!   by a later operation (one not completed before the write was invoked);
//! - liveness: after the quiet phase a leader is elected, and every member applies the same
//!   index and serves the final values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raftkv_core::sim::history::CasResult;
use raftkv_core::sim::{History, HistoryOp, OpKind, OpStatus, SimRng, Stream, linearizability};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::{Cluster, ClusterConfig};
use crate::nemesis::{Nemesis, NemesisConfig};

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct JepsenConfig {
    /// Drives every random choice.
    pub seed: u64,
    /// Nodes at the start (n1..nN, every link proxied).
    pub nodes: usize,
    /// How long the nemesis injects faults.
    pub duration: Duration,
    /// Concurrent clients, each one operation at a time.
    pub clients: usize,
    /// Key families: `f{i}k{j}`, three keys each; multi-key operations stay within a family, so
    /// each family is one component for the checkers.
    pub families: usize,
    /// Reads only at `stale` consistency, and recorded as linearizable: the proof that the
    /// checks can fail (with partitions, stale reads at followers are not linearizable).
    pub force_stale: bool,
    /// What the nemesis may do.
    pub nemesis: NemesisConfig,
    /// Where to write the history (default: a file under the system's temp dir, named by the
    /// seed).
    pub history_path: Option<PathBuf>,
    /// `RAFTKV_JEPSEN_FAULTS` when the run's nemesis was narrowed by it (kept for the replay
    /// command).
    pub faults: Option<String>,
}

/// Keys per family.
pub const FAMILY_KEYS: usize = 3;

impl JepsenConfig {
    /// A run of `nodes` nodes for `secs` seconds, overridden by `RAFTKV_JEPSEN_SEED`,
    /// `RAFTKV_JEPSEN_NODES`, `RAFTKV_JEPSEN_SECS`, `RAFTKV_JEPSEN_CLIENTS`,
    /// `RAFTKV_JEPSEN_HISTORY` and `RAFTKV_JEPSEN_FAULTS` (the fault kinds to draw from, e.g.
    /// `failpoint,kill`; default all). Without a seed, one is drawn from the clock (and
    /// printed). `Err` names a bad `RAFTKV_JEPSEN_FAULTS`.
    pub fn from_env(nodes: usize, secs: u64) -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let num = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let clock_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000)
            .unwrap_or(1);
        let nodes = num("RAFTKV_JEPSEN_NODES", nodes as u64) as usize;
        let faults = var("RAFTKV_JEPSEN_FAULTS");
        let nemesis = match &faults {
            Some(names) => {
                NemesisConfig::only(names).map_err(|e| format!("RAFTKV_JEPSEN_FAULTS: {e}"))?
            }
            None => NemesisConfig::all(),
        };
        Ok(JepsenConfig {
            seed: num("RAFTKV_JEPSEN_SEED", clock_seed),
            nodes,
            duration: Duration::from_secs(num("RAFTKV_JEPSEN_SECS", secs)),
            clients: num("RAFTKV_JEPSEN_CLIENTS", 5) as usize,
            families: 3,
            force_stale: false,
            nemesis,
            history_path: var("RAFTKV_JEPSEN_HISTORY").map(PathBuf::from),
            faults,
        })
    }

    /// The command that replays this run's schedule.
    pub fn replay_command(&self, test: &str) -> String {
        let faults = match &self.faults {
            Some(f) => format!("RAFTKV_JEPSEN_FAULTS={f} "),
            None => String::new(),
        };
        format!(
            "{faults}RAFTKV_JEPSEN_SEED={} RAFTKV_JEPSEN_NODES={} RAFTKV_JEPSEN_SECS={} \
             cargo test -p raftkv-tests --test jepsen {test} -- --nocapture --include-ignored --exact",
            self.seed,
            self.nodes,
            self.duration.as_secs()
        )
    }
}

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The check.
    pub name: &'static str,
    /// `Err`: why it failed, naming the offending operations.
    pub outcome: Result<String, String>,
}

/// What a run did and found.
#[derive(Debug)]
pub struct Report {
    /// The run's configuration.
    pub config: JepsenConfig,
    /// Every operation.
    pub history: History,
    /// Where the history was written.
    pub history_file: PathBuf,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Faults the nemesis tried that the cluster refused or that could not be set up.
    pub faults_refused: BTreeMap<String, u64>,
    /// Distinct (term, leader) pairs observed, minus the first.
    pub leader_changes: u64,
    /// Each check.
    pub verdicts: Vec<Verdict>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl Report {
    /// Whether the named check passed.
    pub fn passed(&self, name: &str) -> bool {
        self.verdicts
            .iter()
            .any(|v| v.name == name && v.outcome.is_ok())
    }

    /// Whether every check passed.
    pub fn all_passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.outcome.is_ok())
    }

    /// Operations by kind and status: `kind -> (ok, fail, unknown)`.
    pub fn ops_by_kind(&self) -> BTreeMap<String, (usize, usize, usize)> {
        let mut out: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for o in &self.history.ops {
            let mut kind = format!("{:?}", o.op).to_lowercase();
            if o.stale {
                kind.push_str(" (stale)");
            }
            let e = out.entry(kind).or_default();
            match o.status {
                OpStatus::Ok => e.0 += 1,
                OpStatus::Fail => e.1 += 1,
                OpStatus::Unknown => e.2 += 1,
            }
        }
        out
    }

    /// A human summary: figures and verdicts.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "jepsen run: seed {}, {} nodes, {} s of faults, {} clients, {:.1} s wall time\n",
            self.config.seed,
            self.config.nodes,
            self.config.duration.as_secs(),
            self.config.clients,
            self.elapsed.as_secs_f64()
        );
        let (ok, fail, unknown) = self.history.counts();
        s.push_str(&format!(
            "operations: {} ({ok} ok, {fail} fail, {unknown} unknown)\n",
            self.history.ops.len()
        ));
        for (kind, (ok, fail, unknown)) in self.ops_by_kind() {
            s.push_str(&format!(
                "  {kind:<16} ok {ok:>6}  fail {fail:>5}  unknown {unknown:>4}\n"
            ));
        }
        s.push_str("faults:");
        for (k, n) in &self.faults {
            s.push_str(&format!(" {k} {n},"));
        }
        s.push_str("\nrefused or skipped faults:");
        for (k, n) in &self.faults_refused {
            s.push_str(&format!(" {k} {n},"));
        }
        s.push_str(&format!("\nleader changes: {}\n", self.leader_changes));
        for v in &self.verdicts {
            match &v.outcome {
                Ok(m) => s.push_str(&format!("PASS {}: {m}\n", v.name)),
                Err(m) => s.push_str(&format!("FAIL {}: {m}\n", v.name)),
            }
        }
        s.push_str(&format!("history: {}\n", self.history_file.display()));
        s
    }
}

/// What clients share.
struct Shared {
    started: Instant,
    /// Client addresses of the current members (the nemesis updates it on membership changes).
    addrs: Arc<RwLock<Vec<String>>>,
    stop: AtomicBool,
    history: Mutex<Vec<HistoryOp>>,
    done: AtomicU64,
}

impl Shared {
    fn now(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    fn addrs(&self) -> Vec<String> {
        self.addrs.read().map(|a| a.clone()).unwrap_or_default()
    }

    fn record(&self, op: HistoryOp) {
        if let Ok(mut h) = self.history.lock() {
            h.push(op);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// One attempt's outcome.
enum Attempt {
    /// An HTTP answer.
    Answer(u16, Value),
    /// The request reached no node (connection refused): it did nothing.
    NotSent,
    /// Timed out or broke after it was sent: it may have done anything.
    Unknown,
}

/// Sends one request to `addr`, following 307s.
async fn send(
    http: &reqwest::Client,
    addr: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Attempt {
    let mut url = format!("http://{addr}{path}");
    for _ in 0..crate::client::MAX_REDIRECTS {
        let mut req = http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Attempt::NotSent,
            Err(_) => return Attempt::Unknown,
        };
        let status = resp.status().as_u16();
        if status == 307
            && let Some(loc) = resp.headers().get("location").and_then(|l| l.to_str().ok())
        {
            url = loc.to_string();
            continue;
        }
        return match resp.json().await {
            Ok(body) => Attempt::Answer(status, body),
            Err(_) if status >= 500 => Attempt::Unknown,
            Err(_) => Attempt::Answer(status, Value::Null),
        };
    }
    // Redirected in circles (leaders changing): every hop refused the request.
    Attempt::NotSent
}

/// Refusals that say the write never reached the log.
fn refused_before_the_log(status: u16, body: &Value) -> bool {
    let code = body["err_code"].as_str().unwrap_or("");
    (400..500).contains(&status) || matches!(code, "not_leader" | "overloaded" | "transferring")
}

/// One client: its own id and seq, one operation at a time, every choice from its stream.
async fn client_loop(c: usize, cfg: JepsenConfig, shared: Arc<Shared>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .unwrap_or_default();
    let mut rng = SimRng::new(cfg.seed, Stream::Client(c as u32));
    let name = format!("c{c}");
    let client_id = format!("jepsen-{}-{}-{name}", cfg.seed, std::process::id());
    let mut seq = 0u64;
    let mut n = 0u64;
    // What this client last saw at each key: the cas's expectation.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let family = rng.index(cfg.families);
        let keys: Vec<String> = (0..FAMILY_KEYS).map(|j| format!("f{family}k{j}")).collect();
        let key = keys[rng.index(FAMILY_KEYS)].clone();
        // The family's keys, or two of them, in order.
        let mut subset = keys.clone();
        if rng.chance(0.5) {
            subset.remove(rng.index(FAMILY_KEYS));
        }
        let value = format!("{name}-{n}");
        // put, get, cas, delete, mput, mdelete, mget
        let kind = rng.weighted(&[20, 25, 15, 5, 10, 5, 20]);
        let mut rec = HistoryOp::blank(&name, OpKind::Put, shared.now());
        let node_pick = rng.next_u64();
        if kind == 1 || kind == 6 {
            // A read, at a consistency level drawn for it.
            let level = if cfg.force_stale {
                "stale"
            } else {
                ["readindex", "lease", "stale"][rng.weighted(&[45, 30, 25])]
            };
            rec.stale = level == "stale" && !cfg.force_stale;
            let (method, path, body) = if kind == 1 {
                rec.op = OpKind::Get;
                rec.key = key.clone();
                (Method::GET, format!("/kv/{key}?consistency={level}"), None)
            } else {
                rec.op = OpKind::Mget;
                rec.keys = Some(subset.clone());
                (
                    Method::POST,
                    format!("/kv/mget?consistency={level}"),
                    Some(json!({"keys": subset})),
                )
            };
            if rec.op == OpKind::Get {
                rec.value = Some(None);
            }
            let addrs = shared.addrs();
            if addrs.is_empty() {
                break;
            }
            let addr = &addrs[(node_pick % addrs.len() as u64) as usize];
            rec.invoke = shared.now();
            match send(&http, addr, method, &path, body.as_ref()).await {
                Attempt::Answer(200, b) if rec.op == OpKind::Get => {
                    let v = b["value"].as_str().map(str::to_string);
                    last.insert(key.clone(), v.clone().unwrap_or_default());
                    rec.value = Some(v);
                    rec.status = OpStatus::Ok;
                }
                Attempt::Answer(404, b)
                    if rec.op == OpKind::Get && b["err_code"] == "not_found" =>
                {
                    last.insert(key.clone(), String::new());
                    rec.status = OpStatus::Ok;
                }
                Attempt::Answer(200, b) if rec.op == OpKind::Mget => {
                    let vs: BTreeMap<String, Option<String>> = subset
                        .iter()
                        .map(|k| (k.clone(), b["values"][k].as_str().map(str::to_string)))
                        .collect();
                    for (k, v) in &vs {
                        last.insert(k.clone(), v.clone().unwrap_or_default());
                    }
                    rec.values = Some(vs);
                    rec.status = OpStatus::Ok;
                }
                Attempt::Answer(..) | Attempt::NotSent => rec.status = OpStatus::Fail,
                Attempt::Unknown => rec.status = OpStatus::Unknown,
            }
            if rec.status == OpStatus::Ok {
                rec.complete = Some(shared.now());
            }
            shared.record(rec);
            continue;
        }
        seq += 1;
        let (method, path, body) = match kind {
            0 => {
                rec.key = key.clone();
                rec.value = Some(Some(value.clone()));
                let body = json!({"client_id": client_id, "seq": seq, "value": value});
                (Method::PUT, format!("/kv/{key}"), body)
            }
            2 => {
                rec.op = OpKind::Cas;
                rec.key = key.clone();
                let expected = last.get(&key).cloned().unwrap_or_default();
                rec.expected = Some(expected.clone());
                rec.new = Some(value.clone());
                let body = json!({"client_id": client_id, "seq": seq, "key": key,
                                  "expected": expected, "value": value});
                (Method::POST, "/kv/cas".to_string(), body)
            }
            3 => {
                rec.op = OpKind::Delete;
                rec.key = key.clone();
                let body = json!({"client_id": client_id, "seq": seq});
                (Method::DELETE, format!("/kv/{key}"), body)
            }
            4 => {
                rec.op = OpKind::Mput;
                rec.entries = Some(subset.iter().map(|k| (k.clone(), value.clone())).collect());
                let entries: Vec<Value> = subset
                    .iter()
                    .map(|k| json!({"key": k, "value": value}))
                    .collect();
                let body = json!({"client_id": client_id, "seq": seq, "entries": entries});
                (Method::POST, "/kv/mput".to_string(), body)
            }
            _ => {
                rec.op = OpKind::Mdelete;
                rec.keys = Some(subset.clone());
                let body = json!({"client_id": client_id, "seq": seq, "keys": subset});
                (Method::POST, "/kv/mdelete".to_string(), body)
            }
        };
        rec.invoke = shared.now();
        let mut ambiguous = false;
        let mut attempt = 0u64;
        // After the stop, a pending write gets this long to find its answer.
        let mut give_up: Option<Instant> = None;
        loop {
            let addrs = shared.addrs();
            if addrs.is_empty() {
                break;
            }
            let addr = &addrs[((node_pick + attempt) % addrs.len() as u64) as usize];
            attempt += 1;
            match send(&http, addr, method.clone(), &path, Some(&body)).await {
                Attempt::Answer(200, _) => {
                    rec.status = OpStatus::Ok;
                    if rec.op == OpKind::Cas {
                        rec.result = Some(CasResult::Ok);
                    }
                    for k in rec.all_keys() {
                        let v = if matches!(rec.op, OpKind::Delete | OpKind::Mdelete) {
                            String::new()
                        } else {
                            value.clone()
                        };
                        last.insert(k.to_string(), v);
                    }
                    break;
                }
                Attempt::Answer(409, b)
                    if rec.op == OpKind::Cas && b["err_code"] == "cas_failed" =>
                {
                    rec.status = OpStatus::Ok;
                    rec.result = Some(CasResult::Failed);
                    break;
                }
                Attempt::Answer(s, b) if (400..500).contains(&s) && s != 409 && !ambiguous => {
                    // Refused outright (a bug of this client, or of the server): never applied.
                    eprintln!("jepsen {name}: {} {path} refused: {s} {b}", method);
                    rec.status = OpStatus::Fail;
                    break;
                }
                Attempt::Answer(s, b) if refused_before_the_log(s, &b) => {}
                Attempt::NotSent => {}
                Attempt::Answer(..) | Attempt::Unknown => ambiguous = true,
            }
            if shared.stop.load(Ordering::Relaxed) {
                let deadline =
                    *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(20));
                if Instant::now() >= deadline {
                    rec.status = if ambiguous {
                        OpStatus::Unknown
                    } else {
                        OpStatus::Fail
                    };
                    break;
                }
            }
            // Pace the resends (any answer ends the loop).
            tokio::time::sleep(Duration::from_millis(25 + rng.below(50))).await;
        }
        if rec.status == OpStatus::Ok {
            rec.complete = Some(shared.now());
            if rec.op == OpKind::Cas && rec.result == Some(CasResult::Failed) {
                last.remove(&key);
            }
        }
        shared.record(rec);
    }
}

/// Acknowledged writes that are neither their key's final value nor overwritten by a later
/// operation (one that had not completed when the write was invoked): lost writes.
pub fn lost_writes<'a>(
    history: &'a History,
    finals: &BTreeMap<String, Option<String>>,
) -> Vec<&'a HistoryOp> {
    // Per key, the two latest completions (an unanswered write counts as completing at the end)
    // of writes that may have taken effect, with their positions: whether some write other
    // than `w` completed after `w` was invoked is then a lookup, not a scan of the history for
    // every write (hours for a 30-minute run's 441,000 operations).
    let mut latest: BTreeMap<&str, [Option<(u64, usize)>; 2]> = BTreeMap::new();
    for (i, o) in history.ops.iter().enumerate() {
        if o.status == OpStatus::Fail
            || (o.op == OpKind::Cas && o.result == Some(CasResult::Failed))
        {
            continue;
        }
        let done = o.complete.unwrap_or(u64::MAX);
        for (key, _) in o.writes() {
            let top = latest.entry(key).or_default();
            if top[0].is_none_or(|(t, _)| done > t) {
                top[1] = top[0];
                top[0] = Some((done, i));
            } else if top[1].is_none_or(|(t, _)| done > t) {
                top[1] = Some((done, i));
            }
        }
    }
    let overwritten_after = |key: &str, i: usize, invoke: u64| {
        latest.get(key).is_some_and(|top| {
            top.iter()
                .flatten()
                .any(|&(done, j)| j != i && done > invoke)
        })
    };
    history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.status == OpStatus::Ok
                && !w.op.is_read()
                && !(w.op == OpKind::Cas && w.result != Some(CasResult::Ok))
        })
        .filter(|(i, w)| {
            w.writes().into_iter().any(|(key, v)| {
                let Some(fin) = finals.get(key) else {
                    return false;
                };
                fin.as_deref() != v && !overwritten_after(key, *i, w.invoke)
            })
        })
        .map(|(_, w)| w)
        .collect()
}

/// Runs `scripts/check_history.py` on `path`: `Ok(its output)` when it says linearizable.
pub fn python_check(path: &Path) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_history.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(path)
        .output()
        .map_err(|e| format!("running python3 {}: {e}", script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string()
        + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{} ({})", text, out.status))
    }
}

/// The default `--snapshot-threshold`: below 1024 for now, because a debug build's node that
/// restarts with more than 1024 applied entries past its snapshot panics (`applied N past
/// 1024`, core/src/raft/node.rs: the first Ready after a restart hands out at most
/// APPLY_BATCH = 1024 entries while the disk engine reports everything it applied). Set
/// `RAFTKV_JEPSEN_SNAPSHOT_THRESHOLD=5000` to see it.
pub const SNAPSHOT_THRESHOLD: u64 = 300;

/// No node panicked, in any of its lives (a node's log file spans its restarts): under every
/// fault a node serves or stops cleanly, never with a panic. `Err` names each node that did
/// with its first panic line.
fn panics(cluster: &Cluster) -> Result<String, String> {
    let mut found = Vec::new();
    for i in 0..cluster.size() {
        let log = cluster.log_of(i);
        if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
            found.push(format!("{}: {line}", cluster.id(i)));
        }
    }
    if found.is_empty() {
        Ok(format!("{} nodes' logs hold no panic", cluster.size()))
    } else {
        Err(found.join("; "))
    }
}

/// The cluster's arguments: short timeouts, so faults show within the run.
fn cluster_config(nodes: usize) -> Result<ClusterConfig, String> {
    let mut cfg = ClusterConfig::new(nodes);
    // The nemesis turns failpoints on: every node runs the failpoints build.
    cfg.bin = Some(crate::bin::kvserver_failpoints()?);
    let threshold = std::env::var("RAFTKV_JEPSEN_SNAPSHOT_THRESHOLD")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(SNAPSHOT_THRESHOLD)
        .to_string();
    cfg.extra_args = [
        "--election-timeout-ms",
        "300-600",
        "--heartbeat-ms",
        "50",
        "--snapshot-threshold",
        &threshold,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cfg.start_timeout = Duration::from_secs(30);
    Ok(cfg)
}

/// Runs the whole thing: start, faults under load, quiet phase, checks.
pub async fn run(config: JepsenConfig) -> Result<Report, String> {
    let t0 = Instant::now();
    eprintln!(
        "jepsen: seed {} ({} nodes, {} s)",
        config.seed,
        config.nodes,
        config.duration.as_secs(),
    );
    let mut cluster = Cluster::start(cluster_config(config.nodes)?).await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let addrs = Arc::new(RwLock::new(
        (0..config.nodes)
            .map(|i| cluster.addr(i).to_string())
            .collect::<Vec<_>>(),
    ));
    let shared = Arc::new(Shared {
        started: Instant::now(),
        addrs: Arc::clone(&addrs),
        stop: AtomicBool::new(false),
        history: Mutex::new(Vec::new()),
        done: AtomicU64::new(0),
    });
    let clients: Vec<_> = (0..config.clients)
        .map(|c| tokio::spawn(client_loop(c, config.clone(), Arc::clone(&shared))))
        .collect();

    let mut nemesis = Nemesis::new(config.seed, config.nemesis.clone(), cluster, addrs);
    let faults_until = Instant::now() + config.duration;
    while Instant::now() < faults_until {
        nemesis.step(faults_until).await;
    }
    nemesis.quiet().await?;
    let leader = nemesis
        .cluster_mut()
        .wait_for_leader(Duration::from_secs(60))
        .await?;
    let cluster = nemesis.cluster();
    eprintln!(
        "jepsen: quiet phase, leader {} after {:.1} s; {} operations so far",
        cluster.id(leader),
        t0.elapsed().as_secs_f64(),
        shared.done.load(Ordering::Relaxed)
    );
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.map_err(|e| format!("client task: {e}"))?;
    }

    // Read everything, linearizably, and record it.
    let keys: Vec<String> = (0..config.families)
        .flat_map(|f| (0..FAMILY_KEYS).map(move |j| format!("f{f}k{j}")))
        .collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let members = nemesis.members().to_vec();
    let mut finals: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut liveness: Result<String, String> = Ok(String::new());
    for key in &keys {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut rec = HistoryOp::blank("final", OpKind::Get, shared.now());
            rec.key = key.clone();
            let addr = cluster.addr(leader).to_string();
            let path = format!("/kv/{key}?consistency=readindex");
            let v = match send(&http, &addr, Method::GET, &path, None).await {
                Attempt::Answer(200, b) => Some(b["value"].as_str().map(str::to_string)),
                Attempt::Answer(404, b) if b["err_code"] == "not_found" => Some(None),
                _ => None,
            };
            if let Some(v) = v {
                rec.value = Some(v.clone());
                rec.status = OpStatus::Ok;
                rec.complete = Some(shared.now());
                shared.record(rec);
                finals.insert(key.clone(), v);
                break;
            }
            if Instant::now() >= deadline {
                liveness = Err(format!("no final read of {key} answered within 30 s"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Liveness: every member applies the same index and serves the final values.
    if liveness.is_ok() {
        liveness = converged(cluster, &members, &keys, &finals).await;
    }

    let mut ops = shared.history.lock().map(|h| h.clone()).unwrap_or_default();
    // Completion order, unanswered last, as the format says.
    ops.sort_by_key(|o| (o.complete.is_none(), o.complete.unwrap_or(o.invoke)));
    let history = History { ops };
    let history_file = config.history_path.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "raftkv-jepsen-{}-{}.jsonl",
            config.seed,
            std::process::id()
        ))
    });
    std::fs::write(&history_file, history.to_jsonl())
        .map_err(|e| format!("writing {}: {e}", history_file.display()))?;

    let mut verdicts = Vec::new();
    let checked = history.without_stale_reads();
    let lin = match linearizability::check(&checked) {
        Ok(()) => Ok(format!(
            "{} operations (stale reads left out) linearizable",
            checked.ops.len()
        )),
        Err(e) => Err(e.to_string()),
    };
    verdicts.push(Verdict {
        name: "linearizability (core)",
        outcome: lin,
    });
    verdicts.push(Verdict {
        name: "linearizability (check_history.py)",
        outcome: python_check(&history_file),
    });
    let invented = history.invented_stale_reads();
    verdicts.push(Verdict {
        name: "stale reads not invented",
        outcome: if invented.is_empty() {
            Ok(format!(
                "{} stale reads",
                history.ops.iter().filter(|o| o.stale).count()
            ))
        } else {
            Err(invented
                .iter()
                .take(5)
                .map(|o| o.to_json_line())
                .collect::<Vec<_>>()
                .join("\n"))
        },
    });
    let lost = lost_writes(&history, &finals);
    verdicts.push(Verdict {
        name: "durability",
        outcome: if lost.is_empty() {
            Ok(format!(
                "every acknowledged write is final or overwritten ({} keys)",
                finals.len()
            ))
        } else {
            Err(format!(
                "acknowledged writes lost:\n{}",
                lost.iter()
                    .take(5)
                    .map(|o| o.to_json_line())
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        },
    });
    verdicts.push(Verdict {
        name: "liveness",
        outcome: liveness,
    });
    verdicts.push(Verdict {
        name: "no panics",
        outcome: panics(cluster),
    });
    let (faults, faults_refused, leader_changes) = nemesis.figures();
    drop(nemesis);
    Ok(Report {
        config,
        history,
        history_file,
        faults,
        faults_refused,
        leader_changes,
        verdicts,
        elapsed: t0.elapsed(),
    })
}

/// Polls until every member reports the same applied index and serves `finals` from its own
/// state (stale mget), within 60 s.
async fn converged(
    cluster: &Cluster,
    members: &[usize],
    keys: &[String],
    finals: &BTreeMap<String, Option<String>>,
) -> Result<String, String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let what = format!("members {members:?} to converge on the final values");
    crate::wait::poll_until(&what, Duration::from_secs(60), || {
        let http = &http;
        async move {
            let mut applied = Vec::new();
            for &i in members {
                let addr = cluster.addr(i).to_string();
                let Attempt::Answer(200, st) =
                    send(http, &addr, Method::GET, "/status", None).await
                else {
                    return Err(format!("{} does not answer /status", cluster.id(i)));
                };
                let Attempt::Answer(200, b) = send(
                    http,
                    &addr,
                    Method::POST,
                    "/kv/mget?consistency=stale",
                    Some(&json!({ "keys": keys })),
                )
                .await
                else {
                    return Err(format!("{} does not serve reads", cluster.id(i)));
                };
                for (k, want) in finals {
                    let got = b["values"][k].as_str();
                    if got != want.as_deref() {
                        return Err(format!(
                            "{} has {k} = {got:?}, the final value is {want:?}",
                            cluster.id(i)
                        ));
                    }
                }
                applied.push(st["last_applied"].as_u64().unwrap_or(0));
            }
            if applied.windows(2).all(|w| w[0] == w[1]) {
                Ok(Some(format!(
                    "{} members at applied index {}, serving the final values",
                    members.len(),
                    applied.first().copied().unwrap_or(0)
                )))
            } else {
                Err(format!("applied indexes differ: {applied:?}"))
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(op: OpKind, key: &str, v: Option<&str>, invoke: u64, complete: Option<u64>) -> HistoryOp {
        let mut o = HistoryOp::blank("c", op, invoke);
        o.key = key.into();
        o.value = v.map(|v| Some(v.to_string()));
        o.complete = complete;
        o.status = if complete.is_some() {
            OpStatus::Ok
        } else {
            OpStatus::Unknown
        };
        o
    }

    #[test]
    fn a_write_neither_final_nor_overwritten_is_lost() {
        let finals: BTreeMap<String, Option<String>> =
            [("k".to_string(), Some("b".to_string()))].into();
        // a then b: a was overwritten, b is final.
        let h = History {
            ops: vec![
                w(OpKind::Put, "k", Some("a"), 0, Some(10)),
                w(OpKind::Put, "k", Some("b"), 20, Some(30)),
            ],
        };
        assert!(lost_writes(&h, &finals).is_empty());
        // b then a, both acknowledged, yet the final value is b: a was lost.
        let h = History {
            ops: vec![
                w(OpKind::Put, "k", Some("b"), 0, Some(10)),
                w(OpKind::Put, "k", Some("a"), 20, Some(30)),
            ],
        };
        let lost = lost_writes(&h, &finals);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].value, Some(Some("a".to_string())));
        // An unknown write after it may have overwritten it; a failed one may not.
        let mut later = w(OpKind::Delete, "k", None, 25, None);
        let h = History {
            ops: vec![w(OpKind::Put, "k", Some("a"), 20, Some(30)), later.clone()],
        };
        assert!(lost_writes(&h, &finals).is_empty());
        later.status = OpStatus::Fail;
        let h = History {
            ops: vec![w(OpKind::Put, "k", Some("a"), 20, Some(30)), later],
        };
        assert_eq!(lost_writes(&h, &finals).len(), 1);
        // A multi-key write is lost when one of its keys lost it.
        let mut mput = HistoryOp::blank("c", OpKind::Mput, 0);
        mput.entries = Some(
            [("k", "m"), ("j", "m")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        mput.complete = Some(5);
        mput.status = OpStatus::Ok;
        let finals: BTreeMap<String, Option<String>> = [
            ("k".to_string(), Some("m".to_string())),
            ("j".to_string(), None),
        ]
        .into();
        assert_eq!(lost_writes(&History { ops: vec![mput] }, &finals).len(), 1);
    }
}
