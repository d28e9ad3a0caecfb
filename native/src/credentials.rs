//! What a client of the client API shows and trusts: the CA it trusts for https endpoints
//! (`--cacert`), its own certificate for servers that ask for one (`--cert --key`), and its
//! bearer token (`--token`). kvctl's commands, its bench and backup, and a node's `--join`
//! calls all build their HTTP clients from one [`Credentials`].
//!
//! TLS is rustls on ring (reqwest's rustls with no built-in roots): an https endpoint is trusted
//! only through `--cacert`, so a private cluster CA is the expected set-up, and no OpenSSL is
//! linked.

use std::path::Path;
use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::transport::tls::{self, TlsError};

/// PEM bytes and the name their errors give them (a file name, or what they are).
pub type Pem<'a> = (&'a [u8], &'a str);

/// A client's TLS trust, certificate and token. The default trusts nobody over https and sends
/// no token: plain http to an open API.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The rustls set-up, when a CA or a client certificate was given (shared: it is large,
    /// and every bench worker holds one).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `Bearer <token>`, marked sensitive (kept out of reqwest's debug output).
    authorization: Option<HeaderValue>,
    /// Whether a CA was given, for the hint when an https endpoint is not trusted.
    has_ca: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tls", &self.tls.is_some())
            .field("token", &self.authorization.is_some())
            .finish()
    }
}

impl Credentials {
    /// From files: a CA to trust for https (PEM), a client certificate chain and its key (PEM,
    /// both or neither), and a token. Errors name the file or the flag.
    pub fn load(
        cacert: Option<&Path>,
        identity: Option<(&Path, &Path)>,
        token: Option<&str>,
    ) -> Result<Credentials, String> {
        let name = |p: &Path| p.display().to_string();
        let ca = match cacert {
            Some(p) => Some((tls::read(p).map_err(|e| e.to_string())?, name(p))),
            None => None,
        };
        let id = match identity {
            Some((c, k)) => {
                let read = |p: &Path| tls::read(p).map_err(|e| e.to_string());
                Some(((read(c)?, name(c)), (read(k)?, name(k))))
            }
            None => None,
        };
        let ca_ref = ca.as_ref().map(|(b, n)| (b.as_slice(), n.as_str()));
        let id_ref = id
            .as_ref()
            .map(|((c, cn), (k, kn))| ((c.as_slice(), cn.as_str()), (k.as_slice(), kn.as_str())));
        let mut creds = Credentials::from_pem(ca_ref, id_ref).map_err(|e| e.to_string())?;
        if let Some(t) = token {
            creds = creds.with_token(t)?;
        }
        Ok(creds)
    }

    /// From PEM bytes, each with the name its errors give it.
    pub fn from_pem(
        ca: Option<Pem<'_>>,
        identity: Option<(Pem<'_>, Pem<'_>)>,
    ) -> Result<Credentials, TlsError> {
        if ca.is_none() && identity.is_none() {
            return Ok(Credentials::default());
        }
        let roots = match ca {
            Some((pem, name)) => tls::parse_roots(pem, name)?,
            None => rustls::RootCertStore::empty(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            Some(((cert, cert_name), (key, key_name))) => {
                let chain = tls::parse_chain(cert, cert_name)?;
                let key = tls::parse_key(key, key_name)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::File {
                        path: format!("{cert_name} / {key_name}"),
                        why: e.to_string(),
                    })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Credentials {
            tls: Some(Arc::new(config)),
            authorization: None,
            has_ca: ca.is_some(),
        })
    }

    /// These credentials sending `token` as `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: &str) -> Result<Credentials, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token is not printable ASCII".to_string())?;
        v.set_sensitive(true);
        self.authorization = Some(v);
        Ok(self)
    }

    /// A reqwest client builder with this TLS set-up (the caller adds timeouts and the like).
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        match &self.tls {
            Some(config) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(config)),
            None => builder,
        }
    }

    /// `req` with the token, if there is one.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(v) => req.header(AUTHORIZATION, v.clone()),
            None => req,
        }
    }

    /// A transport error as a line for the user: reqwest's message with its causes (a TLS
    /// failure is in a cause), and a hint when an https endpoint is used without `--cacert`.
    pub fn describe(&self, e: &reqwest::Error) -> String {
        let mut out = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            let text = s.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            source = s.source();
        }
        if !self.has_ca && e.url().is_some_and(|u| u.scheme() == "https") {
            out.push_str(" (an https endpoint is trusted through --cacert)");
        }
        out
    }
}
