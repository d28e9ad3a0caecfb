//! kvserver's command line and the validated configuration it becomes.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use raftkv_core::kvsm::SessionLimits;
use raftkv_core::opcache::DEFAULT_TTL_MS;
use raftkv_core::raft::Config;
use raftkv_core::{NodeId, ReadPolicy, WriteMode};
use serde::{Deserialize, Serialize};

use crate::engine::EngineKind;

/// The disk engine fsyncs a commit at least this often by default, in milliseconds.
pub const DEFAULT_ENGINE_SYNC_MS: u64 = 1000;
/// The disk engine's page cache by default, in MiB.
pub const DEFAULT_ENGINE_CACHE_MIB: usize = crate::engine::disk::DEFAULT_CACHE_BYTES >> 20;
/// The default lag within which a learner may be promoted (core's default).
pub const DEFAULT_PROMOTE_LAG: u64 = 100;
/// The default limit on a request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default byte budget of one AppendEntries' entries: 1 MiB (etcd's MaxSizePerMsg).
pub const DEFAULT_MAX_APPEND_BYTES: u64 = 1024 * 1024;
/// Default `--snapshot-chunk-bytes`: 1 MiB.
pub const DEFAULT_SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
/// The default cap on the bytes of entries a leader keeps waiting for a quorum: 64 MiB.
pub const DEFAULT_MAX_UNCOMMITTED_BYTES: u64 = 64 * 1024 * 1024;
/// What an entry adds on the wire besides its request body: the key (in the URL, up to
/// several KiB), the client id, field names and numbers. Generous on purpose.
pub const ENTRY_WIRE_OVERHEAD: u64 = 16 * 1024;
/// JSON writes a control character as `\u00XX`: a string can take up to six bytes per byte.
pub const JSON_WORST_EXPANSION: u64 = 6;

