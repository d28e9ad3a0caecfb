//! Running kvserver: bind, open the data dir, start the Raft driver, serve the client API on
//! its address and the peers on theirs, stop gracefully.
//!
//! [`spawn`] starts a server on the current tokio runtime and returns its bound address and a
//! handle to stop it, which is what tests use; [`run`] adds waiting for SIGINT/SIGTERM, which is
//! what the binary uses. On that signal a leader first hands its leadership to the most caught-up
//! voter ([`RunningServer::hand_over`]), so a planned restart costs the cluster no election
//! timeout; then in-flight requests finish and the node stops.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftkv_core::NodeId;
use raftkv_core::raft::{Role, StorageError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::config::PeerProtocol;
use crate::config::{LogFormat, ServerConfig};
use crate::credentials::Credentials;
use crate::dkv::{DistributedKv, DkvConfig};
use crate::driver::{self, DriverConfig, DriverThread, RaftNode, StartError};
use crate::metrics::{self, Instruments, Metrics, Sources};
use crate::node_port::{NodeError, RaftHandle, TransferDone};
use crate::peers::PeerTable;
use crate::shared_sm::SharedSm;
use crate::transport::stream::listener::ListenerStats;
use crate::transport::stream::listener::{ListenerConfig, OnHello};
use crate::transport::{
    self, HttpTransport, PeerTls, PeerTransport, StreamTransport, TransportConfig, TransportError,
    inbox,
};
use crate::{
    client_auth, client_tls, cluster_file, disk, engine, join, membership_api, readiness,
    request_log,
};

/// How long a single-node server waits at start to elect itself and apply its log before it
/// reports ready (it serves anyway afterwards; requests then wait for a leader themselves).
const SINGLE_NODE_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for its outcome before the client hears `unknown_outcome`.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a node that handed its leadership over waits, before it stops, to apply its whole
/// log (so the writes it accepted as leader are answered rather than cut off).
const HAND_OVER_APPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why kvserver could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: io::Error,
    },
    /// The data dir could not be opened.
    #[error("data dir: {0}")]
    Storage(#[from] StorageError),
    /// The Raft node or its driver could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The Raft transport could not be created.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(io::Error),
    /// The cluster secret could not be read or is too short.
    #[error("{0}")]
    Secret(String),
    /// The peer TLS files could not be read or used.
    #[error("peer TLS: {0}")]
    Tls(#[from] transport::tls::TlsError),
    /// The configuration cannot work (a cluster member without a peer listener, a bad tokens
    /// file, ...).
    #[error("{0}")]
    Config(String),
    /// The client API's TLS files could not be read or used.
    #[error("client TLS: {0}")]
    ClientTls(transport::tls::TlsError),
}

/// A server running on a tokio task.
pub struct RunningServer {
    addr: SocketAddr,
    peer_addr: Option<SocketAddr>,
    /// Serves the peer listener; aborted at shutdown.
    peer_task: Option<JoinHandle<()>>,
    service: Arc<DistributedKv>,
    node: RaftNode,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
    driver: DriverThread,
}

impl RunningServer {
    /// The address the server is bound to (with the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the peer listener is bound to, if the node has one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The service behind the API, for tests that inspect the store directly.
    pub fn service(&self) -> &Arc<DistributedKv> {
        &self.service
    }

    /// If this node leads, hands its leadership to the voter core picks (the most caught up)
    /// and waits until this node knows the new leader and has applied its whole log, so that
    /// the writes it accepted are answered. Bounded: the transfer by the driver's transfer
    /// timeout, the apply by [`HAND_OVER_APPLY_TIMEOUT`]. A follower has nothing to hand over.
    /// Meanwhile the node serves on: refused writes say `transferring`, then redirect.
    pub async fn hand_over(&self) -> HandOver {
        if !self.node.is_leader() {
            return HandOver::NotLeader;
        }
        let done = match self.service.transfer_leader(None).await {
            Ok(done) => done,
            Err(e) => return HandOver::Failed(e),
        };
        let last = self.node.view().status.last_log_index;
        let applied = self
            .node
            .wait_for(HAND_OVER_APPLY_TIMEOUT, |v| v.status.last_applied >= last)
            .await;
        HandOver::Done { done, applied }
    }

    /// Stops accepting connections, lets in-flight requests finish, stops the Raft node (its
    /// stores are released when this returns) and waits until the server has stopped.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        // The receiver is gone only if the server already stopped; the join below reports why.
        let _ = self.shutdown.send(());
        let served = match self.task.await {
            Ok(result) => result.map_err(ServerError::Serve),
            Err(e) => Err(ServerError::Serve(io::Error::other(e))),
        };
        if let Some(peer_task) = self.peer_task {
            peer_task.abort();
            let _ = peer_task.await;
        }
        self.driver.stop().await;
        served
    }
}

