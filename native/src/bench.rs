//! `kvctl bench`: a closed-loop load generator. N workers, each with its own client identity,
//! issue a weighted mix of put/get/cas against the cluster (following leader redirects) for a
//! duration or an operation count; a progress line per second goes to stderr, and the report
//! (throughput, latency percentiles, outcomes per op, errors by kind) to stdout. Ctrl-C ends the
//! run early and still reports.
//!
//! With `--verify` each worker writes only keys of its own, with a distinct value per put, and
//! remembers what the cluster answered. After the run it reads every such key back (readindex)
//! and checks that it holds the last value acknowledged for it, or one written after that whose
//! outcome the worker never learned (a 503 `unknown_outcome`, a dropped connection). Anything
//! else is an acknowledged write the cluster lost. Ordering is what makes this sound: a worker
//! waits for each answer, and the state machine never applies a seq older than one it already
//! applied for that client, so an abandoned write cannot land after a later acknowledged one.
//!
//! `--target etcd` loads an etcd cluster instead, through its v3 JSON gateway ([`etcd`]), with
//! the same workers, key choice, values, mix and report, so the two can be compared side by
//! side (`scripts/bench-compare.sh`). etcd gets put and get only: `cas` and `--verify` lean on
//! kvserver's API and client sessions, and are refused. `--json` prints the report as one JSON
//! object, for scripts.

pub mod etcd;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use raftkv_core::ReadPolicy;
use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::credentials::Credentials;
use etcd::EtcdClient;

/// The server `kvctl bench` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Target {
    /// kvserver's client API (also noop-kv's).
    #[default]
    Kvserver,
    /// etcd v3 through its JSON gateway: puts and gets only.
    Etcd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Kvserver => "kvserver",
            Target::Etcd => "etcd",
        }
    }
}

/// `kvctl bench`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// What the endpoints are: kvserver (or noop-kv) nodes, or etcd members (v3 JSON gateway,
    /// the client URL's host:port).
    #[arg(long, value_enum, default_value_t = Target::Kvserver)]
    pub target: Target,
    /// Concurrent clients (each waits for its answer before sending the next request).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Operation mix as weights: put=W,get=W,cas=W (missing ops weigh 0).
    #[arg(long, default_value = "put=80,get=15,cas=5")]
    pub mix: Mix,
    /// Number of distinct keys puts and gets pick from (uniformly).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Size of each written value in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Run for this many seconds (the default when --count is not given: 10).
    #[arg(long, conflicts_with = "count")]
    pub duration: Option<f64>,
    /// Run exactly this many operations in total.
    #[arg(long)]
    pub count: Option<u64>,
    /// How gets read: stale, readindex or lease (the --verify read-back and the re-read of a
    /// CAS key after an error are readindex whatever this says).
    #[arg(long, default_value = "readindex")]
    pub consistency: ReadPolicy,
    /// Give each worker keys of its own and, after the run, read every key back and fail if an
    /// acknowledged put is missing (see the module docs). Meant for runs with faults, such as
    /// killing the leader mid-run.
    #[arg(long)]
    pub verify: bool,
    /// Before the run, put each of the --keys keys once (spread over the workers; neither
    /// timed nor counted in the report), so that gets find a value.
    #[arg(long, conflicts_with = "verify")]
    pub preload: bool,
}

/// Weights of the three operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of puts.
    pub put: u32,
    /// Weight of gets.
    pub get: u32,
    /// Weight of compare-and-sets.
    pub cas: u32,
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mix = Mix {
            put: 0,
            get: 0,
            cas: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, w) = part
                .split_once('=')
                .ok_or_else(|| format!("expected op=weight, got {part:?}"))?;
            let w: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("weight of {op} is not a number: {w:?}"))?;
            match op.trim() {
                "put" => mix.put = w,
                "get" => mix.get = w,
                "cas" => mix.cas = w,
                other => return Err(format!("unknown op {other:?} (put, get, cas)")),
            }
        }
        if mix.put + mix.get + mix.cas == 0 {
            return Err("the mix needs at least one op with a weight above 0".into());
        }
        Ok(mix)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Put,
    Get,
    Cas,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Cas => "cas",
        }
    }
}