/// Snapshot every this many applied entries by default, so the log (and a restart's replay of
/// it) stays bounded without the operator having to ask.
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 10_000;
/// Entries kept behind each snapshot by default: a follower up to this far behind catches up
/// with appends rather than a whole snapshot.
pub const DEFAULT_SNAPSHOT_TRAILING: u64 = 1_000;
/// How long a read waits by default for its `min_index` to be applied before it is answered
/// `not_caught_up`.
pub const DEFAULT_MIN_INDEX_TIMEOUT_MS: u64 = 5_000;
/// How long an idle client session lives, by default: an hour.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3_600);
/// The most client sessions kept, by default.
pub const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Parses a duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`), e.g. `1h`, `90s`,
/// `500ms`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 1h, 90s or 500ms"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m, h or d)")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// kvserver's command line, as documented in ARCHITECTURE.md ("kvserver command line").
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kvserver",
    version,
    about = "One raftkv node: a replicated key-value store served over HTTP.",
    after_help = "Without --peers the node is a single-node cluster of itself. \
                  With --peers it serves the client API and the /raft/* routes on --addr. \
                  With --join it waits until a running cluster's leader adds it. The data dir \
                  keeps the configuration of the first start: later starts use it.\n\n\
                  Every flag can also come from a TOML file (--config FILE; keys are the long \
                  flag names, e.g. data-dir = \"/var/lib/raftkv\") or an environment variable \
                  RAFTKV_<FLAG> (e.g. RAFTKV_DATA_DIR). A flag wins over the variable, and the \
                  variable over the file."
)]
pub struct Args {
    /// Read settings from this TOML file: one key per long flag name (`data-dir = "..."`,
    /// `heartbeat-ms = 50`, `peers = ["n1=h:1", ...]`). Flags and RAFTKV_* variables win over
    /// it. Also RAFTKV_CONFIG.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id.
    #[arg(long, default_value = "n1")]
    pub id: String,
    /// Address (host:port) to serve the client API on.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub addr: String,
    /// Directory for durable state; created if missing. Default: ./data/<id>.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Cluster members as id=host:port (their --peer-addr), comma-separated, this node
    /// included. Read on the first start only: the data dir keeps the configuration from then
    /// on.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<Peer>,
    /// Join a running cluster instead: client addresses (host:port, comma-separated) of
    /// members to learn the others' peer addresses from. The node waits, never campaigning, until the leader
    /// adds it (`kvctl member add-learner`).
    #[arg(long, value_delimiter = ',', conflicts_with = "peers")]
    pub join: Vec<String>,
    /// A learner is promoted to voter only once it is within this many entries of the
    /// leader's log (409 `not_caught_up` before).
    #[arg(long, default_value_t = DEFAULT_PROMOTE_LAG)]
    pub promote_lag: u64,
    /// How reads are served unless a request says otherwise (?consistency=): stale (local),
    /// readindex (linearizable: the leader confirms its leadership with a quorum) or lease
    /// (linearizable while clocks drift less than --lease-drift-ms: the leader answers from
    /// its lease, without a quorum round, and falls back to readindex without one).
    #[arg(long, default_value = "readindex")]
    pub read_policy: ReadPolicy,
    /// The clock drift a leader's read lease allows for, in milliseconds: a lease lasts the
    /// election timeout min minus this from the heartbeat round that granted it. Must be below
    /// the election timeout min. Default: core's (30 ms).
    #[arg(long)]
    pub lease_drift_ms: Option<u64>,
    /// The longest a read with ?min_index= waits for this node to apply that index before it
    /// is answered 503 not_caught_up, in milliseconds (a request may ask for less: ?wait_ms=).
    #[arg(long, default_value_t = DEFAULT_MIN_INDEX_TIMEOUT_MS)]
    pub min_index_timeout_ms: u64,
    /// When writes are answered: sync (once applied) or async (at once, with an op id).
    #[arg(long, default_value = "sync")]
    pub write_mode: WriteMode,
    /// Snapshot after this many applied entries; 0 disables snapshots.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_THRESHOLD)]
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind each snapshot, so a follower a little behind catches up
    /// with ordinary appends instead of a whole snapshot; 0 compacts up to the snapshot.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_TRAILING)]
    pub snapshot_trailing: u64,
    /// The most snapshot bytes one InstallSnapshot chunk carries (a snapshot crosses to a
    /// follower in chunks of this size, a few in flight at a time).
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_CHUNK_BYTES)]
    pub snapshot_chunk_bytes: u64,
    /// Election timeout range in milliseconds, as MIN-MAX.
    #[arg(long, default_value = "150-300")]
    pub election_timeout_ms: TimeoutRange,
    /// Leader heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How long an async-mode write's result stays fetchable at /ops/{op_id}, in seconds.
    #[arg(long, default_value_t = DEFAULT_TTL_MS / 1000)]
    pub op_ttl_secs: u64,
    /// The byte budget of the entries one AppendEntries carries (an entry larger than it
    /// travels alone).
    #[arg(long, default_value_t = DEFAULT_MAX_APPEND_BYTES)]
    pub max_append_bytes: u64,
    /// The most bytes of entries the leader keeps waiting for a quorum; writes past it are
    /// refused with 503 `overloaded` (0: no cap).
    #[arg(long, default_value_t = DEFAULT_MAX_UNCOMMITTED_BYTES)]
    pub max_uncommitted_bytes: u64,
    /// A client session idle this long, in log time (the leaders' clocks), is dropped; its
    /// later writes get 409 `session_expired`. A duration such as 1h, 90s or 500ms; 0: never.
    /// Every node of a cluster must use the same value.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub session_ttl: Duration,
    /// The most client sessions kept (the least recently active go first); 0: no cap. Every
    /// node of a cluster must use the same value.
    #[arg(long, default_value_t = DEFAULT_MAX_SESSIONS)]
    pub max_sessions: u64,
    /// Where the KV state lives: disk (a redb database in the data dir; a restart replays
    /// only the log after what it persisted) or memory (rebuilt from the snapshot and the log
    /// at every start).
    #[arg(long, default_value = "disk")]
    pub engine: EngineKind,
    /// With --engine disk: the longest time between two fsynced commits of the state
    /// database, in milliseconds (the others are not fsynced: Raft's log is, and a crash
    /// replays it from the last fsynced one); 0 fsyncs every applied batch.
    #[arg(long, default_value_t = DEFAULT_ENGINE_SYNC_MS)]
    pub engine_sync_ms: u64,
    /// With --engine disk: the state database's page cache, in MiB (misses read the file,
    /// which the kernel's page cache usually holds).
    #[arg(long, default_value_t = DEFAULT_ENGINE_CACHE_MIB)]
    pub engine_cache_mib: usize,
    /// Seed the (missing or empty) data dir from this snapshot file (`kvctl snapshot save`)
    /// for a new single-node cluster of this node, then start it.
    #[arg(long, conflicts_with_all = ["peers", "join"])]
    pub restore: Option<PathBuf>,
    /// The cluster's id: Raft requests naming another are refused, so two clusters never
    /// talk. Every node of a cluster must use the same value.
    #[arg(long, default_value = crate::transport::auth::DEFAULT_CLUSTER_ID)]
    pub cluster_id: String,
    /// A file holding the cluster's shared secret (at least 16 bytes; surrounding whitespace
    /// is ignored): every Raft request proves it with an HMAC-SHA256 and requests that do not
    /// are refused (401). Without it the Raft routes take any request naming the cluster id.
    /// Every node of a cluster must use the same secret.
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Address (host:port) to serve peers on: Raft travels there, never on the client port.
    /// Needed by every member of a cluster of more than one node; `--peers` and `kvctl member
    /// add` give these addresses.
    #[arg(long)]
    pub peer_addr: Option<String>,
    /// How peers talk: `stream` (one connection per peer and direction, binary frames) or
    /// `http` (one JSON POST per message, the seed's routes; for debugging).
    #[arg(long, default_value = "stream")]
    pub peer_protocol: PeerProtocol,
    /// This node's certificate chain (PEM) for mutual TLS between peers; needs --peer-key and
    /// --peer-ca. The certificate must name the node id as a DNS subject alternative name.
    #[arg(long, requires_all = ["peer_key", "peer_ca"])]
    pub peer_cert: Option<PathBuf>,
    /// The private key (PEM) of --peer-cert.
    #[arg(long, requires = "peer_cert")]
    pub peer_key: Option<PathBuf>,
    /// The cluster's CA (PEM): peers must present a certificate it signed.
    #[arg(long, requires = "peer_cert")]
    pub peer_ca: Option<PathBuf>,
    /// Serve the client API over TLS with this certificate chain (PEM); needs --key. Every
    /// member of a cluster serves its client API the same way (all TLS or none): redirects to
    /// the leader keep the scheme.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Clients must present a certificate signed by this CA (PEM) to reach the client API;
    /// needs --cert.
    #[arg(long, requires = "cert")]
    pub client_ca: Option<PathBuf>,
    /// Every client request but /healthz must carry `Authorization: Bearer <token>` with a
    /// token of this file, whose role covers the route: lines of `TOKEN NAME ROLE`, roles
    /// read, write, admin; `#` starts a comment line (docs/client-auth.md). Read at start only.
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// The CA (PEM) this node trusts when it calls another member's client API over https
    /// (`--join`). With --cert, a `--join` address without a scheme means https, and --cert and
    /// --key are this node's client certificate there.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// A file holding the admin token (surrounding whitespace ignored) this node sends when it
    /// asks the `--join` addresses for the members (`GET /cluster`, an admin route), for a
    /// cluster with --tokens-file. A file rather than the token itself: command lines are
    /// visible to every user of the machine.
    #[arg(long)]
    pub join_token_file: Option<PathBuf>,
    /// How log lines are written to stderr: `text` for people, `json` (one object per line)
    /// for a log pipeline. `RUST_LOG` picks the levels (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`: how log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event: timestamp, level, target, fields, and the spans' fields
    /// (`node`, `request_id`, ...).
    Json,
}