/// How [`RunningServer::hand_over`] went.
#[derive(Debug)]
pub enum HandOver {
    /// This node did not lead: nothing to hand over.
    NotLeader,
    /// Another leader took over; `applied` says whether this node then applied its whole log
    /// in time.
    Done {
        /// The transfer.
        done: TransferDone,
        /// This node applied its whole log afterwards.
        applied: bool,
    },
    /// The transfer did not happen (no other voter, the target did not take over, a timeout).
    Failed(NodeError),
}

/// Binds `addr`.
async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Binds `config.addr` (and `config.peer_addr`), opens the data dir, starts the Raft node's
/// driver and serves the client API, and the peers on their own listener, on new tasks of the
/// current runtime.
pub async fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    // Read before anything is bound or written, so a bad file leaves no trace.
    let security = ClientSecurity::load(&config)?;
    let (listener, addr) = bind(&config.addr).await?;
    let peer_listener = match &config.peer_addr {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let peer_addr = peer_listener.as_ref().map(|(_, a)| *a);
    // One set of instruments per server: tests run several in one process.
    let instruments = Instruments::default();
    let stores =
        disk::open_stores_observed(&config.data_dir, Some(instruments.fsync_seconds.clone()))?;
    // What the node starts from: the stored configuration (written, fsynced, on the first
    // start, before anything is served), which wins over --peers from then on.
    // Members know each other by their peer addresses; a lone node without a peer listener
    // stores its client address, as before peers had a listener of their own.
    let advertised = peer_addr.unwrap_or(addr).to_string();
    let boot = cluster_file::prepare(&config, &advertised)?;
    if peer_addr.is_none() && boot.cluster.addrs.keys().any(|id| *id != config.id) {
        return Err(ServerError::Config(
            "this node's data dir names other members: it needs --peer-addr to reach them".into(),
        ));
    }
    let mut raft = config.raft_config();
    raft.voters = boot.cluster.voters();
    let joining = boot.cluster.bootstrap.is_empty();
    let mut table = PeerTable::new(config.id.clone(), boot.cluster.addrs, Some(boot.store));
    if peer_addr.is_some() {
        table = table.with_client_addr(addr.to_string());
    }
    let peers = Arc::new(table);

    // Opened after the stores, whose lock makes this process the data dir's only user.
    let opening = Instant::now();
    let engine = engine::open(
        config.engine,
        &config.data_dir,
        config.session_limits,
        config.engine_sync,
        config.engine_cache_bytes,
    )?;
    // Start-up time is an operator's figure (restart to serving): say where it goes.
    tracing::info!(
        engine = %config.engine,
        applied = engine.applied_index(),
        took_ms = opening.elapsed().as_millis() as u64,
        "state engine opened"
    );
    let sm = SharedSm::with_engine(engine);
    // Byte budgets: room for a window of snapshot chunks and the largest AppendEntries
    // beside it, whatever --snapshot-chunk-bytes and --max-append-bytes say.
    let largest_append = usize::try_from(config.largest_append_bytes()).unwrap_or(usize::MAX);
    let least_bytes = config
        .snapshot_window_wire_bytes()
        .saturating_add(largest_append);
    let (inbox_tx, inbox_rx) =
        inbox::inbox(driver::INBOX_QUEUE, driver::INBOX_BYTES.max(least_bytes));
    let resolver = {
        let peers = Arc::clone(&peers);
        move |id: &NodeId| peers.get(id)
    };
    let auth = Arc::new(match &config.cluster_secret_file {
        Some(path) => {
            transport::PeerAuth::from_file(&config.cluster_id, path).map_err(ServerError::Secret)?
        }
        None => transport::PeerAuth::open(&config.cluster_id),
    });
    let tls = match &config.peer_tls {
        Some(f) => Some(Arc::new(PeerTls::from_files(&f.cert, &f.key, &f.ca)?)),
        None => None,
    };
    if tls.is_some() && config.peer_protocol == PeerProtocol::Http {
        return Err(ServerError::Config(
            "--peer-protocol http does not do TLS: use the stream protocol with --peer-cert".into(),
        ));
    }
    if peer_addr.is_some() && !auth.has_secret() && tls.is_none() {
        tracing::warn!(
            "neither --peer-cert nor --cluster-secret-file: the peer listener takes any peer that names this cluster's id"
        );
    }
    let mut transport_config = TransportConfig::default();
    transport_config.queue_bytes = transport_config.queue_bytes.max(least_bytes);
    transport_config.auth = Arc::clone(&auth);
    transport_config.client_addr = peer_addr.map(|_| addr.to_string());
    let sent_counters = transport_config.counters.clone();
    let transport = match config.peer_protocol {
        PeerProtocol::Stream => PeerTransport::Stream(StreamTransport::new(
            config.id.clone(),
            resolver,
            transport_config,
            tls.clone(),
        )?),
        PeerProtocol::Http => PeerTransport::Http(HttpTransport::new(
            config.id.clone(),
            resolver,
            transport_config,
        )?),
    };
    let (node, driver) = driver::start(
        DriverConfig {
            raft,
            peers: Arc::clone(&peers),
            propose_timeout: PROPOSE_TIMEOUT,
            // Core abandons a transfer after an election timeout; the target's election
            // takes about one more.
            transfer_timeout: Duration::from_millis((4 * config.election_timeout_ms.max).max(1000)),
            metrics: instruments.raft.clone(),
        },
        stores,
        sm.clone(),
        inbox_rx,
        transport,
    )?;
    let leader_wait = Duration::from_millis(config.election_timeout_ms.max * 2);
    let service = DistributedKv::new(
        Arc::new(node.clone()),
        sm,
        DkvConfig {
            id: config.id.clone(),
            peers: Arc::clone(&peers),
            read_policy: config.read_policy,
            write_mode: config.write_mode,
            op_ttl: config.op_ttl,
            leader_wait,
            min_index_timeout: config.min_index_timeout,
            apply_wait: PROPOSE_TIMEOUT,
        },
    );
    let (peer_task, listener_stats) = match peer_listener {
        Some((listener, _)) => {
            let learn: OnHello = {
                let peers = Arc::clone(&peers);
                Arc::new(move |id: &NodeId, client: &str| peers.learn_client_addr(id, client))
            };
            let (task, stats) =
                serve_peers(&config, listener, Arc::new(inbox_tx), auth, tls, learn);
            (Some(task), stats)
        }
        None => (None, None),
    };
    let metrics = Arc::new(Metrics::new(
        &instruments,
        Sources {
            view: {
                let node = node.clone();
                Arc::new(move || node.view())
            },
            sent: sent_counters,
            listener: listener_stats,
            data_dir: config.data_dir.clone(),
        },
    ));
    // The client port serves no Raft route: peers have their own listener.
    let app = api::router(Arc::clone(&service), config.max_body_bytes)
        .merge(membership_api::router(node.clone(), leader_wait))
        .merge(readiness::router(
            node.clone(),
            Duration::from_millis(config.election_timeout_ms.max),
        ))
        .merge(metrics::router(metrics))
        .merge(crate::debug_events::router(node.clone()))
        .merge(crate::openapi::router());
    #[cfg(feature = "failpoints")]
    let app = app.merge(crate::failpoints::router());
    let app = security
        .wrap(app)
        // Last, so it sees every route (and the fallback, and the tokens' refusals) with
        // its matched path.
        .layer(axum::middleware::from_fn_with_state(
            instruments.http.clone(),
            metrics::http::track,
        ));
    let term: request_log::TermSource = {
        let node = node.clone();
        Arc::new(move || node.view().status.term)
    };
    let app = request_log::wrap(app, &config.id, term);
    if joining && !config.join.is_empty() {
        join::spawn(config.join.clone(), &peers, security.join.clone());
    }
    // Alone in its configuration (as stored, or after the changes in its log).
    let m = node.view().status.membership;
    let single = m.voters.len() == 1 && m.voters.contains(&config.id) && !m.is_joint();
    if single {
        // A lone node elects itself after one election timeout and then applies its log: wait
        // for that before serving, so that reads right after start see every acknowledged
        // write. (It needs no Raft routes to get there; a member of a cluster does, so it serves
        // at once and its stale reads catch up as it learns the commit index.)
        let ready = node
            .wait_for(SINGLE_NODE_READY_TIMEOUT, |v| {
                v.status.role == Role::Leader && v.status.last_applied >= v.status.last_log_index
            })
            .await;
        if !ready {
            tracing::warn!("single node not leader yet; serving anyway");
        }
    }
    let (shutdown, stop) = oneshot::channel::<()>();
    // A dropped sender means the same as a sent signal: stop.
    let stopped = async move {
        let _ = stop.await;
    };
    let task = match &security.tls {
        Some(tls) => {
            let listener = client_tls::TlsListener::new(listener, Arc::clone(tls))
                .map_err(ServerError::Serve)?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }),
    };
    tracing::info!(
        id = %config.id,
        %addr,
        peer_addr = ?peer_addr,
        peer_protocol = ?config.peer_protocol,
        data_dir = %config.data_dir.display(),
        read_policy = %config.read_policy,
        write_mode = %config.write_mode,
        engine = %config.engine,
        members = service.status().peers.len(),
        client_tls = security.tls.is_some(),
        tokens = security.tokens.as_ref().map_or(0, |t| t.len()),
        "kvserver listening"
    );
    Ok(RunningServer {
        addr,
        peer_addr,
        peer_task,
        service,
        node,
        shutdown,
        task,
        driver,
    })
}

