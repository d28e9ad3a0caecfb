//! Backup and restore: `GET /snapshot` streams the leader's state in the snapshot format
//! ([`raftkv_core::kvsnap`]), `kvctl snapshot save FILE` stores it, and `kvserver --restore
//! FILE` seeds an empty data dir with it for a new single-node cluster (like `etcdctl snapshot
//! restore`), which can then grow with `kvctl member add-learner`.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::{Body, Bytes};
use raftkv_core::kvsnap::Decoder;
use raftkv_core::raft::{HardState, Membership, SnapshotMeta, StorageError};
use raftkv_core::{SnapshotView, kvsnap};
use tokio::sync::mpsc;

use crate::client::ClientError;
use crate::config::ServerConfig;
use crate::credentials::Credentials;
use crate::disk;

/// The response header that carries the applied index a streamed snapshot is at.
pub const INDEX_HEADER: &str = "x-raftkv-snapshot-index";
/// The bytes one chunk of a streamed snapshot carries.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight between the thread writing the snapshot and the connection: with
/// [`CHUNK`], what bounds the memory a download takes on the server.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A [`Write`] that hands what it gets to a channel in chunks (blocking when the channel is
/// full: the client reads slower than the engine writes).
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A response body that streams `view`, written on a blocking thread through a bounded
/// channel. A failure midway ends the body with an error, so the client sees a cut download
/// (which the snapshot format's end record makes detectable), never a short "complete" one.
pub fn stream(view: Box<dyn SnapshotView>) -> Body {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let res = view.write_to(&mut w).and_then(|()| {
            w.send()
                .map_err(|e| raftkv_core::SmError(format!("sending the snapshot: {e}")))
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "streaming a snapshot failed");
            let _ = tx.blocking_send(Err(io::Error::other(e.0)));
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(chunks)
}

/// What `kvctl snapshot save` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The applied index the snapshot is at.
    pub index: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Downloads the leader's snapshot from the first of `endpoints` that serves it (redirects
/// to the leader followed, up to [`crate::client::MAX_REDIRECTS`] hops, with the token on each)
/// into `file`: written to `FILE.part`, checked to be a whole snapshot, fsynced, then renamed
/// over `file`, so `file` is never a partial snapshot.
pub async fn save(
    endpoints: &[String],
    connect_timeout: Duration,
    creds: &Credentials,
    file: &Path,
) -> Result<Saved, ClientError> {
    // Redirects are followed here rather than by reqwest, which drops the Authorization header
    // when a redirect changes host or port (as one to the leader does).
    let http = creds
        .http_builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ClientError::Usage(format!("http client: {e}")))?;
    let mut last = ClientError::Unreachable("no endpoint given".into());
    'endpoints: for ep in endpoints {
        let base = if ep.contains("://") {
            ep.clone()
        } else {
            format!("http://{ep}")
        };
        let mut url = match reqwest::Url::parse(&format!("{base}/snapshot")) {
            Ok(u) => u,
            Err(e) => return Err(ClientError::Usage(format!("bad endpoint {ep:?}: {e}"))),
        };
        for _hop in 0..=crate::client::MAX_REDIRECTS {
            let resp = match creds.authorize(http.get(url.clone())).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = ClientError::Unreachable(format!("{ep}: {}", creds.describe(&e)));
                    continue 'endpoints;
                }
            };
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| url.join(loc).ok());
                match next {
                    Some(next) => {
                        url = next;
                        continue;
                    }
                    None => {
                        last = ClientError::Unreachable(format!("{url}: no leader known"));
                        continue 'endpoints;
                    }
                }
            }
            if !resp.status().is_success() {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                last = ClientError::Server {
                    status,
                    code: field("err_code"),
                    msg: field("err_msg"),
                    body,
                    retry_after: None,
                };
                // Another node would refuse the same token the same way.
                if status == 401 || status == 403 {
                    return Err(last);
                }
                continue 'endpoints;
            }
            return download(resp, file).await;
        }
        last = ClientError::TooManyRedirects(url.to_string());
    }
    Err(last)
}

fn local(file: &Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::Usage(format!("{}: {e}", file.display()))
}

async fn download(mut resp: reqwest::Response, file: &Path) -> Result<Saved, ClientError> {
    let mut part = file.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut out = File::create(&part).map_err(|e| local(&part, e))?;
    let mut bytes = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                out.write_all(&c).map_err(|e| local(&part, e))?;
                bytes += c.len() as u64;
            }
            Ok(None) => break,
            Err(e) => {
                let _ = fs::remove_file(&part);
                return Err(ClientError::Unreachable(format!(
                    "the snapshot download broke off after {bytes} bytes: {e}"
                )));
            }
        }
    }
    out.sync_all().map_err(|e| local(&part, e))?;
    drop(out);
    let index = match check_file(&part) {
        Ok(h) => h.index,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(local(file, e));
        }
    };
    fs::rename(&part, file).map_err(|e| local(file, e))?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| local(dir, e))?;
    }
    Ok(Saved { index, bytes })
}

/// Reads the whole snapshot file `path`, checking its shape; its header.
pub fn check_file(path: &Path) -> Result<kvsnap::Header, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut d = Decoder::new(BufReader::new(f)).map_err(|e| e.to_string())?;
    d.check_rest().map_err(|e| e.to_string())?;
    Ok(d.header())
}

/// Why `kvserver --restore` refused.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The file is not a whole raftkv snapshot.
    #[error("{0}")]
    BadFile(String),
    /// The data dir already holds a node's data.
    #[error("{0} is not empty: restore seeds a new node's data dir only")]
    NotEmpty(PathBuf),
    /// Writing the data dir failed.
    #[error("data dir: {0}")]
    Storage(#[from] StorageError),
}

/// Seeds `config.data_dir` (which must be missing or empty) from the snapshot file `file`:
/// the snapshot is stored as the node's at (its index, term 1) with this node as the sole
/// voter, the log starts after it, and the term is 1. The start that follows installs it into
/// the engine (the stored snapshot is newer than an empty engine) and stores the single-node
/// configuration ([`crate::cluster_file`]). Returns the snapshot's index.
pub fn restore(config: &ServerConfig, file: &Path) -> Result<u64, RestoreError> {
    let header = check_file(file).map_err(RestoreError::BadFile)?;
    let dir = &config.data_dir;
    if let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(RestoreError::NotEmpty(dir.clone()));
    }
    let mut data = Vec::new();
    File::open(file)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| RestoreError::BadFile(format!("{}: {e}", file.display())))?;
    let mut stores = disk::open_stores(dir)?;
    let mut membership = Membership::default();
    membership.voters.insert(config.id.clone());
    membership
        .addrs
        .insert(config.id.clone(), config.addr.clone());
    let meta = SnapshotMeta {
        last_included_index: header.index,
        last_included_term: 1,
    };
    stores.stable.set_hard_state(&HardState {
        term: 1,
        ..HardState::default()
    })?;
    stores.stable.sync()?;
    stores.snapshot.save(meta, &membership, &data)?;
    stores.log.truncate_prefix(header.index, 1)?;
    stores.log.sync()?;
    Ok(header.index)
}