/// A tiny xorshift RNG: the bench needs cheap, seedable choices, not cryptography.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// What one worker saw.
#[derive(Default)]
struct WorkerStats {
    /// Latency of every answered operation, in microseconds.
    latencies: Vec<u64>,
    /// (op, outcome) -> count; outcome is "ok", "not_found", "cas_failed" or an error kind.
    outcomes: BTreeMap<(Op, String), u64>,
    /// With --verify: what the worker's read-back found.
    verify: VerifyStats,
    /// When the worker sent its last load request (before any read-back): throughput counts
    /// the load phase only.
    load_end: Option<Instant>,
}

/// The writes of one key that only one worker writes, as that worker learned of them.
#[derive(Default)]
struct KeyWrites {
    /// The value of the last put answered 200.
    acked: Option<String>,
    /// Puts sent after that one whose outcome is unknown: each may or may not have landed.
    /// Invariant: every one of them was sent after `acked`'s put was answered.
    maybe: Vec<String>,
}

impl KeyWrites {
    /// Whether `read` (None: the key is missing) is a state the cluster may be in.
    fn admits(&self, read: Option<&str>) -> bool {
        let later = |v: &str| self.maybe.iter().any(|m| m == v);
        match (read, &self.acked) {
            (Some(v), Some(a)) => v == a || later(v),
            (Some(v), None) => later(v),
            (None, acked) => acked.is_none(),
        }
    }
}

/// Totals of the --verify read-back.
#[derive(Default)]
struct VerifyStats {
    /// Keys read back.
    keys: u64,
    /// Puts answered 200 over all keys read back.
    acked_puts: u64,
    /// Keys that lost an acknowledged put.
    lost: u64,
    /// Keys that could not be read back (the read itself failed).
    unread: u64,
    /// One line per lost or unreadable key.
    details: Vec<String>,
}

impl VerifyStats {
    /// Adds another worker's totals.
    fn add(&mut self, other: VerifyStats) {
        self.keys += other.keys;
        self.acked_puts += other.acked_puts;
        self.lost += other.lost;
        self.unread += other.unread;
        self.details.extend(other.details);
    }

    /// Whether every acknowledged put was found.
    fn passed(&self) -> bool {
        self.lost == 0 && self.unread == 0
    }
}

/// Counters the progress line reads.
#[derive(Default)]
struct Progress {
    done: AtomicU64,
    errors: AtomicU64,
    /// Operations handed out so far (for --count).
    issued: AtomicU64,
    /// Keys read back so far by --verify.
    read_back: AtomicU64,
}

/// The kind of a failed request, for the error table.
fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Server { code, status, .. } if code.is_empty() => format!("http_{status}"),
        ClientError::Server { code, .. } => code.clone(),
        ClientError::Unreachable(_) => "unreachable".into(),
        ClientError::TooManyRedirects(_) => "too_many_redirects".into(),
        ClientError::BadReply(_) => "bad_reply".into(),
        ClientError::Usage(_) => "usage".into(),
        ClientError::OpTimeout(_) => "op_timeout".into(),
        ClientError::SessionLost(_) => "session_expired_unknown".into(),
    }
}

