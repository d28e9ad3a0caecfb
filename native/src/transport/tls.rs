//! Mutual TLS between peers (rustls): every node presents a certificate signed by the
//! cluster's CA (`--peer-ca`) and checks the other side's against it, and a certificate must
//! name its node: the node id is one of its DNS subject alternative names. So the dialler
//! checks it reached the node it meant (its id is the TLS server name), and the acceptor checks
//! that the id a connection claims in its hello is the one its certificate names: with TLS the
//! authenticated peer is the certificate, and no certificate of the cluster's CA can speak for
//! another node. TLS 1.3 only; the ring provider.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use raftkv_core::types::NodeId;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// Why TLS could not be set up or a TLS connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or parsed.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
    /// The node id is not a name a certificate can carry.
    #[error("node id {0:?} is not a DNS name, so no certificate can name it")]
    BadId(String),
    /// The handshake failed (an untrusted certificate, a wrong name, a closed connection).
    #[error("{0}")]
    Handshake(std::io::Error),
}

/// A node's TLS set-up for peer connections, both ways.
pub struct PeerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// Refusals logged so far, by remote IP and reason (once each).
    logged: Mutex<BTreeSet<(std::net::IpAddr, String)>>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

/// The bytes of `path`; an error names the file. Shared with the client API's TLS
/// ([`crate::client_tls`]) and kvctl's ([`crate::credentials`]).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

fn bad_pem(what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: what.to_string(),
        why: e.to_string(),
    }
}

/// A certificate chain from PEM (at least one certificate); errors give it `name`.
pub(crate) fn parse_chain(
    pem: &[u8],
    name: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad_pem(name, e))?;
    if chain.is_empty() {
        return Err(bad_pem(name, "no certificate in it"));
    }
    Ok(chain)
}

/// A private key from PEM; errors give it `name`.
pub(crate) fn parse_key(pem: &[u8], name: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad_pem(name, e))
}

/// The CA certificates of PEM `pem` as trust anchors (at least one); errors give it `name`.
pub(crate) fn parse_roots(pem: &[u8], name: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        let c = c.map_err(|e| bad_pem(name, e))?;
        roots.add(c).map_err(|e| bad_pem(name, e))?;
    }
    if roots.is_empty() {
        return Err(bad_pem(name, "no certificate in it"));
    }
    Ok(roots)
}

impl PeerTls {
    /// From PEM files: this node's certificate chain and key, and the cluster's CA. Errors
    /// name the file.
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let (c, k, a) = (read(cert)?, read(key)?, read(ca)?);
        let name = |p: &Path| p.display().to_string();
        PeerTls::build((&c, &name(cert)), (&k, &name(key)), (&a, &name(ca)))
    }

    /// From PEM bytes: this node's certificate chain and key, and the cluster's CA.
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<Self, TlsError> {
        PeerTls::build((cert, "certificate"), (key, "key"), (ca, "CA"))
    }

    /// From PEM bytes, each with the name its errors give it.
    fn build(
        (cert, cert_name): (&[u8], &str),
        (key, key_name): (&[u8], &str),
        (ca, ca_name): (&[u8], &str),
    ) -> Result<Self, TlsError> {
        let chain = parse_chain(cert, cert_name)?;
        let key = parse_key(key, key_name)?;
        let roots = Arc::new(parse_roots(ca, ca_name)?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config)?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            logged: Mutex::new(BTreeSet::new()),
        })
    }

    /// TLS to node `to` over `tcp`: its certificate must be the CA's and name `to`.
    pub async fn connect(
        &self,
        to: &NodeId,
        tcp: TcpStream,
    ) -> Result<client::TlsStream<TcpStream>, TlsError> {
        let name = ServerName::try_from(to.0.clone()).map_err(|_| TlsError::BadId(to.0.clone()))?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(TlsError::Handshake)
    }

    /// TLS for a connection a peer dialled: its certificate must be the CA's.
    pub async fn accept(&self, tcp: TcpStream) -> Result<server::TlsStream<TcpStream>, TlsError> {
        self.acceptor.accept(tcp).await.map_err(TlsError::Handshake)
    }

    /// The certificate the peer of `stream` presented (the first of its chain).
    pub fn peer_cert(stream: &server::TlsStream<TcpStream>) -> Option<CertificateDer<'static>> {
        let (_, conn) = stream.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
    }

    /// Whether `cert` names node `id` (as a DNS subject alternative name).
    pub fn names(cert: &CertificateDer<'_>, id: &NodeId) -> bool {
        let (Ok(parsed), Ok(name)) = (
            ParsedCertificate::try_from(cert),
            ServerName::try_from(id.0.as_str()),
        ) else {
            return false;
        };
        rustls::client::verify_server_name(&parsed, &name).is_ok()
    }

    /// Logs a refused TLS connection from `remote`, once per address and reason.
    pub fn log_refusal(&self, remote: &SocketAddr, e: &TlsError) {
        let why = e.to_string();
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.len() < 1024 && logged.insert((remote.ip(), why.clone())) {
            tracing::warn!(%remote, error = %why, "refused a peer TLS connection (logged once per address and reason)");
        }
    }
}