/// The files of the client API's TLS set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The CA client certificates must be signed by, if clients must present one.
    pub client_ca: Option<PathBuf>,
}

/// How peers talk (`--peer-protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerProtocol {
    /// Persistent connections with batched binary frames (see docs/peer-transport.md).
    #[default]
    Stream,
    /// One HTTP POST of JSON per message on the seed's `/raft/*` routes.
    Http,
}

/// The files of a node's peer TLS set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTlsFiles {
    /// This node's certificate chain.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The cluster's CA.
    pub ca: PathBuf,
}

/// One cluster member: its id and peer address (where Raft reaches it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// The member's id.
    pub id: NodeId,
    /// Its address, host:port.
    pub addr: String,
}

impl FromStr for Peer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((id, addr)) if !id.trim().is_empty() && !addr.trim().is_empty() => Ok(Peer {
                id: NodeId::from(id.trim()),
                addr: addr.trim().to_string(),
            }),
            _ => Err(format!("expected id=host:port, got {s:?}")),
        }
    }
}

/// A range of milliseconds written `MIN-MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutRange {
    /// The lower bound.
    pub min: u64,
    /// The upper bound, at least `min`.
    pub max: u64,
}

impl FromStr for TimeoutRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected MIN-MAX in milliseconds with 0 < MIN <= MAX, got {s:?}");
        let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
        let min: u64 = lo.trim().parse().map_err(|_| bad())?;
        let max: u64 = hi.trim().parse().map_err(|_| bad())?;
        if min == 0 || min > max {
            return Err(bad());
        }
        Ok(TimeoutRange { min, max })
    }
}