/// Runs the bench and returns the report: readable text, or with `json` one JSON object.
/// kvserver's workers use `creds` (TLS trust and token); etcd's gateway gets plain http.
pub async fn run(
    endpoints: Vec<String>,
    timeout: Duration,
    retry_for: Duration,
    creds: &Credentials,
    args: BenchArgs,
    json: bool,
) -> Result<String, ClientError> {
    if args.concurrency == 0 || args.keys == 0 {
        return Err(ClientError::Usage(
            "--concurrency and --keys must be above 0".into(),
        ));
    }
    if args.target == Target::Etcd {
        check_etcd_args(&args)?;
    }
    let duration = match (args.duration, args.count) {
        (Some(d), _) if !(d > 0.0 && d.is_finite()) => {
            return Err(ClientError::Usage("--duration must be above 0".into()));
        }
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let run_id = Client::random_client_id();
    let conns = connect(&endpoints, timeout, retry_for, creds, &args, &run_id).await?;
    let progress = Arc::new(Progress::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Ctrl-C ends the run early; the workers finish their request in flight and report.
    tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("bench: interrupted; finishing requests in flight");
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    let value = "x".repeat(args.value_size);
    let mut workers = Vec::with_capacity(args.concurrency);
    for (w, conn) in conns.into_iter().enumerate() {
        workers.push(Worker {
            conn,
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0001) ^ started_nanos()),
            args: args.clone(),
            value: value.clone(),
            progress: Arc::clone(&progress),
            stop: Arc::clone(&stop),
            deadline: None,
            cas_known: BTreeMap::new(),
            cas_prefix: format!("bench-cas-{run_id}-w{w}"),
            own_prefix: format!("bench-{run_id}-w{w}"),
            writes: BTreeMap::new(),
            puts: 0,
        });
    }
    let preload = if args.preload {
        let (w, p) = run_preload(workers, args.keys).await?;
        workers = w;
        Some(p)
    } else {
        None
    };

    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut tasks = Vec::new();
    for mut worker in workers {
        worker.deadline = deadline;
        tasks.push(tokio::spawn(worker.run()));
    }
    let reporter = tokio::spawn(report_progress(
        Arc::clone(&progress),
        Arc::clone(&stop),
        started,
    ));

    let mut all = WorkerStats::default();
    let mut load_end = started;
    for t in tasks {
        let stats = t
            .await
            .map_err(|e| ClientError::Usage(format!("bench worker failed: {e}")))?;
        load_end = load_end.max(stats.load_end.unwrap_or(started));
        all.latencies.extend(stats.latencies);
        for (k, n) in stats.outcomes {
            *all.outcomes.entry(k).or_default() += n;
        }
        all.verify.add(stats.verify);
    }
    let elapsed = load_end - started;
    stop.store(true, Ordering::Relaxed);
    let _ = reporter.await;
    let verify_failed = args.verify && !all.verify.passed();
    let summary = Summary::new(&args, &endpoints, elapsed, all, preload);
    let report = if json {
        format!("{}\n", summary.to_json())
    } else {
        summary.render()
    };
    if verify_failed {
        // The report is the error: a lost write must fail the command, not just be printed.
        return Err(ClientError::Usage(report));
    }
    Ok(report)
}

/// Refuses what etcd's target cannot do, before any request is sent.
fn check_etcd_args(args: &BenchArgs) -> Result<(), ClientError> {
    if args.mix.cas > 0 {
        return Err(ClientError::Usage(
            "--target etcd runs put and get only (kvserver's cas has no one-call equivalent \
             in etcd's KV API, which does it with a transaction): give --mix without cas, \
             e.g. --mix put=80,get=20"
                .into(),
        ));
    }
    if args.verify {
        return Err(ClientError::Usage(
            "--verify relies on kvserver's client sessions; it does not run with --target etcd"
                .into(),
        ));
    }
    if args.consistency == ReadPolicy::Lease {
        return Err(ClientError::Usage(
            "etcd has no lease reads for clients: --consistency readindex reads linearizably \
             (etcd's default), stale reads serializably"
                .into(),
        ));
    }
    Ok(())
}

/// One connection per worker, as a real client would have: its own HTTP client (and so its
/// own connection pool) and, for kvserver, its own client identity.
async fn connect(
    endpoints: &[String],
    timeout: Duration,
    retry_for: Duration,
    creds: &Credentials,
    args: &BenchArgs,
    run_id: &str,
) -> Result<Vec<Conn>, ClientError> {
    let mut conns = Vec::with_capacity(args.concurrency);
    match args.target {
        Target::Kvserver => {
            for w in 0..args.concurrency {
                let mut client = Client::with_credentials(
                    endpoints.to_vec(),
                    format!("{run_id}-w{w}"),
                    1,
                    timeout,
                    creds.clone(),
                )?;
                client.set_retry_for(retry_for);
                conns.push(Conn::Kvserver(client));
            }
        }
        Target::Etcd => {
            // kvserver's client follows a follower's redirect to the leader and stays there;
            // etcd's followers forward instead, which costs them a hop. Starting every worker
            // at etcd's leader keeps the comparison about the servers, not about that hop.
            let leader = EtcdClient::new(endpoints, timeout)?.find_leader().await;
            if leader.is_none() {
                eprintln!("bench: no etcd endpoint says it leads; starting at the first one");
            }
            for _ in 0..args.concurrency {
                let mut client = EtcdClient::new(endpoints, timeout)?;
                client.prefer(leader.unwrap_or(0));
                conns.push(Conn::Etcd(client));
            }
        }
    }
    Ok(conns)
}

