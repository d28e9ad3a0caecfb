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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use raftkv_core::ReadPolicy;

use crate::client::{Client, ClientError};

/// `kvctl bench`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
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

/// Runs the bench and returns the report.
pub async fn run(
    endpoints: Vec<String>,
    timeout: Duration,
    retry_for: Duration,
    args: BenchArgs,
) -> Result<String, ClientError> {
    if args.concurrency == 0 || args.keys == 0 {
        return Err(ClientError::Usage(
            "--concurrency and --keys must be above 0".into(),
        ));
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
    let mut clients = Vec::with_capacity(args.concurrency);
    for w in 0..args.concurrency {
        let mut client = Client::new(endpoints.clone(), format!("{run_id}-w{w}"), 1, timeout)?;
        client.set_retry_for(retry_for);
        clients.push(client);
    }
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
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let value = "x".repeat(args.value_size);

    let mut tasks = Vec::new();
    for (w, client) in clients.into_iter().enumerate() {
        let ctx = Worker {
            client,
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0001) ^ started_nanos()),
            args: args.clone(),
            value: value.clone(),
            progress: Arc::clone(&progress),
            stop: Arc::clone(&stop),
            deadline,
            cas_known: BTreeMap::new(),
            cas_prefix: format!("bench-cas-{run_id}-w{w}"),
            own_prefix: format!("bench-{run_id}-w{w}"),
            writes: BTreeMap::new(),
            puts: 0,
        };
        tasks.push(tokio::spawn(ctx.run()));
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
    let report = render(&args, &endpoints, elapsed, all);
    if verify_failed {
        // The report is the error: a lost write must fail the command, not just be printed.
        return Err(ClientError::Usage(report));
    }
    Ok(report)
}

fn started_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos().into())
        .unwrap_or(1)
}

struct Worker {
    client: Client,
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
            let failed = !matches!(outcome.as_str(), "ok" | "not_found" | "cas_failed");
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

    /// A readindex read of `key`: its value, or `None` when it is missing.
    async fn read_linearizable(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        match self.client.get(key, Some(ReadPolicy::ReadIndex)).await {
            Ok(r) => Ok(r.value().map(str::to_string)),
            Err(ClientError::Server { code, .. }) if code == "not_found" => Ok(None),
            Err(e) => Err(e),
        }
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
                let r = self.client.put(&self.key(n), &value).await;
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
                r.map(|_| ())
            }
            Op::Put => {
                let n = self.rng.below(self.args.keys);
                let key = self.key(n);
                self.client.put(&key, &self.value).await.map(|_| ())
            }
            Op::Get => {
                let n = self.rng.below(self.args.keys);
                let key = self.key(n);
                self.client
                    .get(&key, Some(self.args.consistency))
                    .await
                    .map(|_| ())
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
                let r = self.client.cas(&key, &expected, &new).await;
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

fn render(args: &BenchArgs, endpoints: &[String], elapsed: Duration, mut s: WorkerStats) -> String {
    s.latencies.sort_unstable();
    let total: u64 = s.outcomes.values().sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let m = args.mix;
    let _ = writeln!(
        out,
        "bench: {} endpoint(s), concurrency {}, mix put={} get={} cas={}, {} keys, {} B values, \
         {} gets",
        endpoints.len(),
        args.concurrency,
        m.put,
        m.get,
        m.cas,
        args.keys,
        args.value_size,
        args.consistency
    );
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
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for op in [Op::Put, Op::Get, Op::Cas] {
        let mine: Vec<_> = s.outcomes.iter().filter(|((o, _), _)| *o == op).collect();
        if mine.is_empty() {
            continue;
        }
        let parts: Vec<String> = mine.iter().map(|((_, k), n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "  {}: {}", op.name(), parts.join(", "));
        for ((_, kind), n) in mine {
            if !matches!(kind.as_str(), "ok" | "not_found" | "cas_failed") {
                *errors.entry(kind.as_str()).or_default() += *n;
            }
        }
    }
    if errors.is_empty() {
        let _ = writeln!(out, "errors: none");
    } else {
        let parts: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "errors: {}", parts.join(", "));
    }
    if args.verify {
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

    #[test]
    fn quantiles_pick_the_right_rank() {
        let v: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 500.0);
        assert_eq!(quantile_ms(&v, 0.99), 990.0);
        assert_eq!(quantile_ms(&v, 0.999), 999.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