impl fmt::Display for TimeoutRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// A command line that parses but cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--peers` does not name this node.
    #[error("--peers must list this node ({0}) with its own address")]
    SelfNotInPeers(NodeId),
    /// Some other value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Everything a kvserver runs with, validated.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This node.
    pub id: NodeId,
    /// The address to bind; port 0 picks a free one.
    pub addr: String,
    /// Where durable state lives.
    pub data_dir: PathBuf,
    /// Every member, this node included, for the first start (empty: a single node, or
    /// joining).
    pub peers: Vec<Peer>,
    /// Addresses of members of a running cluster to join (empty: not joining).
    pub join: Vec<String>,
    /// How far behind the leader a learner may be and still be promoted, in entries.
    pub promote_lag: u64,
    /// How reads are served by default.
    pub read_policy: ReadPolicy,
    /// The clock drift a read lease allows for, in milliseconds (below the election timeout
    /// min).
    pub lease_drift_ms: u64,
    /// The longest a read waits for its `min_index`.
    pub min_index_timeout: Duration,
    /// When writes are answered.
    pub write_mode: WriteMode,
    /// Entries applied between snapshots; 0 disables snapshots.
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind each snapshot.
    pub snapshot_trailing: u64,
    /// Snapshot bytes per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: u64,
    /// Election timeout range.
    pub election_timeout_ms: TimeoutRange,
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How long async results stay fetchable.
    pub op_ttl: Duration,
    /// The byte budget of one AppendEntries' entries.
    pub max_append_bytes: u64,
    /// The cap on uncommitted bytes at the leader (0: none).
    pub max_uncommitted_bytes: u64,
    /// Client session limits (the same on every node).
    pub session_limits: SessionLimits,
    /// The storage engine of the KV state.
    pub engine: EngineKind,
    /// The disk engine's longest time between fsynced commits (zero: every commit).
    pub engine_sync: Duration,
    /// The disk engine's page cache, in bytes.
    pub engine_cache_bytes: usize,
    /// The cluster id peers must name.
    pub cluster_id: String,
    /// The file of the cluster's shared secret, if Raft requests must prove it.
    pub cluster_secret_file: Option<PathBuf>,
    /// The peer listener's address; `None`: this node serves no peers (a lone node).
    pub peer_addr: Option<String>,
    /// How peers talk.
    pub peer_protocol: PeerProtocol,
    /// Mutual TLS between peers, if set up.
    pub peer_tls: Option<PeerTlsFiles>,
    /// TLS on the client API, if set up.
    pub client_tls: Option<ClientTlsFiles>,
    /// The bearer tokens of the client API; `None`: the API is open.
    pub tokens_file: Option<PathBuf>,
    /// The CA trusted when this node calls another member's client API (`--join`).
    pub cacert: Option<PathBuf>,
    /// The file of the token sent with those calls.
    pub join_token_file: Option<PathBuf>,
}