/// What the preload did.
struct Preload {
    keys: u64,
    errors: u64,
    elapsed: Duration,
}

/// Puts every key once before the run: key `n` by worker `n % workers`, all workers at once.
/// Hands the workers back for the run.
async fn run_preload(
    workers: Vec<Worker>,
    keys: u64,
) -> Result<(Vec<Worker>, Preload), ClientError> {
    let started = Instant::now();
    let n = workers.len() as u64;
    let mut tasks = Vec::with_capacity(workers.len());
    for (w, mut worker) in workers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            let mut k = w as u64;
            while k < keys && !worker.stop.load(Ordering::Relaxed) {
                let key = format!("bench-{k}");
                let value = worker.value.clone();
                if worker.put(&key, &value).await.is_err() {
                    errors += 1;
                }
                k += n;
            }
            (worker, errors)
        }));
    }
    let mut back = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        let (worker, e) = t
            .await
            .map_err(|e| ClientError::Usage(format!("bench preload failed: {e}")))?;
        back.push(worker);
        errors += e;
    }
    Ok((
        back,
        Preload {
            keys,
            errors,
            elapsed: started.elapsed(),
        },
    ))
}

fn started_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos().into())
        .unwrap_or(1)
}

/// A worker's connection to the servers under load.
enum Conn {
    /// kvserver's client: sessions, redirects to the leader, retries.
    Kvserver(Client),
    /// etcd's JSON gateway.
    Etcd(EtcdClient),
}

struct Worker {
    conn: Conn,
    rng: Rng,
    args: BenchArgs,
    value: String,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    /// The current value of this worker's own CAS keys, when known (only this worker writes
    /// them, so its CAS normally succeeds; after an error it re-reads first).
    cas_known: BTreeMap<u64, String>,
    cas_prefix: String,
    /// With --verify, puts and gets use `{own_prefix}-{n}`: keys no other worker writes.
    own_prefix: String,
    /// With --verify: what this worker knows of each of its keys' puts.
    writes: BTreeMap<u64, KeyWrites>,
    /// Puts sent so far; numbers each put's value so every value is distinct.
    puts: u64,
}

impl Worker {
    fn pick(&mut self) -> Op {
        let m = self.args.mix;
        let r = self.rng.below(u64::from(m.put + m.get + m.cas));
        if r < u64::from(m.put) {
            Op::Put
        } else if r < u64::from(m.put + m.get) {
            Op::Get
        } else {
            Op::Cas
        }
    }

    fn more(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(d) = self.deadline {
            return Instant::now() < d;
        }
        match self.args.count {
            Some(n) => self.progress.issued.fetch_add(1, Ordering::Relaxed) < n,
            None => true,
        }
    }

    async fn run(mut self) -> WorkerStats {
        let mut stats = WorkerStats::default();
        while self.more() {
            let op = self.pick();
            let t0 = Instant::now();
            let outcome = self.once(op).await;
            let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            let failed = !answered(&outcome);
            if failed {
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.latencies.push(micros);
            }
            self.progress.done.fetch_add(1, Ordering::Relaxed);
            *stats.outcomes.entry((op, outcome)).or_default() += 1;
        }
        stats.load_end = Some(Instant::now());
        if self.args.verify {
            stats.verify = self.read_back().await;
        }
        stats
    }

    /// The key numbered `n`: shared by all workers, or this worker's own under --verify.
    fn key(&self, n: u64) -> String {
        if self.args.verify {
            format!("{}-{n}", self.own_prefix)
        } else {
            format!("bench-{n}")
        }
    }

