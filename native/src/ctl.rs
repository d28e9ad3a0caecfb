//! kvctl's command line: parse, call [`Client`], print.
//!
//! Readable output by default (get prints the value alone, status and member list tables);
//! `--output table` prints key listings as tables too, and `--output json` (or `--json`) the
//! server's JSON body instead (a write's carries the `index` it committed at, for `get
//! --min-index`). Errors go to stderr as `kvctl: err_code: err_msg` with exit code 1.
//!
//! The global options that say where and how to connect and print also come from variables,
//! the flag winning: `RAFTKV_ENDPOINTS`, `RAFTKV_CACERT`, `RAFTKV_TOKEN`, `RAFTKV_OUTPUT`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use raftkv_core::{Entry, NodeId, ReadPolicy};
use serde_json::Value;

use crate::client::{Client, ClientError, Reply, SessionRenewal};
use crate::credentials::Credentials;
use crate::dkv::{DEFAULT_RANGE_LIMIT, RangePage, RangeQuery, ReadOptions};

/// kvctl's command line.
#[derive(Debug, Parser)]
#[command(
    name = "kvctl",
    version,
    about = "Command-line client for raftkv.",
    after_help = "Writes carry (client_id, seq). Without --client-id a random id is used and seq \
                  starts at 1. With --client-id but no --seq, seq is the wall clock in \
                  microseconds so successive invocations keep increasing; when the servers have \
                  no session for that id (it expired, or the id is new) the write is refused \
                  with session_expired and sent again at seq 1, which starts the session. An \
                  explicit --seq above 1 for an unknown session is refused (nothing is written). \
                  Repeating a write with \
                  the same --client-id and --seq is answered from the server's dedupe table and \
                  changes nothing."
)]
pub struct Args {
    /// Servers to try, in order: host:port[,host:port...] (http), or https://host:port for a
    /// server with TLS (trusted through --cacert).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:7001",
        env = "RAFTKV_ENDPOINTS"
    )]
    pub endpoints: Vec<String>,
    /// How to print: text (readable: a get's value alone, `KEY = VALUE` lines for listings,
    /// tables for status and member list), table (listings of keys as KEY VALUE tables too) or
    /// json (the server's JSON body, a line per body). Default: text.
    #[arg(long, global = true, value_enum, env = "RAFTKV_OUTPUT")]
    pub output: Option<Output>,
    /// Print the server's raw JSON body instead of readable output: --output json.
    #[arg(long, global = true)]
    pub json: bool,
    /// Client id for deduplication (default: random per invocation).
    #[arg(long, global = true)]
    pub client_id: Option<String>,
    /// Sequence number of the write (must be above 0).
    #[arg(long, global = true)]
    pub seq: Option<u64>,
    /// Per-request timeout in milliseconds.
    #[arg(long, global = true, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// How long one request keeps retrying, in milliseconds, while no endpoint answers, the
    /// cluster has no leader (as during a failover), the leader is overloaded (waiting at
    /// least its Retry-After) or hands its leadership over, a read cannot be confirmed or
    /// finds its node behind --min-index; 0 tries each endpoint once.
    #[arg(long, global = true, default_value_t = 5000)]
    pub retry_ms: u64,
    /// In async write mode, print the op id instead of waiting for the result.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Trust this CA (PEM) for https endpoints.
    #[arg(long, global = true, env = "RAFTKV_CACERT")]
    pub cacert: Option<PathBuf>,
    /// A client certificate (PEM) for servers started with --client-ca; needs --key.
    // Named apart from the subcommands' KEY argument: clap wants one id per argument.
    #[arg(long = "cert", global = true, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long = "key", global = true, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The bearer token for servers started with --tokens-file (the flag wins over the
    /// variable). The variable keeps it out of the command line, which other users can see.
    #[arg(long, global = true, env = "RAFTKV_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// How kvctl prints what it got (`--output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable text; status and member list as tables.
    #[default]
    Text,
    /// Text, with listings of keys (get --prefix, scan, mget) as KEY VALUE tables too.
    Table,
    /// The server's JSON bodies, one a line.
    Json,
}