impl ServerConfig {
    /// A single-node configuration with every default, as tests and embedders want it.
    pub fn single_node(id: &str, addr: &str, data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            id: NodeId::from(id),
            addr: addr.to_string(),
            data_dir: data_dir.into(),
            peers: Vec::new(),
            join: Vec::new(),
            promote_lag: DEFAULT_PROMOTE_LAG,
            read_policy: ReadPolicy::ReadIndex,
            lease_drift_ms: default_lease_drift_ms(),
            min_index_timeout: Duration::from_millis(DEFAULT_MIN_INDEX_TIMEOUT_MS),
            write_mode: WriteMode::Sync,
            snapshot_threshold: DEFAULT_SNAPSHOT_THRESHOLD,
            snapshot_trailing: DEFAULT_SNAPSHOT_TRAILING,
            snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK_BYTES,
            election_timeout_ms: TimeoutRange { min: 150, max: 300 },
            heartbeat_ms: 50,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            op_ttl: Duration::from_millis(DEFAULT_TTL_MS),
            max_append_bytes: DEFAULT_MAX_APPEND_BYTES,
            max_uncommitted_bytes: DEFAULT_MAX_UNCOMMITTED_BYTES,
            session_limits: SessionLimits {
                ttl: DEFAULT_SESSION_TTL.as_millis() as u64,
                max: DEFAULT_MAX_SESSIONS,
            },
            engine: EngineKind::default(),
            engine_sync: Duration::from_millis(DEFAULT_ENGINE_SYNC_MS),
            engine_cache_bytes: DEFAULT_ENGINE_CACHE_MIB << 20,
            cluster_id: crate::transport::auth::DEFAULT_CLUSTER_ID.to_string(),
            cluster_secret_file: None,
            peer_addr: None,
            peer_protocol: PeerProtocol::Stream,
            peer_tls: None,
            client_tls: None,
            tokens_file: None,
            cacert: None,
            join_token_file: None,
        }
    }

    /// The largest AppendEntries this configuration can send, on the wire, at worst: a full
    /// byte budget or one largest entry (which travels alone), every byte JSON-escaped.
    pub fn largest_append_bytes(&self) -> u64 {
        let largest_entry = self.max_body_bytes as u64 + ENTRY_WIRE_OVERHEAD;
        JSON_WORST_EXPANSION * self.max_append_bytes.max(largest_entry) + ENTRY_WIRE_OVERHEAD
    }

    /// The bytes of one window of snapshot chunks on the wire (base64 makes a chunk 4/3 of its
    /// bytes): the peer queues and the inbox hold at least this, or a larger
    /// `--snapshot-chunk-bytes` would have chunks refused on every round.
    pub fn snapshot_window_wire_bytes(&self) -> usize {
        let window = self.raft_config().snapshot_window as u64;
        let chunk = self.snapshot_chunk_bytes.saturating_mul(4) / 3 + 1024;
        usize::try_from(window.saturating_mul(chunk)).unwrap_or(usize::MAX)
    }

    /// The Raft node's configuration as the command line gives it: every member of `peers`
    /// votes (this node alone without `--peers`, nobody when joining). kvserver replaces the
    /// voters with the stored configuration ([`crate::cluster_file`]) after the first start.
    pub fn raft_config(&self) -> Config {
        let mut voters: Vec<NodeId> = self.peers.iter().map(|p| p.id.clone()).collect();
        if voters.is_empty() && self.join.is_empty() {
            voters.push(self.id.clone());
        }
        voters.sort();
        let mut raft = Config::new(self.id.clone(), voters);
        raft.election_timeout_min = self.election_timeout_ms.min;
        raft.election_timeout_max = self.election_timeout_ms.max;
        raft.heartbeat_interval = self.heartbeat_ms;
        raft.snapshot_threshold = self.snapshot_threshold;
        raft.snapshot_trailing = self.snapshot_trailing;
        raft.snapshot_chunk_size = self.snapshot_chunk_bytes;
        raft.max_bytes_per_append = self.max_append_bytes;
        raft.max_uncommitted_bytes = self.max_uncommitted_bytes;
        raft.lease_drift_margin = self.lease_drift_ms;
        raft.max_promote_lag = self.promote_lag;
        raft
    }
}

/// Core's default lease drift margin.
fn default_lease_drift_ms() -> u64 {
    Config::new(NodeId::default(), Vec::new()).lease_drift_margin
}

impl TryFrom<Args> for ServerConfig {
    type Error = ConfigError;

