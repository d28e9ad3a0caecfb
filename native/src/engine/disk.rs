//! The on-disk engine: the KV state in a [redb](https://www.redb.org) database (`state.redb`
//! in the data dir).
//!
//! Tables:
//!
//! | table              | key                    | value                            |
//! |--------------------|------------------------|----------------------------------|
//! | `kv`               | key                    | value                            |
//! | `sessions`         | client id              | the [`Session`] as JSON          |
//! | `sessions_by_time` | (last_time, client id) | () — the expiry order            |
//! | `meta`             | `applied`, `log_time`, `installing` | u64                 |
//!
//! Every [`apply_batch`](Engine::apply_batch) is one write transaction holding the batch's
//! keys, sessions and the new applied index and log time: after a crash the database holds
//! some batch boundary, never half a batch, and [`applied_index`](Engine::applied_index) says
//! which. Readers (HTTP, snapshot views) use read transactions: MVCC, so they see one commit
//! and never wait for the applier, and a snapshot view is a point-in-time copy for free.
//!
//! Durability: by default commits are not fsynced ([`Durability::None`]) except one every
//! [`DiskOptions::durable_every`] (and at close). Raft's log was fsynced before the entries
//! were applied, so a crash only takes the engine back to an older, consistent commit (redb
//! guarantees that for non-durable commits), and the host replays the log after it. A
//! [`snapshot_view`](Engine::snapshot_view) fsyncs first, so the engine never falls behind a
//! snapshot the host stored (whose log the host then cuts): a restart replays at most the log
//! since the last snapshot or fsync, never the whole snapshot.
//!
//! Installs: a snapshot is written into a new database (`state.redb.install.tmp`, with a
//! page cache of [`INSTALL_CACHE_BYTES`]), fsynced, and renamed over `state.redb`; the engine
//! then reopens the file. So an install's memory does not depend on the serving cache, a bad
//! or cut-off snapshot changes nothing, and a crash midway leaves a temp file that the next
//! open deletes.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use raftkv_core::kvsm::{Session, SessionLimits, apply_command, check_index, expire_sessions};
use raftkv_core::kvsnap::{Decoder, Encoder, Header, Record};
use raftkv_core::raft::{Index, Millis, StorageError};
use raftkv_core::{
    ApplyEntry, ApplyResult, Command, SmError, SnapshotError, SnapshotView, kvsm::KvBackend,
};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    Table, TableDefinition, WriteTransaction,
};

use super::{Engine, EngineKind};

/// The database file's name in the data dir.
pub const FILE: &str = "state.redb";
/// redb's page cache by default: bounds the engine's memory whatever the state's size (redb's
/// own default is 1 GiB); `kvserver --engine-cache-mib` changes it. Writes fill it as well as
/// reads, which is why an install builds its database with a cache of its own.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The page cache of the database an install builds (at most the engine's own): an install
/// writes every page of the state once, so its memory is this whatever the snapshot's size
/// (a 1,000,000-key install peaked at the cache size above its start: +18 MiB at 16 MiB,
/// +67 MiB at 64 MiB, in the same 6 s), and the serving cache is not flushed by it.
pub const INSTALL_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// At most this long between two fsynced commits by default: bounds how much a crash takes
/// back (the log replays it) and how long freed pages wait to be reused (redb frees pages only
/// in durable commits).
pub const DEFAULT_DURABLE_EVERY: Duration = Duration::from_secs(1);
/// `apply_batch` commits a transaction at least every this many bytes of commands: redb keeps
/// a transaction's dirty pages in memory until it commits, and a follower catching up applies
/// everything committed at once (100 entries of 1,000 keys were 57 MiB of dirty pages in one
/// transaction). Each transaction holds its entries' applied index, so a crash still leaves a
/// batch boundary.
const APPLY_TXN_BYTES: u64 = 4 * 1024 * 1024;
/// A snapshot install commits every this many records, so its write transaction (whose dirty
/// pages redb keeps in memory until commit) stays bounded whatever the snapshot's size.
const INSTALL_BATCH_RECORDS: usize = 20_000;

