//! Running kvserver: bind, open the service, serve the API, stop gracefully.
//!
//! [`spawn`] starts a server on the current tokio runtime and returns its bound address and a
//! handle to stop it, which is what tests use; [`run`] adds waiting for SIGINT/SIGTERM, which is
//! what the binary uses.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::config::ServerConfig;
use crate::service::{KvService, OpenError};

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
    /// The data dir or journal could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(io::Error),
}

/// A server running on a tokio task.
pub struct RunningServer {
    addr: SocketAddr,
    service: Arc<KvService>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl RunningServer {
    /// The address the server is bound to (with the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service behind the API, for tests that inspect the store directly.
    pub fn service(&self) -> &Arc<KvService> {
        &self.service
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits until the server
    /// has stopped.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        // The receiver is gone only if the server already stopped; the join below reports why.
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(result) => result.map_err(ServerError::Serve),
            Err(e) => Err(ServerError::Serve(io::Error::other(e))),
        }
    }
}

/// Binds `config.addr`, opens the data dir (replaying the journal) and starts serving on a new
/// task of the current runtime.
pub async fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.addr.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.addr.clone(),
        source,
    })?;
    let service = KvService::open(&config, addr.to_string())?;
    let app = api::router(Arc::clone(&service), config.max_body_bytes);
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender means the same as a sent signal: stop.
                let _ = stop.await;
            })
            .await
    });
    tracing::info!(
        id = %config.id,
        %addr,
        data_dir = %config.data_dir.display(),
        read_policy = %config.read_policy,
        write_mode = %config.write_mode,
        "kvserver listening (single node)"
    );
    Ok(RunningServer {
        addr,
        service,
        shutdown,
        task,
    })
}

/// Runs a server until SIGINT or SIGTERM, then shuts it down gracefully.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let server = spawn(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
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
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (or a test harness that set a subscriber) is harmless: keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .try_init();
}
