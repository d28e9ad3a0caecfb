//! The client API over TLS (`kvserver --cert --key [--client-ca]`): the rustls set-up, a TLS
//! listener for `axum::serve`, and redirects that stay on https.
//!
//! Why a listener of our own rather than a crate such as axum-server: axum 0.8 serves any
//! [`axum::serve::Listener`], so wrapping the TCP listener keeps `axum::serve` and its graceful
//! shutdown exactly as the plain-HTTP path has them (one code path in `server.rs`), with the
//! rustls and tokio-rustls the peers already use, on ring; axum-server would add a second way
//! to serve and shut down, and its own rustls feature set. Handshakes run on tasks of their own,
//! bounded in time ([`HANDSHAKE_TIMEOUT`]) and number ([`MAX_HANDSHAKES`]), so a client that
//! stalls its handshake holds up nobody else's.
//!
//! Certificates: the server presents `--cert` (with its chain) and `--key`; with `--client-ca`
//! every client must present a certificate that CA signed (rustls' WebPKI client verifier: the
//! chain, validity dates and the clientAuth key usage), else the handshake fails. Which client
//! it is does not matter beyond that: what a caller may do is its bearer token's business
//! ([`crate::client_auth`]). TLS 1.2 and 1.3 (rustls' defaults: general-purpose HTTP clients
//! and load balancers still speak 1.2), HTTP/1.1 by ALPN.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::ClientTlsFiles;
use crate::transport::tls::{self, TlsError};

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress (or finished and waiting for the server to take them) at once;
/// connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 256;
/// Finished handshakes waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The rustls configuration of the client API from `files`; errors name the file.
pub fn server_config(files: &ClientTlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let name = |p: &Path| p.display().to_string();
    let chain = tls::parse_chain(&tls::read(&files.cert)?, &name(&files.cert))?;
    let key = tls::parse_key(&tls::read(&files.key)?, &name(&files.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(config)?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = tls::parse_roots(&tls::read(ca)?, &name(ca))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        // The usual cause: a key that is not the certificate's.
        TlsError::File {
            path: format!("{} / {}", name(&files.cert), name(&files.key)),
            why: e.to_string(),
        }
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// A TCP listener whose connections come out TLS-terminated, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    /// Accepts and shakes hands; aborted (with every handshake in progress) when the listener
    /// is dropped, which `axum::serve` does once it stops accepting.
    task: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`'s connections.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let task = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended, which it does only when aborted: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    // Owned here: when this task is aborted the set is dropped, which aborts every handshake.
    let mut handshakes = JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin (as
                        // axum's own TCP listener does).
                        tracing::warn!(error = %e, "client listener cannot accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::debug!(%remote, "too many TLS handshakes in progress; closed a connection");
                    continue;
                };
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                handshakes.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        // The slot is held until the server took the connection, so that
                        // finished handshakes waiting for it stay within the bound too. An
                        // error means the server stopped taking connections: drop this one.
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, remote)).await;
                        }
                        // An untrusted client, a client that does not trust us, a port scan:
                        // the client sees its own error; this is for debugging only.
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "client TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "client TLS handshake timed out"),
                    }
                    drop(slot);
                });
            }
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            () = ready.closed() => return,
        }
    }
}

/// `router` with every redirect's `Location` on https: the API builds its redirects to the
/// leader as `http://` URLs, and a cluster serves its client API one way on every node (all
/// TLS or none), so a node serving TLS sends its clients to the leader's https port.
pub fn https_redirects(router: Router) -> Router {
    router.layer(axum::middleware::map_response(to_https))
}

async fn to_https(mut resp: Response) -> Response {
    if resp.status() == StatusCode::TEMPORARY_REDIRECT
        && let Some(loc) = resp.headers().get(header::LOCATION)
        && let Some(rest) = loc.to_str().ok().and_then(|l| l.strip_prefix("http://"))
        && let Ok(v) = HeaderValue::from_str(&format!("https://{rest}"))
    {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redirects_move_to_https_and_nothing_else_changes() {
        let redirect = |loc: &'static str| {
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(loc));
            r
        };
        let loc = |r: Response| r.headers()[header::LOCATION].to_str().unwrap().to_string();
        assert_eq!(
            loc(to_https(redirect("http://127.0.0.1:7002/kv/a?x=1")).await),
            "https://127.0.0.1:7002/kv/a?x=1"
        );
        assert_eq!(loc(to_https(redirect("/kv/a")).await), "/kv/a");
        let ok = to_https(Response::new(axum::body::Body::empty())).await;
        assert!(ok.headers().get(header::LOCATION).is_none());
    }

    #[test]
    fn bad_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let files = |cert: &Path, key: &Path, ca: Option<&Path>| ClientTlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_ca: ca.map(Path::to_path_buf),
        };
        let missing = dir.path().join("missing.pem");
        let err = server_config(&files(&missing, &garbage, None)).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = server_config(&files(&garbage, &garbage, None)).unwrap_err();
        assert!(err.to_string().contains("garbage.pem"), "{err}");

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        assert!(server_config(&files(&cert_file, &key_file, None)).is_ok());
        assert!(server_config(&files(&cert_file, &key_file, Some(&cert_file))).is_ok());
        let err = server_config(&files(&cert_file, &key_file, Some(&garbage))).unwrap_err();
        assert!(err.to_string().contains("garbage.pem"), "{err}");
        // A key that is not the certificate's.
        let other = dir.path().join("other.pem");
        std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let err = server_config(&files(&cert_file, &other, None)).unwrap_err();
        assert!(err.to_string().contains("other.pem"), "{err}");
    }
}