const KV: TableDefinition<&str, &str> = TableDefinition::new("kv");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("sessions_by_time");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The index of the last entry applied.
const APPLIED: &str = "applied";
/// The log time at that index.
const LOG_TIME: &str = "log_time";
/// Present (1) while a snapshot install is unfinished: the state is partial, and the engine
/// reports applied index 0 so the host installs the stored snapshot again at the next start.
/// Only databases written before installs went to a file of their own can hold it (they
/// installed in place); it is still honoured, and removed by the next commit of a meta.
const INSTALLING: &str = "installing";

/// How a [`DiskEngine`] is opened.
#[derive(Clone, Copy, Debug)]
pub struct DiskOptions {
    /// The session limits (every replica uses the same).
    pub limits: SessionLimits,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
    /// The longest time between fsynced commits; `Duration::ZERO`: fsync every commit.
    pub durable_every: Duration,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            limits: SessionLimits::default(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            durable_every: DEFAULT_DURABLE_EVERY,
        }
    }
}

/// The KV state in a redb database. See the [module docs](self).
pub struct DiskEngine {
    /// Replaced whole by an install (the new file renamed over the old one). A write
    /// transaction holds the read lock until it commits, so none can commit into a replaced
    /// file; a read transaction holds the database it reads instead (see [`Reading`]).
    db: RwLock<Arc<Database>>,
    path: PathBuf,
    opts: DiskOptions,
    /// What `meta` says as of the last commit (only the applier commits): the applied index
    /// (0 while a database of an older version holds an unfinished install) and the log time.
    applied: AtomicU64,
    log_time: AtomicU64,
    /// When the last fsynced commit was made.
    last_durable: Mutex<Instant>,
    applied_since_open: AtomicU64,
    /// Transactions `apply_batch` committed since the engine was opened.
    apply_txns: AtomicU64,
}

impl std::fmt::Debug for DiskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskEngine")
            .field("path", &self.path)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// A redb failure, as the state machine reports it.
fn db_err(e: impl Into<redb::Error>) -> SmError {
    SmError(format!("redb: {}", e.into()))
}

fn snap_err(e: SmError) -> SnapshotError {
    SnapshotError(format!("disk engine: {}", e.0))
}

fn decode_session(id: &str, json: &[u8]) -> Result<Session, SmError> {
    serde_json::from_slice(json)
        .map_err(|e| SmError(format!("the stored session of {id:?} is damaged: {e}")))
}

/// The last time of a stored session, without decoding its reply.
fn decode_session_time(id: &str, json: &[u8]) -> Result<Millis, SmError> {
    #[derive(serde::Deserialize)]
    struct Time {
        #[serde(default)]
        last_time: Millis,
    }
    serde_json::from_slice::<Time>(json)
        .map(|t| t.last_time)
        .map_err(|e| SmError(format!("the stored session of {id:?} is damaged: {e}")))
}