/// The client API's TLS and tokens, and what this node shows other members' client API.
struct ClientSecurity {
    tls: Option<Arc<rustls::ServerConfig>>,
    tokens: Option<Arc<client_auth::Tokens>>,
    join: join::JoinAccess,
}

impl ClientSecurity {
    /// Reads every file `config` names for them; errors name the file.
    fn load(config: &ServerConfig) -> Result<Self, ServerError> {
        let tls = match &config.client_tls {
            Some(files) => Some(client_tls::server_config(files).map_err(ServerError::ClientTls)?),
            None => None,
        };
        let tokens = match &config.tokens_file {
            Some(path) => Some(Arc::new(
                client_auth::Tokens::from_file(path).map_err(ServerError::Config)?,
            )),
            None => None,
        };
        if tokens.is_some() && tls.is_none() {
            tracing::warn!(
                "--tokens-file without --cert: bearer tokens cross the network in clear text"
            );
        }
        let identity = config
            .client_tls
            .as_ref()
            .map(|f| (f.cert.as_path(), f.key.as_path()));
        let mut creds = Credentials::load(config.cacert.as_deref(), identity, None)
            .map_err(|e| ServerError::Config(format!("--cacert: {e}")))?;
        if let Some(path) = &config.join_token_file {
            let named = |e: String| {
                ServerError::Config(format!("--join-token-file {}: {e}", path.display()))
            };
            let token = std::fs::read_to_string(path).map_err(|e| named(e.to_string()))?;
            creds = creds.with_token(&token).map_err(named)?;
        }
        Ok(ClientSecurity {
            join: join::JoinAccess {
                https: tls.is_some(),
                creds,
            },
            tls,
            tokens,
        })
    }