    /// A put of `value` at `key`, through whichever server this worker loads.
    async fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        match &mut self.conn {
            Conn::Kvserver(c) => c.put(key, value).await.map(drop),
            Conn::Etcd(c) => c.put(key, value).await,
        }
    }

    /// A read of `key` at `consistency`: its value, or `None` when it is missing (kvserver's
    /// 404 `not_found`; etcd's empty range). For etcd, `stale` is a serializable read and
    /// anything else linearizable ([`check_etcd_args`] refused `lease`).
    async fn get(
        &mut self,
        key: &str,
        consistency: ReadPolicy,
    ) -> Result<Option<String>, ClientError> {
        match &mut self.conn {
            Conn::Kvserver(c) => match c.get(key, Some(consistency)).await {
                Ok(r) => Ok(r.value().map(str::to_string)),
                Err(ClientError::Server { code, .. }) if code == "not_found" => Ok(None),
                Err(e) => Err(e),
            },
            Conn::Etcd(c) => {
                let serializable = consistency == ReadPolicy::Stale;
                let value = c.get(key, serializable).await?;
                Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
            }
        }
    }

    /// kvserver's client, for what only kvserver does (cas); [`check_etcd_args`] keeps the
    /// error from happening.
    fn kvserver(&mut self) -> Result<&mut Client, ClientError> {
        match &mut self.conn {
            Conn::Kvserver(c) => Ok(c),
            Conn::Etcd(_) => Err(ClientError::Usage(
                "cas and --verify need --target kvserver".into(),
            )),
        }
    }

    /// A readindex read of `key`: its value, or `None` when it is missing.
    async fn read_linearizable(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        self.get(key, ReadPolicy::ReadIndex).await
    }

    /// Reads back every key this worker put to and checks it against what it was told.
    async fn read_back(&mut self) -> VerifyStats {
        let mut v = VerifyStats::default();
        let writes = std::mem::take(&mut self.writes);
        for (n, w) in &writes {
            let key = self.key(*n);
            let read = match self.read_linearizable(&key).await {
                Ok(read) => read,
                Err(e) => {
                    v.unread += 1;
                    v.details.push(format!("{key}: cannot read it back: {e}"));
                    continue;
                }
            };
            v.keys += 1;
            self.progress.read_back.fetch_add(1, Ordering::Relaxed);
            v.acked_puts += u64::from(w.acked.is_some());
            if !w.admits(read.as_deref()) {
                let short = |s: Option<&str>| {
                    s.map_or("<missing>".to_string(), |s| s.chars().take(24).collect())
                };
                v.lost += 1;
                v.details.push(format!(
                    "{key}: last acknowledged {}, read {}",
                    short(w.acked.as_deref()),
                    short(read.as_deref())
                ));
            }
        }
        v
    }

    /// Runs one operation; returns its outcome.
    async fn once(&mut self, op: Op) -> String {
        let res = match op {
            Op::Put if self.args.verify => {
                let n = self.rng.below(self.args.keys);
                self.puts += 1;
                // A distinct value per put, the same size as the others.
                let tag = format!("{:x}-", self.puts);
                let value = format!("{tag}{}", self.value.get(tag.len()..).unwrap_or_default());
                let key = self.key(n);
                let r = self.put(&key, &value).await;
                let w = self.writes.entry(n).or_default();
                match &r {
                    Ok(_) => {
                        w.acked = Some(value);
                        w.maybe.clear();
                    }
                    // Refused before reaching the log: it surely did not land. (A session_expired
                    // refusal after an attempt that may have applied is a SessionLost: maybe.)
                    Err(ClientError::Server { status, .. }) if (400..500).contains(status) => {}
                    Err(_) => w.maybe.push(value),
                }
                r
            }
            Op::Put => {
                let n = self.rng.below(self.args.keys);
                let key = self.key(n);
                let value = std::mem::take(&mut self.value);
                let r = self.put(&key, &value).await;
                self.value = value;
                r
            }
            Op::Get => {
                let n = self.rng.below(self.args.keys);
                let key = self.key(n);
                // A missing key is "not_found", as kvserver's 404 always counted.
                match self.get(&key, self.args.consistency).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => return "not_found".into(),
                    Err(e) => Err(e),
                }
            }
            Op::Cas => {
                let slot = self.rng.below(16);
                let key = format!("{}-{slot}", self.cas_prefix);
                let expected = match self.cas_known.get(&slot) {
                    Some(v) => v.clone(),
                    None => match self.read_linearizable(&key).await {
                        Ok(read) => read.unwrap_or_default(),
                        Err(e) => return error_kind(&e),
                    },
                };
                let new = format!("{}-{}", self.rng.next(), self.value);
                let r = match self.kvserver() {
                    Ok(c) => c.cas(&key, &expected, &new).await,
                    Err(e) => Err(e),
                };
                match &r {
                    Ok(_) => {
                        self.cas_known.insert(slot, new);
                    }
                    Err(_) => {
                        self.cas_known.remove(&slot);
                    }
                }
                r.map(|_| ())
            }
        };
        match res {
            Ok(()) => "ok".into(),
            Err(e) => error_kind(&e),
        }
    }
}