impl DiskEngine {
    /// Opens (creating if missing) the database at `path`. A database left by a crash is
    /// repaired by redb to its last durable commit (a full check of the file: slow for a big
    /// one). Another process holding it open is an error.
    pub fn open(path: &Path, opts: DiskOptions) -> Result<Self, StorageError> {
        let io = |e: &dyn std::fmt::Display| StorageError::Io(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        }
        // An install a crash interrupted: the state it was to replace is intact.
        let leftover = install_path(path);
        match std::fs::remove_file(&leftover) {
            Ok(()) => {
                tracing::warn!(path = %leftover.display(), "removed an unfinished snapshot install")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&e)),
        }
        let db = create_db(path, opts.cache_bytes).map_err(|e| io(&e))?;
        let engine = DiskEngine {
            db: RwLock::new(Arc::new(db)),
            path: path.to_path_buf(),
            opts,
            applied: AtomicU64::new(0),
            log_time: AtomicU64::new(0),
            last_durable: Mutex::new(Instant::now()),
            applied_since_open: AtomicU64::new(0),
            apply_txns: AtomicU64::new(0),
        };
        let (applied, log_time, installing) =
            engine.read_meta().map_err(|e| StorageError::Io(e.0))?;
        if installing {
            tracing::warn!(
                path = %path.display(),
                "the state database holds an unfinished snapshot install: it will be installed again"
            );
        }
        engine
            .applied
            .store(if installing { 0 } else { applied }, Ordering::Release);
        engine.log_time.store(log_time, Ordering::Release);
        Ok(engine)
    }

    fn read_meta(&self) -> Result<(Index, Millis, bool), SmError> {
        meta_of(&self.read()?.txn)
    }

    fn db(&self) -> RwLockReadGuard<'_, Arc<Database>> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> Result<Reading, SmError> {
        let db = Arc::clone(&self.db());
        let txn = db.begin_read().map_err(db_err)?;
        Ok(Reading { txn, _db: db })
    }

    /// A write transaction, fsynced at commit if the last fsynced one is older than
    /// `durable_every` (or `force`).
    fn begin(&self, force: bool) -> Result<Write<'_>, SmError> {
        let db = self.db();
        let mut txn = db.begin_write().map_err(db_err)?;
        let durable = force || {
            let last = self
                .last_durable
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            last.elapsed() >= self.opts.durable_every
        };
        let level = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(level)
            .map_err(|e| SmError(format!("redb: {e}")))?;
        Ok(Write {
            txn,
            durable,
            _db: db,
        })
    }

    fn commit(&self, w: Write<'_>) -> Result<(), SmError> {
        w.txn.commit().map_err(db_err)?;
        if w.durable {
            *self
                .last_durable
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        }
        Ok(())
    }

    /// Commits an empty transaction with fsync: every earlier non-durable commit becomes
    /// durable.
    pub fn flush(&self) -> Result<(), SmError> {
        let w = self.begin(true)?;
        self.commit(w)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Transactions [`apply_batch`](Engine::apply_batch) committed since the engine was opened.
    pub fn apply_transactions(&self) -> u64 {
        self.apply_txns.load(Ordering::Relaxed)
    }

    /// Applies `entries` (right after the applied index) in one transaction.
    fn apply_run(&self, entries: &[ApplyEntry<'_, Command>]) -> Result<Vec<ApplyResult>, SmError> {
        let Some(last) = entries.last() else {
            return Ok(Vec::new());
        };
        let w = self.begin(false)?;
        let mut log_time = self.log_time();
        let mut replies = Vec::with_capacity(entries.len());
        {
            let mut b = TxnBackend::open(&w.txn)?;
            for e in entries {
                // The same steps as KvStateMachine::apply_entry: the log time never goes
                // back, expired sessions go, then the command applies.
                log_time = log_time.max(e.time);
                expire_sessions(&mut b, &self.opts.limits, log_time)?;
                if let Some(cmd) = e.cmd {
                    replies.push(apply_command(&mut b, log_time, cmd)?);
                }
            }
        }
        set_meta(&w.txn, last.index, log_time)?;
        self.commit(w)?;
        self.apply_txns.fetch_add(1, Ordering::Relaxed);
        self.applied.store(last.index, Ordering::Release);
        self.log_time.store(log_time, Ordering::Release);
        self.applied_since_open
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(replies)
    }
}

impl Drop for DiskEngine {
    fn drop(&mut self) {
        // A clean stop leaves everything durable, so the next start replays nothing.
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "could not fsync the state database at close");
        }
    }
}

fn meta_of(txn: &ReadTransaction) -> Result<(Index, Millis, bool), SmError> {
    let meta = txn.open_table(META).map_err(db_err)?;
    let get = |k: &str| -> Result<Option<u64>, SmError> {
        Ok(meta.get(k).map_err(db_err)?.map(|g| g.value()))
    };
    Ok((
        get(APPLIED)?.unwrap_or(0),
        get(LOG_TIME)?.unwrap_or(0),
        get(INSTALLING)?.is_some(),
    ))
}

/// Opens (creating if missing) the database at `path` and creates every table once, so read
/// transactions find them.
fn create_db(path: &Path, cache_bytes: usize) -> Result<Database, redb::Error> {
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(KV)?;
        txn.open_table(SESSIONS)?;
        txn.open_table(BY_TIME)?;
        txn.open_table(META)?;
    }
    txn.commit()?;
    Ok(db)
}

/// Where an install builds the database that replaces the one at `path`.
fn install_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".install.tmp");
    PathBuf::from(p)
}