    fn try_from(a: Args) -> Result<Self, Self::Error> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let id = NodeId::from(a.id.trim());
        if id.as_str().is_empty() {
            return invalid("--id must not be empty");
        }
        if !a.peers.is_empty() && !a.peers.iter().any(|p| p.id == id) {
            return Err(ConfigError::SelfNotInPeers(id));
        }
        let mut ids: Vec<&NodeId> = a.peers.iter().map(|p| &p.id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return invalid("--peers lists a node more than once");
        }
        // Core's timing rule, checked here to name the flags it comes from.
        Config::validate_timing(
            a.heartbeat_ms,
            a.election_timeout_ms.min,
            a.election_timeout_ms.max,
        )
        .map_err(|e| {
            ConfigError::Invalid(format!("--heartbeat-ms / --election-timeout-ms: {}", e.0))
        })?;
        if a.max_body_bytes == 0 {
            return invalid("--max-body-bytes must be above 0");
        }
        if a.op_ttl_secs == 0 {
            return invalid("--op-ttl-secs must be above 0");
        }
        if a.min_index_timeout_ms == 0 {
            return invalid("--min-index-timeout-ms must be above 0");
        }
        // A lease must outlast its drift margin, or it would never serve a read.
        let lease_drift_ms = a.lease_drift_ms.unwrap_or_else(default_lease_drift_ms);
        if lease_drift_ms >= a.election_timeout_ms.min {
            let given = match a.lease_drift_ms {
                Some(_) => "",
                None => " (its default)",
            };
            return Err(ConfigError::Invalid(format!(
                "--lease-drift-ms {lease_drift_ms}{given} must be below the election timeout \
                 min ({} ms, --election-timeout-ms)",
                a.election_timeout_ms.min
            )));
        }
        let join: Vec<String> = a.join.iter().map(|j| j.trim().to_string()).collect();
        if join.iter().any(String::is_empty) {
            return invalid("--join lists an empty address");
        }
        let data_dir = a
            .data_dir
            .unwrap_or_else(|| PathBuf::from("data").join(id.as_str()));
        let config = ServerConfig {
            peers: a.peers,
            join,
            promote_lag: a.promote_lag,
            id,
            addr: a.addr,
            data_dir,
            read_policy: a.read_policy,
            lease_drift_ms,
            min_index_timeout: Duration::from_millis(a.min_index_timeout_ms),
            write_mode: a.write_mode,
            snapshot_threshold: a.snapshot_threshold,
            snapshot_trailing: a.snapshot_trailing,
            snapshot_chunk_bytes: a.snapshot_chunk_bytes,
            election_timeout_ms: a.election_timeout_ms,
            heartbeat_ms: a.heartbeat_ms,
            max_body_bytes: a.max_body_bytes,
            op_ttl: Duration::from_secs(a.op_ttl_secs),
            max_append_bytes: a.max_append_bytes,
            max_uncommitted_bytes: a.max_uncommitted_bytes,
            session_limits: SessionLimits {
                ttl: u64::try_from(a.session_ttl.as_millis()).unwrap_or(u64::MAX),
                max: a.max_sessions,
            },
            engine: a.engine,
            engine_sync: Duration::from_millis(a.engine_sync_ms),
            engine_cache_bytes: a.engine_cache_mib.saturating_mul(1 << 20),
            cluster_id: a.cluster_id,
            cluster_secret_file: a.cluster_secret_file,
            peer_addr: a.peer_addr,
            peer_protocol: a.peer_protocol,
            peer_tls: match (a.peer_cert, a.peer_key, a.peer_ca) {
                (Some(cert), Some(key), Some(ca)) => Some(PeerTlsFiles { cert, key, ca }),
                _ => None,
            },
            client_tls: match (a.cert, a.key) {
                (Some(cert), Some(key)) => Some(ClientTlsFiles {
                    cert,
                    key,
                    client_ca: a.client_ca,
                }),
                _ => None,
            },
            tokens_file: a.tokens_file,
            cacert: a.cacert,
            join_token_file: a.join_token_file,
        };
        if config.peer_addr.is_none() && (!config.join.is_empty() || config.peers.len() > 1) {
            return invalid(
                "a member of a cluster needs --peer-addr: peers talk on a listener of their own",
            );
        }
        // Every AppendEntries must fit the peers' body limit, or a follower refuses it forever.
        let largest = config.largest_append_bytes();
        let limit = crate::transport::server::DEFAULT_BODY_LIMIT as u64;
        if largest > limit {
            return Err(ConfigError::Invalid(format!(
                "--max-body-bytes {} and --max-append-bytes {} allow an AppendEntries of up to \
                 {largest} bytes on the wire, over the {limit}-byte limit of peer messages; \
                 lower them",
                config.max_body_bytes, config.max_append_bytes
            )));
        }
        if a.max_append_bytes == 0 {
            return invalid("--max-append-bytes must be above 0");
        }
        // A chunk travels as base64 (4 bytes for 3) in a JSON envelope.
        let chunk_wire = config.snapshot_chunk_bytes.saturating_mul(4).div_ceil(3) + 64 * 1024;
        if config.snapshot_chunk_bytes == 0 || chunk_wire > limit {
            return Err(ConfigError::Invalid(format!(
                "--snapshot-chunk-bytes {} must be above 0 and travel in the {limit}-byte limit \
                 of peer messages (about {chunk_wire} bytes on the wire)",
                config.snapshot_chunk_bytes
            )));
        }
        // Whatever else core requires of the node's configuration (the one check core, kvserver
        // and the web bindings share), refused now rather than when the node starts.
        config
            .raft_config()
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServerConfig, String> {
        let a = Args::try_parse_from(std::iter::once("kvserver").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        ServerConfig::try_from(a).map_err(|e| e.to_string())
    }

    #[test]
    fn session_limits_parse_as_durations_and_counts() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.session_limits.ttl, 3_600_000);
        assert_eq!(c.session_limits.max, 100_000);
        let c = parse(&["--session-ttl", "90s", "--max-sessions", "5"]).unwrap();
        assert_eq!(
            c.session_limits,
            SessionLimits {
                ttl: 90_000,
                max: 5
            }
        );
        for (text, ms) in [
            ("500ms", 500),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("7", 7_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        assert_eq!(
            parse(&["--session-ttl", "0"]).unwrap().session_limits.ttl,
            0
        );
        for bad in ["", "h", "1 fortnight", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&["--session-ttl", "soon"]).is_err());
    }