async fn report_progress(progress: Arc<Progress>, stop: Arc<AtomicBool>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let done = progress.done.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let read_back = progress.read_back.load(Ordering::Relaxed);
        if read_back > 0 {
            eprintln!(
                "bench: {:>5.1}s  verifying: {read_back} keys read back",
                started.elapsed().as_secs_f64()
            );
            continue;
        }
        eprintln!(
            "bench: {:>5.1}s  {done} ops  {} ops/s  {errors} errors",
            started.elapsed().as_secs_f64(),
            done - last
        );
        last = done;
    }
}

/// The value at quantile `q` of sorted `v`, in milliseconds.
fn quantile_ms(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

/// The numbers of a finished run, rendered as text ([`Summary::render`]) or JSON
/// ([`Summary::to_json`]).
struct Summary<'a> {
    args: &'a BenchArgs,
    endpoints: usize,
    secs: f64,
    /// Sorted.
    latencies: Vec<u64>,
    outcomes: BTreeMap<(Op, String), u64>,
    verify: VerifyStats,
    preload: Option<Preload>,
}

/// Whether an outcome is an answer (the server did what was asked, or said why not) rather
/// than an error.
fn answered(outcome: &str) -> bool {
    matches!(outcome, "ok" | "not_found" | "cas_failed")
}