/// Builds at `path` a database holding exactly what `d` decodes, applied at `index`, and makes
/// it durable. Commits every [`INSTALL_BATCH_RECORDS`] records, since redb keeps a write
/// transaction's dirty pages in memory until it commits; only the last commit is fsynced (a
/// crash before it leaves a file that the next open deletes).
fn build_installed(
    path: &Path,
    cache_bytes: usize,
    d: &mut Decoder<&mut dyn Read>,
    index: Index,
    log_time: Millis,
) -> Result<(), SnapshotError> {
    let err = |e: redb::Error| snap_err(db_err(e));
    let db = create_db(path, cache_bytes).map_err(err)?;
    loop {
        let mut txn = db.begin_write().map_err(|e| err(e.into()))?;
        let fill = fill(&txn, d)?;
        let durability = match fill {
            Fill::More => Durability::None,
            Fill::Done => {
                set_meta(&txn, index, log_time).map_err(snap_err)?;
                Durability::Immediate
            }
        };
        txn.set_durability(durability)
            .map_err(|e| SnapshotError(format!("redb: {e}")))?;
        txn.commit().map_err(|e| err(e.into()))?;
        if let Fill::Done = fill {
            return Ok(());
        }
    }
}

/// Keys and sessions inside one write transaction: what core's rules run over.
struct TxnBackend<'t> {
    kv: Table<'t, &'static str, &'static str>,
    sessions: Table<'t, &'static str, &'static [u8]>,
    by_time: Table<'t, (u64, &'static str), ()>,
}

impl<'t> TxnBackend<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, SmError> {
        Ok(TxnBackend {
            kv: txn.open_table(KV).map_err(db_err)?,
            sessions: txn.open_table(SESSIONS).map_err(db_err)?,
            by_time: txn.open_table(BY_TIME).map_err(db_err)?,
        })
    }

    /// Stores a session and its expiry-order entry (no old one to replace: installs).
    fn insert_session(&mut self, id: &str, s: &Session) -> Result<(), SmError> {
        let json = serde_json::to_vec(s).map_err(|e| SmError(e.to_string()))?;
        self.sessions.insert(id, json.as_slice()).map_err(db_err)?;
        self.by_time.insert((s.last_time, id), ()).map_err(db_err)?;
        Ok(())
    }
}

impl KvBackend for TxnBackend<'_> {
    fn get(&self, key: &str) -> Result<Option<String>, SmError> {
        Ok(self
            .kv
            .get(key)
            .map_err(db_err)?
            .map(|g| g.value().to_string()))
    }
    fn put(&mut self, key: &str, value: &str) -> Result<(), SmError> {
        self.kv.insert(key, value).map_err(db_err)?;
        Ok(())
    }
    fn remove(&mut self, key: &str) -> Result<bool, SmError> {
        Ok(self.kv.remove(key).map_err(db_err)?.is_some())
    }
    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError> {
        match self.sessions.get(client_id).map_err(db_err)? {
            Some(g) => decode_session(client_id, g.value()).map(Some),
            None => Ok(None),
        }
    }
    fn put_session(&mut self, client_id: &str, s: &Session) -> Result<(), SmError> {
        // Every deduplicated command updates its session: one insert that hands back the old
        // value, whose time alone is decoded, and the expiry order touched only when the time
        // moved (a batch of commands shares one log time). Removing and re-inserting both, with
        // a second lookup and full decode, was a sixth of a leader's instructions under a PUT
        // load (docs/performance.md).
        let json = serde_json::to_vec(s).map_err(|e| SmError(e.to_string()))?;
        let old_time = match self
            .sessions
            .insert(client_id, json.as_slice())
            .map_err(db_err)?
        {
            Some(old) => Some(decode_session_time(client_id, old.value())?),
            None => None,
        };
        if old_time != Some(s.last_time) {
            if let Some(t) = old_time {
                let was = self.by_time.remove((t, client_id)).map_err(db_err)?;
                debug_assert!(was.is_some(), "every session is in the expiry order");
            }
            self.by_time
                .insert((s.last_time, client_id), ())
                .map_err(db_err)?;
        }
        Ok(())
    }
    fn remove_session(&mut self, client_id: &str) -> Result<(), SmError> {
        if let Some(old) = self.session(client_id)? {
            self.sessions.remove(client_id).map_err(db_err)?;
            let was = self
                .by_time
                .remove((old.last_time, client_id))
                .map_err(db_err)?;
            debug_assert!(was.is_some(), "every session is in the expiry order");
        }
        Ok(())
    }
    fn oldest_session(&self) -> Result<Option<(String, Session)>, SmError> {
        let Some((k, _)) = self.by_time.first().map_err(db_err)? else {
            return Ok(None);
        };
        let id = k.value().1.to_string();
        match self.session(&id)? {
            Some(s) => Ok(Some((id, s))),
            None => Err(SmError(format!(
                "the session expiry order names {id:?}, which has no session"
            ))),
        }
    }
    fn session_count(&self) -> Result<u64, SmError> {
        self.sessions.len().map_err(db_err)
    }
}