    #[test]
    fn a_window_of_snapshot_chunks_is_counted_in_wire_bytes() {
        let c = parse(&["--snapshot-chunk-bytes", "4194304"]).unwrap();
        let chunk_on_the_wire = 4_194_304 * 4 / 3;
        let window = c.raft_config().snapshot_window;
        assert!(c.snapshot_window_wire_bytes() >= window * chunk_on_the_wire);
        assert!(c.snapshot_window_wire_bytes() < window * (chunk_on_the_wire + 4096));
        assert!(
            parse(&["--engine-cache-mib", "8"])
                .unwrap()
                .engine_cache_bytes
                == 8 << 20
        );
    }

    #[test]
    fn defaults_make_a_single_node() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.id, NodeId::from("n1"));
        assert_eq!(c.addr, "127.0.0.1:7001");
        assert_eq!(c.data_dir, PathBuf::from("data/n1"));
        // Linearizable by default, like etcd.
        assert_eq!(c.read_policy, ReadPolicy::ReadIndex);
        assert_eq!(c.write_mode, WriteMode::Sync);
        assert_eq!(c.min_index_timeout, Duration::from_secs(5));
        assert_eq!(c.raft_config().lease_drift_margin, default_lease_drift_ms());
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.op_ttl, Duration::from_secs(60));
        assert_eq!(c.snapshot_threshold, 10_000);
        assert_eq!(c.snapshot_trailing, 1_000);
    }

    #[test]
    fn every_documented_flag_parses() {
        let c = parse(&[
            "--id",
            "n2",
            "--addr",
            "127.0.0.1:7002",
            "--data-dir",
            "/tmp/x",
            "--peers",
            "n2=127.0.0.1:7002",
            "--read-policy",
            "lease",
            "--lease-drift-ms",
            "50",
            "--min-index-timeout-ms",
            "750",
            "--write-mode",
            "async",
            "--snapshot-threshold",
            "100",
            "--snapshot-trailing",
            "50",
            "--election-timeout-ms",
            "200-400",
            "--heartbeat-ms",
            "20",
            "--max-body-bytes",
            "4096",
        ])
        .unwrap();
        assert_eq!(c.id, NodeId::from("n2"));
        assert_eq!(c.read_policy, ReadPolicy::Lease);
        assert_eq!(c.raft_config().lease_drift_margin, 50);
        assert_eq!(c.min_index_timeout, Duration::from_millis(750));
        assert_eq!(c.write_mode, WriteMode::Async);
        assert_eq!(c.election_timeout_ms, TimeoutRange { min: 200, max: 400 });
        assert_eq!(c.heartbeat_ms, 20);
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(c.snapshot_threshold, 100);
        assert_eq!(c.snapshot_trailing, 50);
        assert_eq!(c.peers.len(), 1);
    }

    #[test]
    fn body_limits_must_fit_the_largest_append_entries_in_a_peer_message() {
        let c = parse(&[]).unwrap();
        assert!(c.largest_append_bytes() <= crate::transport::server::DEFAULT_BODY_LIMIT as u64);
        assert_eq!(
            c.raft_config().max_bytes_per_append,
            DEFAULT_MAX_APPEND_BYTES
        );
        // A 16 MiB request body makes an entry whose message could pass 64 MiB on the wire.
        let err = parse(&["--max-body-bytes", "16777216"]).unwrap_err();
        assert!(
            err.contains("over the 67108864-byte limit of peer messages"),
            "{err}"
        );
        let err = parse(&["--max-append-bytes", "33554432"]).unwrap_err();
        assert!(err.contains("--max-append-bytes 33554432"), "{err}");
        assert!(parse(&["--max-append-bytes", "0"]).is_err());
        let c = parse(&["--max-uncommitted-bytes", "1000"]).unwrap();
        assert_eq!(c.raft_config().max_uncommitted_bytes, 1000);
    }

    #[test]
    fn multi_node_peers_parse_and_must_include_this_node() {
        let two = "n1=127.0.0.1:7101,n2=127.0.0.1:7102";
        let err = parse(&["--peers", two]).unwrap_err();
        assert!(err.contains("needs --peer-addr"), "{err}");
        let c = parse(&[
            "--peers",
            "n1=127.0.0.1:7001,n2=127.0.0.1:7002",
            "--peer-addr",
            "127.0.0.1:7001",
        ])
        .unwrap();
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[1].addr, "127.0.0.1:7002");
        let err = parse(&["--peers", "n2=127.0.0.1:7002,n3=127.0.0.1:7003"]).unwrap_err();
        assert!(err.contains("must list this node (n1)"), "{err}");
        let err = parse(&["--peers", "n1=127.0.0.1:7001,n1=127.0.0.1:7002"]).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
    }

    #[test]
    fn the_lease_drift_margin_must_be_below_the_election_timeout_min() {
        let err = parse(&["--lease-drift-ms", "150"]).unwrap_err();
        assert!(
            err.contains("--lease-drift-ms 150 must be below the election timeout min (150 ms"),
            "{err}"
        );
        assert!(parse(&["--lease-drift-ms", "149"]).is_ok());
        assert!(parse(&["--lease-drift-ms", "0"]).is_ok());
        // Short election timeouts need a smaller margin than the default, and are told so.
        let err = parse(&["--election-timeout-ms", "20-40", "--heartbeat-ms", "5"]).unwrap_err();
        assert!(err.contains("(its default) must be below"), "{err}");
        let c = parse(&[
            "--election-timeout-ms",
            "20-40",
            "--heartbeat-ms",
            "5",
            "--lease-drift-ms",
            "5",
        ])
        .unwrap();
        assert_eq!(c.raft_config().lease_drift_margin, 5);
        assert!(parse(&["--min-index-timeout-ms", "0"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--read-policy", "quorum"]).is_err());
        assert!(parse(&["--write-mode", "later"]).is_err());
        assert!(parse(&["--election-timeout-ms", "300-150"]).is_err());
        assert!(parse(&["--election-timeout-ms", "300"]).is_err());
        let err = parse(&["--heartbeat-ms", "200"]).unwrap_err();
        assert!(
            err.contains("--heartbeat-ms / --election-timeout-ms")
                && err.contains("heartbeat (200 ms) < election timeout min (150 ms)"),
            "{err}"
        );
        let err = parse(&["--heartbeat-ms", "0"]).unwrap_err();
        assert!(err.contains("--heartbeat-ms"), "{err}");
        assert!(parse(&["--peers", "n1"]).is_err());
        assert!(parse(&["--max-body-bytes", "0"]).is_err());
    }

    #[test]
    fn client_tls_flags_go_together() {
        let c = parse(&["--cert", "c.pem", "--key", "k.pem"]).unwrap();
        let tls = c.client_tls.unwrap();
        assert_eq!(
            (tls.cert, tls.key, tls.client_ca),
            (PathBuf::from("c.pem"), PathBuf::from("k.pem"), None)
        );
        let c = parse(&["--cert", "c", "--key", "k", "--client-ca", "ca"]).unwrap();
        assert_eq!(c.client_tls.unwrap().client_ca, Some(PathBuf::from("ca")));
        assert!(parse(&["--cert", "c.pem"]).is_err());
        assert!(parse(&["--key", "k.pem"]).is_err());
        assert!(parse(&["--client-ca", "ca.pem"]).is_err());
        let c = parse(&[
            "--tokens-file",
            "t",
            "--cacert",
            "ca",
            "--join-token-file",
            "j",
        ])
        .unwrap();
        assert!(c.client_tls.is_none());
        assert_eq!(c.tokens_file, Some(PathBuf::from("t")));
        assert_eq!(c.cacert, Some(PathBuf::from("ca")));
        assert_eq!(c.join_token_file, Some(PathBuf::from("j")));
    }

    #[test]
    fn a_joining_node_has_no_voters_and_cannot_also_bootstrap() {
        let join = ["--id", "n4", "--join", "127.0.0.1:7001, 127.0.0.1:7002"];
        assert!(parse(&join).is_err(), "a joining node without --peer-addr");
        let c = parse(&[&join[..], &["--peer-addr", "127.0.0.1:7104"]].concat()).unwrap();
        assert_eq!(c.join, ["127.0.0.1:7001", "127.0.0.1:7002"]);
        assert!(c.raft_config().voters.is_empty());
        assert!(parse(&["--join", "h:1", "--peers", "n1=h:1"]).is_err());
        assert!(parse(&["--join", "h:1,"]).is_err());
        assert_eq!(
            parse(&[]).unwrap().raft_config().voters,
            [NodeId::from("n1")]
        );
        let c = parse(&["--promote-lag", "7"]).unwrap();
        assert_eq!(c.raft_config().max_promote_lag, 7);
        assert_eq!(parse(&[]).unwrap().raft_config().max_promote_lag, 100);
    }
}