/// Rounds to microseconds, so that JSON numbers stay short.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl<'a> Summary<'a> {
    fn new(
        args: &'a BenchArgs,
        endpoints: &[String],
        elapsed: Duration,
        mut s: WorkerStats,
        preload: Option<Preload>,
    ) -> Self {
        s.latencies.sort_unstable();
        Summary {
            args,
            endpoints: endpoints.len(),
            secs: elapsed.as_secs_f64().max(1e-9),
            latencies: s.latencies,
            outcomes: s.outcomes,
            verify: s.verify,
            preload,
        }
    }

    fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// How gets read, in the target's words.
    fn reads(&self) -> String {
        match (self.args.target, self.args.consistency) {
            (Target::Etcd, ReadPolicy::Stale) => "serializable".into(),
            (Target::Etcd, _) => "linearizable".into(),
            (Target::Kvserver, c) => c.to_string(),
        }
    }

    /// Errors by kind, over all ops.
    fn errors(&self) -> BTreeMap<&str, u64> {
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for ((_, kind), n) in &self.outcomes {
            if !answered(kind) {
                *errors.entry(kind.as_str()).or_default() += *n;
            }
        }
        errors
    }

    fn render(&self) -> String {
        let s = self;
        let total = s.total();
        let secs = s.secs;
        let mut out = String::new();
        let m = s.args.mix;
        let _ = writeln!(
            out,
            "bench: {}, {} endpoint(s), concurrency {}, mix put={} get={} cas={}, {} keys, {} B \
             values, {} gets",
            s.args.target.name(),
            s.endpoints,
            s.args.concurrency,
            m.put,
            m.get,
            m.cas,
            s.args.keys,
            s.args.value_size,
            s.reads()
        );
        if let Some(p) = &s.preload {
            let _ = writeln!(
                out,
                "preload: {} keys in {:.2} s ({} errors)",
                p.keys,
                p.elapsed.as_secs_f64(),
                p.errors
            );
        }
        let answered = s.latencies.len() as u64;
        let _ = writeln!(
            out,
            "ops: {total} in {secs:.2} s = {:.1} ops/s ({answered} answered, {} errors)",
            total as f64 / secs,
            total - answered
        );
        let _ = writeln!(
            out,
            "latency (ms): p50 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}",
            quantile_ms(&s.latencies, 0.5),
            quantile_ms(&s.latencies, 0.99),
            quantile_ms(&s.latencies, 0.999),
            quantile_ms(&s.latencies, 1.0),
        );
        for op in [Op::Put, Op::Get, Op::Cas] {
            let parts: Vec<String> = s
                .outcomes
                .iter()
                .filter(|((o, _), _)| *o == op)
                .map(|((_, k), n)| format!("{k} {n}"))
                .collect();
            if !parts.is_empty() {
                let _ = writeln!(out, "  {}: {}", op.name(), parts.join(", "));
            }
        }
        let errors = s.errors();
        if errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        } else {
            let parts: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "errors: {}", parts.join(", "));
        }
        if s.args.verify {
            let v = &s.verify;
            let _ = writeln!(
                out,
                "verify: {} keys read back (readindex), {} with an acknowledged put; lost {}, unreadable {}",
                v.keys, v.acked_puts, v.lost, v.unread
            );
            for line in v.details.iter().take(20) {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }

    /// The report as one JSON object: the run's settings, `ops`, `answered`, `errors`,
    /// `secs`, `ops_per_sec`, `latency_ms` {p50, p99, p999, max} over answered ops,
    /// `outcomes` {op: {outcome: count}}, `errors_by_kind`, and `preload` / `verify` when
    /// asked for.
    fn to_json(&self) -> Value {
        let total = self.total();
        let answered = self.latencies.len() as u64;
        let m = self.args.mix;
        let mut outcomes = serde_json::Map::new();
        for ((op, kind), n) in &self.outcomes {
            let per_op = outcomes
                .entry(op.name())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(o) = per_op {
                o.insert(kind.clone(), json!(n));
            }
        }
        let q = |p| round3(quantile_ms(&self.latencies, p));
        let mut report = json!({
            "target": self.args.target.name(),
            "endpoints": self.endpoints,
            "concurrency": self.args.concurrency,
            "mix": {"put": m.put, "get": m.get, "cas": m.cas},
            "keys": self.args.keys,
            "value_size": self.args.value_size,
            "reads": self.reads(),
            "ops": total,
            "answered": answered,
            "errors": total - answered,
            "secs": round3(self.secs),
            "ops_per_sec": round3(total as f64 / self.secs),
            "latency_ms": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": q(1.0)},
            "outcomes": outcomes,
            "errors_by_kind": self.errors(),
        });
        if let Some(p) = &self.preload {
            report["preload"] = json!({
                "keys": p.keys,
                "errors": p.errors,
                "secs": round3(p.elapsed.as_secs_f64()),
            });
        }
        if self.args.verify {
            let v = &self.verify;
            report["verify"] = json!({
                "keys": v.keys,
                "acked_puts": v.acked_puts,
                "lost": v.lost,
                "unread": v.unread,
                "passed": v.passed(),
                "details": v.details.iter().take(20).collect::<Vec<_>>(),
            });
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_rejects_nonsense() {
        assert_eq!(
            "put=80,get=15,cas=5".parse::<Mix>(),
            Ok(Mix {
                put: 80,
                get: 15,
                cas: 5
            })
        );
        assert_eq!(
            "get=1".parse::<Mix>(),
            Ok(Mix {
                put: 0,
                get: 1,
                cas: 0
            })
        );
        assert!("put=0".parse::<Mix>().is_err());
        assert!("scan=3".parse::<Mix>().is_err());
        assert!("put=x".parse::<Mix>().is_err());
        assert!("put".parse::<Mix>().is_err());
    }

    #[test]
    fn verify_admits_the_last_acknowledged_value_or_a_later_unknown_one() {
        let none = KeyWrites::default();
        assert!(none.admits(None));
        assert!(!none.admits(Some("1")));
        let w = KeyWrites {
            acked: Some("2".into()),
            maybe: vec!["3".into(), "4".into()],
        };
        for ok in ["2", "3", "4"] {
            assert!(w.admits(Some(ok)), "{ok}");
        }
        // An older value, a value never written, or nothing: an acknowledged put was lost.
        for lost in [Some("1"), Some("5"), None] {
            assert!(!w.admits(lost), "{lost:?}");
        }
        let unknown_only = KeyWrites {
            acked: None,
            maybe: vec!["1".into()],
        };
        assert!(unknown_only.admits(None) && unknown_only.admits(Some("1")));
    }

    /// `kvctl bench`'s arguments from a command line (without the program name).
    fn bench_args(line: &str) -> BenchArgs {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let argv = std::iter::once("bench").chain(line.split_whitespace());
        <Cmd as clap::Parser>::try_parse_from(argv).unwrap().bench
    }

    #[test]
    fn bench_etcd_refuses_what_only_kvserver_does() {
        let ok = bench_args("--target etcd --mix put=1,get=1");
        assert!(check_etcd_args(&ok).is_ok());
        assert!(
            check_etcd_args(&bench_args("--target etcd --mix get=1 --consistency stale")).is_ok()
        );
        // The default mix has cas in it.
        for bad in [
            "--target etcd",
            "--target etcd --mix put=1 --verify",
            "--target etcd --mix get=1 --consistency lease",
        ] {
            let e = check_etcd_args(&bench_args(bad)).unwrap_err();
            assert!(matches!(e, ClientError::Usage(_)), "{bad}: {e}");
        }
        assert_eq!(bench_args("").target, Target::Kvserver);
    }

    #[test]
    fn bench_json_report_has_the_numbers_the_text_has() {
        let args = bench_args("--target etcd --mix get=1 --concurrency 4");
        let mut stats = WorkerStats {
            latencies: (1..=100).map(|i| i * 1000).collect(),
            ..WorkerStats::default()
        };
        stats.outcomes.insert((Op::Get, "ok".into()), 90);
        stats.outcomes.insert((Op::Get, "not_found".into()), 10);
        stats
            .outcomes
            .insert((Op::Get, "etcd_unavailable".into()), 2);
        let preload = Preload {
            keys: 1000,
            errors: 0,
            elapsed: Duration::from_millis(1500),
        };
        let summary = Summary::new(
            &args,
            &["a".into(), "b".into()],
            Duration::from_secs(2),
            stats,
            Some(preload),
        );
        let j = summary.to_json();
        assert_eq!(j["target"], "etcd");
        assert_eq!(j["reads"], "linearizable");
        assert_eq!(
            (j["ops"].as_u64(), j["answered"].as_u64()),
            (Some(102), Some(100))
        );
        assert_eq!(j["errors"], 2);
        assert_eq!(j["ops_per_sec"], 51.0);
        assert_eq!(j["latency_ms"]["p50"], 50.0);
        assert_eq!(j["latency_ms"]["p99"], 99.0);
        assert_eq!(j["outcomes"]["get"]["not_found"], 10);
        assert_eq!(j["errors_by_kind"], json!({"etcd_unavailable": 2}));
        assert_eq!(j["preload"]["keys"], 1000);
        let text = summary.render();
        assert!(
            text.starts_with("bench: etcd, 2 endpoint(s), concurrency 4"),
            "{text}"
        );
        assert!(
            text.contains("= 51.0 ops/s (100 answered, 2 errors)"),
            "{text}"
        );
        assert!(text.contains("errors: etcd_unavailable 2"), "{text}");
    }

    #[test]
    fn quantiles_pick_the_right_rank() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 500.0);
        assert_eq!(quantile_ms(&v, 0.99), 990.0);
        assert_eq!(quantile_ms(&v, 0.999), 999.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