/// Writes the applied index and log time (and clears an install marker) in `txn`.
fn set_meta(txn: &WriteTransaction, applied: Index, log_time: Millis) -> Result<(), SmError> {
    let mut meta = txn.open_table(META).map_err(db_err)?;
    meta.insert(APPLIED, applied).map_err(db_err)?;
    meta.insert(LOG_TIME, log_time).map_err(db_err)?;
    meta.remove(INSTALLING).map_err(db_err)?;
    Ok(())
}

/// What filling one install transaction ended with.
enum Fill {
    /// The snapshot's end record was read.
    Done,
    /// The batch is full; more records follow.
    More,
}

/// Inserts up to [`INSTALL_BATCH_RECORDS`] records of `d` in `txn`.
fn fill(txn: &WriteTransaction, d: &mut Decoder<&mut dyn Read>) -> Result<Fill, SnapshotError> {
    let mut b = TxnBackend::open(txn).map_err(snap_err)?;
    for _ in 0..INSTALL_BATCH_RECORDS {
        match d.next()? {
            None => return Ok(Fill::Done),
            Some(Record::Session(id, s)) => b.insert_session(&id, &s).map_err(snap_err)?,
            Some(Record::Kv(k, v)) => b.put(&k, &v).map_err(snap_err)?,
        }
    }
    Ok(Fill::More)
}