    /// `app` behind the tokens (if any), its redirects on https (with TLS).
    fn wrap(&self, app: axum::Router) -> axum::Router {
        let app = client_auth::protect(app, self.tokens.clone());
        match self.tls {
            Some(_) => client_tls::https_redirects(app),
            None => app,
        }
    }
}

/// Serves peers on `listener` with the configured protocol, handing their messages to `inbox`;
/// with the stream protocol, answers the listener's counters too.
fn serve_peers(
    config: &ServerConfig,
    listener: TcpListener,
    inbox: Arc<dyn transport::RaftInbox>,
    auth: Arc<transport::PeerAuth>,
    tls: Option<Arc<PeerTls>>,
    learn: OnHello,
) -> (JoinHandle<()>, Option<Arc<ListenerStats>>) {
    let limit = transport::server::DEFAULT_BODY_LIMIT;
    match config.peer_protocol {
        PeerProtocol::Stream => {
            let (task, stats) = transport::stream::listener::spawn(
                listener,
                ListenerConfig {
                    me: config.id.clone(),
                    auth,
                    inbox,
                    frame_limit: limit,
                    tls,
                    on_hello: Some(learn),
                },
            );
            (task, Some(stats))
        }
        PeerProtocol::Http => {
            let routes = transport::server::router_learning(
                inbox,
                limit,
                auth,
                Some(config.id.clone()),
                Some(learn),
            );
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, routes).await {
                    tracing::error!(error = %e, "the peer listener stopped");
                }
            });
            (task, None)
        }
    }
}

/// Runs a server until SIGINT or SIGTERM, then shuts it down gracefully: a leader hands its
/// leadership over first (a second signal skips the wait), then in-flight requests finish.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let server = spawn(config).await?;
    shutdown_signal().await;
    tokio::select! {
        h = server.hand_over() => match h {
            HandOver::NotLeader => {}
            HandOver::Done { done, applied } => tracing::info!(
                to = %done.to,
                leader = ?done.leader.leader_id,
                applied_all = applied,
                "handed leadership over"
            ),
            HandOver::Failed(e) => tracing::warn!(
                error = %e,
                "could not hand leadership over; stopping anyway (the others elect a leader)"
            ),
        },
        () = shutdown_signal() => tracing::warn!("second signal: not waiting for the hand-over"),
    }
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Sets up logging to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    // A second call (or a test harness that set a subscriber) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .try_init(),
        // The spans' fields (the node, a request's id) on every line, so a log pipeline can
        // filter by them without parsing messages.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