impl Args {
    /// The output asked for: `--json` is `--output json`, else `--output`, else text.
    pub fn output(&self) -> Output {
        if self.json {
            Output::Json
        } else {
            self.output.unwrap_or_default()
        }
    }
}

/// kvctl's subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the value of KEY.
    Get {
        /// The key (not with --prefix).
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        key: Option<String>,
        /// Print every key beginning with this prefix, and its value, in key order.
        #[arg(long)]
        prefix: Option<String>,
        /// With --prefix: print one page of at most this many keys (and where the next one
        /// starts) instead of following the pages to the end.
        #[arg(long, requires = "prefix")]
        limit: Option<usize>,
        /// How to read.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Print the keys from START (inclusive) to END (exclusive; omitted: the last key) and
    /// their values, in key order.
    Scan {
        /// The first key.
        start: String,
        /// The first key not to print.
        end: Option<String>,
        /// Print one page of at most this many keys (and where the next one starts) instead
        /// of following the pages to the end.
        #[arg(long)]
        limit: Option<usize>,
        /// How to read.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Set KEY to VALUE.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Set KEY to VALUE if its value is EXPECTED ("" matches a missing key).
    Cas {
        /// The key.
        key: String,
        /// The value it must have now.
        expected: String,
        /// The new value.
        value: String,
    },
    /// Print the values of several keys.
    Mget {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
        /// How to read.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Set several keys at once: KEY=VALUE...
    Mput {
        /// KEY=VALUE pairs (the first '=' separates key from value).
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Remove several keys at once.
    Mdelete {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show each endpoint's status.
    Status,
    /// Backups of the leader's state.
    Snapshot {
        /// What to do.
        #[command(subcommand)]
        command: SnapshotCmd,
    },
    /// Leadership.
    Leader {
        /// What to do.
        #[command(subcommand)]
        command: LeaderCmd,
    },
    /// List or change the cluster's members: list, add-learner, promote, remove, replace.
    Member {
        /// What to do.
        #[command(subcommand)]
        cmd: crate::ctl_member::MemberCmd,
    },
    /// Load-test the cluster: a put/get/cas mix from concurrent clients; progress on stderr
    /// each second, then throughput, latency percentiles and errors by kind.
    Bench(crate::bench::BenchArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, ...) to stdout, e.g.
    /// `kvctl completion bash > ~/.local/share/bash-completion/completions/kvctl`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// kvctl's completion script for `shell`.
pub fn completion(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "kvctl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// kvctl's `snapshot` commands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Save the leader's whole state (read after a readindex barrier) to FILE, in the
    /// snapshot format `kvserver --restore` reads: written to FILE.part, checked, fsynced,
    /// then renamed. Prints the index and the size.
    Save {
        /// Where to write it.
        file: std::path::PathBuf,
    },
}

/// `kvctl leader` subcommands.
#[derive(Debug, Subcommand)]
pub enum LeaderCmd {
    /// Hand leadership to voter ID (default: the one the leader picks, the most caught up);
    /// prints the new leader once the node asked knows it.
    Transfer {
        /// The voter to hand over to.
        id: Option<String>,
    },
}

/// How a read is served.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// stale (the node's own state), readindex (linearizable: the leader confirms it still
    /// leads) or lease (linearizable from the leader's lease, falling back to readindex).
    #[arg(long, default_value = "readindex")]
    pub consistency: ReadPolicy,
    /// Answer only once the node has applied this index (a write's "index", see --json): the
    /// read then sees that write, on any node, even a stale read at a follower.
    #[arg(long)]
    pub min_index: Option<u64>,
}

impl ReadArgs {
    fn options(&self) -> ReadOptions {
        ReadOptions {
            consistency: Some(self.consistency),
            min_index: self.min_index,
            wait: None,
        }
    }
}

/// Runs kvctl with the process's arguments.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => match from_variable(&e, |name| std::env::var(name).ok()) {
            Some(message) => {
                eprintln!("kvctl: {message}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kvctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = args.output() == Output::Json;
    match runtime.block_on(run(args)) {
        Ok(out) => {
            // Not print!: it panics when stdout is closed early (`kvctl scan a | head`).
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kvctl: cannot write the output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            if let (true, ClientError::Server { body, .. }) = (json, &e) {
                println!("{body}");
            }
            eprintln!("kvctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// kvctl's options that also come from a variable, and the variable.
pub const VARIABLES: [(&str, &str); 4] = [
    ("--endpoints", "RAFTKV_ENDPOINTS"),
    ("--output", "RAFTKV_OUTPUT"),
    ("--cacert", "RAFTKV_CACERT"),
    ("--token", "RAFTKV_TOKEN"),
];

/// When `e` refuses a value that came from a variable (which clap does not say), the error
/// naming the variable: `RAFTKV_OUTPUT: invalid value 'yaml' for '--output <OUTPUT>' ...`.
fn from_variable(e: &clap::Error, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (flag, value) = (
        text(ContextKind::InvalidArg)?,
        text(ContextKind::InvalidValue)?,
    );
    let (_, name) = VARIABLES
        .iter()
        .find(|(long, _)| flag.split_whitespace().next() == Some(*long))?;
    if var(name)? != value {
        return None;
    }
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let hint = match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!(" (possible values: {})", valid.join(", ")),
        _ => String::new(),
    };
    Some(format!("{name}: {first}{hint}"))
}

/// Carries out `args` and returns what to print.
pub async fn run(args: Args) -> Result<String, ClientError> {
    if let Cmd::Completion { shell } = args.command {
        return Ok(completion(shell));
    }
    // A session the servers do not know (expired, or a new id) takes seq 1 only: without an
    // explicit --seq the client starts it again (seq 1 under the same --client-id, or a new
    // random id); an explicit --seq above 1 is refused with a message.
    let explicit_seq = args.seq.filter(|s| *s > 1);
    let output = args.output();
    let (client_id, seq, renewal) = match (args.client_id, args.seq) {
        (Some(id), Some(seq)) => (id, seq, SessionRenewal::Never),
        (Some(id), None) => (id, now_micros(), SessionRenewal::SameId),
        (None, Some(seq)) => (Client::random_client_id(), seq, SessionRenewal::Never),
        (None, None) => (Client::random_client_id(), 1, SessionRenewal::NewId),
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let retry_for = Duration::from_millis(args.retry_ms);
    let identity = match (&args.client_cert, &args.client_key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        _ => None,
    };
    // An empty RAFTKV_TOKEN is as good as unset.
    let token = args.token.as_deref().filter(|t| !t.trim().is_empty());
    let creds =
        Credentials::load(args.cacert.as_deref(), identity, token).map_err(ClientError::Usage)?;
    let mut client =
        Client::with_credentials(args.endpoints, client_id.clone(), seq, timeout, creds)?;
    client.set_session_renewal(renewal);
    match run_with(
        &mut client,
        args.command,
        output,
        timeout,
        retry_for,
        args.no_wait,
    )
    .await
    {
        Err(e) if e.is_session_expired() && explicit_seq.is_some() => {
            Err(ClientError::Usage(format!(
                "session_expired: the servers have no session for client {client_id:?} (it \
                 expired or never started), so --seq {seq} was refused and nothing was written; \
                 a session starts at --seq 1 (or leave --seq out)"
            )))
        }
        other => other,
    }
}

async fn run_with(
    client: &mut Client,
    command: Cmd,
    output: Output,
    timeout: Duration,
    retry_for: Duration,
    no_wait: bool,
) -> Result<String, ClientError> {
    client.set_no_wait(no_wait);
    client.set_retry_for(retry_for);
    let json = output == Output::Json;
    let raw = |r: Reply| format!("{}\n", r.raw);

    let out = match command {
        Cmd::Status => return status(client, json).await,
        Cmd::Snapshot {
            command: SnapshotCmd::Save { file },
        } => {
            let saved =
                crate::backup::save(client.endpoints(), timeout, client.credentials(), &file)
                    .await?;
            return Ok(if json {
                format!(
                    "{}\n",
                    serde_json::json!({"ok": true, "index": saved.index, "bytes": saved.bytes})
                )
            } else {
                format!(
                    "saved {} at index {} ({} bytes)\n",
                    file.display(),
                    saved.index,
                    saved.bytes
                )
            });
        }
        Cmd::Member { cmd } => return crate::ctl_member::run(client, cmd, json).await,
        Cmd::Bench(b) => {
            let endpoints = client.endpoints().to_vec();
            let creds = client.credentials().clone();
            return crate::bench::run(endpoints, timeout, retry_for, &creds, b, json).await;
        }
        Cmd::Completion { shell } => completion(shell),
        Cmd::Leader {
            command: LeaderCmd::Transfer { id },
        } => {
            let to = id.map(NodeId::from);
            let r = client.transfer_leader(to.as_ref()).await?;
            if json {
                raw(r)
            } else {
                let field = |name| r.body.get(name).and_then(Value::as_str).unwrap_or("?");
                format!("{} leads ({})\n", field("leader_id"), field("leader_addr"))
            }
        }
        Cmd::Get {
            key: None,
            prefix,
            limit,
            read,
        } => {
            let q = RangeQuery {
                start: prefix.clone().unwrap_or_default(),
                end: None,
                prefix,
                limit: limit.unwrap_or(DEFAULT_RANGE_LIMIT),
            };
            scan(client, q, limit.is_some(), read.options(), output).await?
        }
        Cmd::Scan {
            start,
            end,
            limit,
            read,
        } => {
            let q = RangeQuery {
                start,
                end,
                prefix: None,
                limit: limit.unwrap_or(DEFAULT_RANGE_LIMIT),
            };
            scan(client, q, limit.is_some(), read.options(), output).await?
        }
        Cmd::Get {
            key: Some(key),
            read,
            ..
        } => {
            let r = client.get_with(&key, read.options()).await?;
            if json {
                raw(r)
            } else {
                format!("{}\n", r.value().unwrap_or_default())
            }
        }
        Cmd::Mget { keys, read } => {
            let r = client.mget(&keys, read.options()).await?;
            if json {
                raw(r)
            } else {
                let values = r.body.get("values").cloned().unwrap_or(Value::Null);
                let value = |k: &String| values.get(k).and_then(Value::as_str).map(str::to_string);
                if output == Output::Table {
                    let mut rows = vec![vec!["KEY".to_string(), "VALUE".to_string()]];
                    rows.extend(keys.iter().map(|k| {
                        vec![k.clone(), value(k).unwrap_or_else(|| "(not found)".into())]
                    }));
                    table(&rows)
                } else {
                    keys.iter()
                        .map(|k| match value(k) {
                            Some(v) => format!("{k} = {v}\n"),
                            None => format!("{k} (not found)\n"),
                        })
                        .collect()
                }
            }
        }
        Cmd::Put { key, value } => written(client.put(&key, &value).await?, json),
        Cmd::Delete { key } => written(client.delete(&key).await?, json),
        Cmd::Cas {
            key,
            expected,
            value,
        } => written(client.cas(&key, &expected, &value).await?, json),
        Cmd::Mput { pairs } => {
            let entries = pairs
                .iter()
                .map(|p| parse_pair(p))
                .collect::<Result<Vec<_>, _>>()?;
            written(client.mput(&entries).await?, json)
        }
        Cmd::Mdelete { keys } => written(client.mdelete(&keys).await?, json),
    };
    Ok(out)
}

/// Readable output of a write: `OK`, `deleted N`, or the op id of an unawaited async write.
/// Prints the pages of `q`: only the first with `one_page` (and where the next starts), else
/// every page, following the continuation tokens. `--json` prints each page's JSON, a line
/// each; `--output table` one KEY VALUE table of them all.
async fn scan(
    client: &mut Client,
    mut q: RangeQuery,
    one_page: bool,
    opts: ReadOptions,
    output: Output,
) -> Result<String, ClientError> {
    let json = output == Output::Json;
    let mut rows = vec![vec!["KEY".to_string(), "VALUE".to_string()]];
    let mut out = String::new();
    let done = |out: String, rows: &[Vec<String>], more: Option<String>| {
        let mut text = match output {
            Output::Table => table(rows),
            Output::Text | Output::Json => out,
        };
        if let (Some(next), false) = (more, json) {
            text.push_str(&format!("(more: continue at {next:?})\n"));
        }
        text
    };
    loop {
        let r = client.range(&q, opts).await?;
        let page: RangePage = serde_json::from_value(r.body.clone()).map_err(|e| {
            ClientError::Usage(format!("the server answered a range read oddly: {e}"))
        })?;
        if json {
            out.push_str(&r.raw);
            out.push('\n');
        } else {
            for kv in &page.kvs {
                out.push_str(&format!("{} = {}\n", kv.key, kv.value));
                rows.push(vec![kv.key.clone(), kv.value.clone()]);
            }
        }
        match page.next {
            Some(next) if !one_page => q.start = next,
            more => return Ok(done(out, &rows, more)),
        }
    }
}

fn written(r: Reply, json: bool) -> String {
    if json {
        return format!("{}\n", r.raw);
    }
    if let Some(op) = r.body.get("op_id").and_then(Value::as_str) {
        return format!("accepted, op_id {op}\n");
    }
    match r.deleted() {
        Some(n) => format!("deleted {n}\n"),
        None => "OK\n".to_string(),
    }
}

fn parse_pair(p: &str) -> Result<Entry, ClientError> {
    match p.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok(Entry {
            key: k.to_string(),
            value: v.to_string(),
        }),
        _ => Err(ClientError::Usage(format!(
            "expected KEY=VALUE with a non-empty key, got {p:?}"
        ))),
    }
}

/// Asks every endpoint for its status: one table row each (or one JSON body per line).
/// Fails only if no endpoint answers.
async fn status(client: &Client, json: bool) -> Result<String, ClientError> {
    const COLUMNS: [&str; 9] = [
        "ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST_LOG", "SNAPSHOT",
    ];
    let mut rows = vec![COLUMNS.map(str::to_string).to_vec()];
    let mut lines = String::new();
    let mut last_err = None;
    let mut answered = 0;
    for ep in client.endpoints() {
        match client.status_of(ep).await {
            Ok(r) => {
                answered += 1;
                lines.push_str(&r.raw);
                lines.push('\n');
                let field = |name: &str| match r.body.get(name) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => "-".to_string(),
                    Some(v) => v.to_string(),
                };
                rows.push(vec![
                    ep.clone(),
                    field("id"),
                    field("role"),
                    field("term"),
                    field("leader_id"),
                    field("commit_index"),
                    field("last_applied"),
                    field("last_log_index"),
                    field("snapshot_index"),
                ]);
            }
            Err(e) => {
                let mut row = vec![ep.clone(), "unreachable".to_string()];
                row.resize(COLUMNS.len(), "-".to_string());
                rows.push(row);
                last_err = Some(e);
            }
        }
    }
    if answered == 0
        && let Some(e) = last_err
    {
        return Err(e);
    }
    if json {
        return Ok(lines);
    }
    Ok(table(&rows))
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        let e = parse_pair("a=b=c").unwrap();
        assert_eq!((e.key.as_str(), e.value.as_str()), ("a", "b=c"));
        assert_eq!(parse_pair("k=").unwrap().value, "");
        assert!(parse_pair("=v").is_err());
        assert!(parse_pair("novalue").is_err());
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string()],
            vec!["ccc".to_string(), "d".to_string()],
        ];
        assert_eq!(table(&rows), "A    BB\nccc  d\n");
    }

    #[test]
    fn tls_and_token_flags_parse_beside_a_key_argument() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "kvctl", "put", "k", "v", "--cacert", "ca.pem", "--cert", "c.pem", "--key", "k.pem",
            "--token", "t",
        ])
        .unwrap();
        assert_eq!(a.cacert, Some(PathBuf::from("ca.pem")));
        assert_eq!(a.client_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(a.client_key, Some(PathBuf::from("k.pem")));
        assert_eq!(a.token.as_deref(), Some("t"));
        assert!(matches!(a.command, Cmd::Put { ref key, .. } if key == "k"));
        assert!(Args::try_parse_from(["kvctl", "--cert", "c.pem", "status"]).is_err());
        assert!(Args::try_parse_from(["kvctl", "--key", "k.pem", "status"]).is_err());
    }

    #[test]
    fn output_is_text_unless_table_or_json_is_asked_for() {
        let output = |args: &[&str]| Args::try_parse_from(args).unwrap().output();
        assert_eq!(output(&["kvctl", "status"]), Output::Text);
        assert_eq!(
            output(&["kvctl", "--output", "table", "status"]),
            Output::Table
        );
        assert_eq!(
            output(&["kvctl", "status", "--output", "json"]),
            Output::Json
        );
        assert_eq!(output(&["kvctl", "--json", "status"]), Output::Json);
        assert!(Args::try_parse_from(["kvctl", "--output", "yaml", "status"]).is_err());
        let a = Args::try_parse_from(["kvctl", "completion", "fish"]).unwrap();
        assert!(matches!(
            a.command,
            Cmd::Completion {
                shell: clap_complete::Shell::Fish
            }
        ));
    }

    #[test]
    fn a_bad_value_from_a_variable_names_it() {
        let e = Args::try_parse_from(["kvctl", "--output", "yaml", "status"]).unwrap_err();
        let from = |value: &str| {
            from_variable(&e, |name| {
                (name == "RAFTKV_OUTPUT").then(|| value.to_string())
            })
        };
        let message = from("yaml").unwrap();
        assert!(
            message.starts_with("RAFTKV_OUTPUT: invalid value 'yaml' for '--output")
                && message.contains("possible values: text, table, json"),
            "{message}"
        );
        // The flag's value, not the variable's: clap's own error stands.
        assert_eq!(from("json"), None);
        let other = Args::try_parse_from(["kvctl", "--bogus"]).unwrap_err();
        assert_eq!(from_variable(&other, |_| Some("x".into())), None);
    }

    #[test]
    fn global_flags_may_follow_the_subcommand() {
        let a = Args::try_parse_from(["kvctl", "put", "k", "v", "--seq", "7", "--client-id", "c"])
            .unwrap();
        assert_eq!(a.seq, Some(7));
        assert_eq!(a.client_id.as_deref(), Some("c"));
        assert!(Args::try_parse_from(["kvctl", "get", "k", "--consistency", "quorum"]).is_err());
    }

    #[test]
    fn reads_are_readindex_unless_told_otherwise() {
        let read = |args: &[&str]| match Args::try_parse_from(args).unwrap().command {
            Cmd::Get { read, .. } | Cmd::Mget { read, .. } => read.options(),
            other => panic!("{other:?}"),
        };
        let plain = read(&["kvctl", "get", "k"]);
        assert_eq!(plain.consistency, Some(ReadPolicy::ReadIndex));
        assert_eq!(plain.min_index, None);
        let lease = read(&[
            "kvctl",
            "get",
            "k",
            "--consistency",
            "lease",
            "--min-index",
            "9",
        ]);
        assert_eq!(
            (lease.consistency, lease.min_index),
            (Some(ReadPolicy::Lease), Some(9))
        );
        let m = read(&["kvctl", "mget", "a", "b", "--consistency", "stale"]);
        assert_eq!(m.consistency, Some(ReadPolicy::Stale));
        let a = Args::try_parse_from(["kvctl", "leader", "transfer", "n2"]).unwrap();
        assert!(matches!(
            a.command,
            Cmd::Leader { command: LeaderCmd::Transfer { id: Some(id) } } if id == "n2"
        ));
    }
}