impl Engine for DiskEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Disk
    }

    fn get(&self, key: &str) -> Result<Option<String>, SmError> {
        let txn = self.read()?;
        let kv = txn.open_table(KV).map_err(db_err)?;
        Ok(kv.get(key).map_err(db_err)?.map(|g| g.value().to_string()))
    }

    fn mget(&self, keys: &[String]) -> Result<BTreeMap<String, String>, SmError> {
        let txn = self.read()?;
        let kv = txn.open_table(KV).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for k in keys {
            if let Some(v) = kv.get(k.as_str()).map_err(db_err)? {
                out.insert(k.clone(), v.value().to_string());
            }
        }
        Ok(out)
    }

    fn range(
        &self,
        start: &str,
        end: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SmError> {
        if end.is_some_and(|e| e <= start) || limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.read()?;
        let kv = txn.open_table(KV).map_err(db_err)?;
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in kv
            .range::<&str>((Bound::Included(start), upper))
            .map_err(db_err)?
        {
            let (k, v) = item.map_err(db_err)?;
            out.push((k.value().to_string(), v.value().to_string()));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn session(&self, client_id: &str) -> Result<Option<Session>, SmError> {
        let txn = self.read()?;
        let t = txn.open_table(SESSIONS).map_err(db_err)?;
        match t.get(client_id).map_err(db_err)? {
            Some(g) => decode_session(client_id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    fn sessions(&self) -> Result<BTreeMap<String, Session>, SmError> {
        let txn = self.read()?;
        let t = txn.open_table(SESSIONS).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            out.insert(k.value().to_string(), decode_session(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn len(&self) -> Result<u64, SmError> {
        let txn = self.read()?;
        txn.open_table(KV).map_err(db_err)?.len().map_err(db_err)
    }

    fn entries(&self) -> Result<BTreeMap<String, String>, SmError> {
        Ok(self.range("", None, usize::MAX)?.into_iter().collect())
    }

    fn log_time(&self) -> Millis {
        self.log_time.load(Ordering::Acquire)
    }

    fn applied_index(&self) -> Index {
        self.applied.load(Ordering::Acquire)
    }

    fn apply_batch(
        &self,
        entries: &[ApplyEntry<'_, Command>],
    ) -> Result<Vec<ApplyResult>, SmError> {
        let applied = self.applied_index();
        debug_assert!(
            entries.iter().zip(applied + 1..).all(|(e, i)| e.index == i),
            "entries apply once, in order, right after the applied index"
        );
        // Runs of at most APPLY_TXN_BYTES of commands (at least one entry each), one
        // transaction per run.
        let mut replies = Vec::with_capacity(entries.len());
        let mut rest = entries;
        while !rest.is_empty() {
            let mut bytes = 0u64;
            let run = rest
                .iter()
                .take_while(|e| {
                    let first = bytes == 0;
                    bytes = bytes.saturating_add(e.cmd.map_or(1, Command::size_bytes).max(1));
                    first || bytes <= APPLY_TXN_BYTES
                })
                .count();
            let (now, later) = rest.split_at(run);
            replies.extend(self.apply_run(now)?);
            rest = later;
        }
        Ok(replies)
    }

    fn snapshot_view(&self) -> Result<Box<dyn SnapshotView>, SmError> {
        // The host stores the snapshot at this view's index and cuts the log behind it; if a
        // crash could take the engine back before that index (its commits since the last
        // fsync), only installing the whole snapshot again would rebuild it, and a restart's
        // time would grow with the state. One fsync per snapshot keeps the engine at or past
        // every snapshot stored.
        self.flush()?;
        let txn = self.read()?;
        let (index, log_time, installing) = meta_of(&txn)?;
        if installing {
            return Err(SmError(
                "a snapshot install is unfinished: no consistent state to snapshot".into(),
            ));
        }
        Ok(Box::new(DiskView {
            txn,
            header: Header { index, log_time },
        }))
    }

    fn install(&self, index: Index, data: &mut dyn Read) -> Result<(), SnapshotError> {
        let mut d = Decoder::new(data)?;
        check_index(d.header(), index)?;
        let log_time = d.header().log_time;
        // The new state goes to a database of its own, with a small cache, and replaces the
        // old file by a rename: memory stays bounded by that cache, the old state serves reads
        // until the swap, and a bad snapshot or a crash midway leaves it as it was.
        let tmp = install_path(&self.path);
        let cache = INSTALL_CACHE_BYTES.min(self.opts.cache_bytes);
        if let Err(e) = build_installed(&tmp, cache, &mut d, index, log_time) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let io = |e: &dyn std::fmt::Display| SnapshotError(format!("{}: {e}", self.path.display()));
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        std::fs::rename(&tmp, &self.path).map_err(|e| io(&e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::disk::fsync_dir(dir).map_err(|e| SnapshotError(e.to_string()))?;
        }
        // The old database closes when the last view reading it is done (its file is already
        // unlinked, so its space comes back then).
        *db = Arc::new(create_db(&self.path, self.opts.cache_bytes).map_err(|e| io(&e))?);
        *self
            .last_durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.applied.store(index, Ordering::Release);
        self.log_time.store(log_time, Ordering::Release);
        Ok(())
    }

    fn apply_unlogged(&self, cmd: &Command) -> Result<ApplyResult, SmError> {
        let w = self.begin(false)?;
        let reply = {
            let mut b = TxnBackend::open(&w.txn)?;
            apply_command(&mut b, self.log_time(), cmd)?
        };
        self.commit(w)?;
        Ok(reply)
    }

    fn entries_applied_since_open(&self) -> u64 {
        self.applied_since_open.load(Ordering::Relaxed)
    }
}

/// A read transaction and the database it reads: redb fails the reads of a transaction whose
/// database was closed, and an install replaces the engine's database under open views.
struct Reading {
    txn: ReadTransaction,
    _db: Arc<Database>,
}

impl std::ops::Deref for Reading {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

/// A write transaction, holding the engine's database in place until it commits.
struct Write<'e> {
    txn: WriteTransaction,
    /// Whether it commits with an fsync.
    durable: bool,
    _db: RwLockReadGuard<'e, Arc<Database>>,
}

/// A read transaction: the state as of one commit, however many commit after it.
struct DiskView {
    txn: Reading,
    header: Header,
}

impl SnapshotView for DiskView {
    fn index(&self) -> Index {
        self.header.index
    }

    fn write_to(self: Box<Self>, w: &mut dyn std::io::Write) -> Result<(), SmError> {
        let mut e = Encoder::new(w, self.header)?;
        // Sessions then keys, each in order: the same records as the memory engine's.
        let sessions = self.txn.open_table(SESSIONS).map_err(db_err)?;
        for item in sessions.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            e.session(k.value(), &decode_session(k.value(), v.value())?)?;
        }
        let kv = self.txn.open_table(KV).map_err(db_err)?;
        for item in kv.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            e.kv(k.value(), v.value())?;
        }
        e.finish().map(drop)
    }
}
