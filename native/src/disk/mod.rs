//! Durable Raft storage under a data dir: the disk implementations of core's
//! [`StableStore`](raftkv_core::raft::StableStore), [`LogStore`](raftkv_core::raft::LogStore)
//! and [`SnapshotStore`](raftkv_core::raft::SnapshotStore).
//!
//! Layout of a data dir (every file is a sequence of [`frame`]s: length, CRC-32, payload):
//!
//! | file        | content                                                        | written by |
//! |-------------|----------------------------------------------------------------|------------|
//! | `hardstate` | one frame: the [`HardState`](raftkv_core::raft::HardState) as JSON | temp + fsync + rename + fsync dir |
//! | `log/base`  | one frame: the log's compaction base (JSON: format, version, base index and term) | temp + fsync + rename + fsync dir |
//! | `log/<seq>.seg` | segments of the log, numbered in order: one frame per `LogEntry` as JSON, then zeros; each created at full size (64 MiB) and fsynced with its dir before use | writes in place (fdatasync in `sync`); a cut zeroes the removed records; compaction deletes whole segments |
//! | `raft.log`  | the single-file log of earlier versions: migrated into `log/` on open, then removed | never written |
//! | `raft.lock` | empty; flock-ed while a `DiskLogStore` is open (one writer per data dir) | created once |
//! | `snapshot`  | a frame with the `SnapshotMeta` as JSON, then a frame with the snapshot bytes | temp + fsync + rename + fsync dir |
//! | `cluster`   | one frame: the stored configuration as JSON (bootstrap voters, member addresses; see [`crate::cluster_file`]) | temp + fsync + rename + fsync dir |
//!
//! Files named `*.tmp` are unfinished replacements: a crash may leave one behind, and opening
//! the data dir deletes them. Only the log's segments are ever written in place, and only by
//! appending into preallocated space or by zeroing a removed suffix, so a crash can damage only
//! the log's tail; opening drops a torn or corrupt tail (see [`log`]).

pub mod frame;
pub mod hard_state;
pub mod log;
pub mod snapshot;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use raftkv_core::kvraft::Stores;
use raftkv_core::raft::StorageError;

pub use hard_state::DiskStableStore;
pub use log::DiskLogStore;
pub use snapshot::DiskSnapshotStore;

/// Opens (creating if missing) the data dir `dir` and returns its three stores, boxed for
/// [`raftkv_core::raft::Node`]. Fails with [`StorageError::Io`] naming the path when `dir` is
/// not a directory or cannot be read or written, and with [`StorageError::Corrupt`] when a file
/// that is only ever replaced atomically (hard state, snapshot, log base) is damaged.
pub fn open_stores(dir: impl AsRef<Path>) -> Result<Stores, StorageError> {
    open_stores_observed(dir, None)
}

/// Like [`open_stores`], the log recording each fsync's duration into `fsync_seconds`.
pub fn open_stores_observed(
    dir: impl AsRef<Path>,
    fsync_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
) -> Result<Stores, StorageError> {
    let dir = dir.as_ref();
    // In the order of before: the stable store first, then the log (which takes the lock).
    let stable = DiskStableStore::open(dir)?;
    let mut log = DiskLogStore::open(dir)?;
    if let Some(h) = fsync_seconds {
        log.observe_fsync(h);
    }
    Ok(Stores {
        stable: Box::new(stable),
        log: Box::new(log),
        snapshot: Box::new(DiskSnapshotStore::open(dir)?),
    })
}

/// An I/O error on `path`, keeping the path in the message so an operator can find it.
pub(crate) fn io_err(path: &Path, err: impl std::fmt::Display) -> StorageError {
    StorageError::Io(format!("{}: {err}", path.display()))
}

/// Damaged bytes in `path`.
pub(crate) fn corrupt(path: &Path, what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{}: {what}", path.display()))
}

/// Creates `dir` if missing, checks that it is a directory, and removes leftover `*.tmp` files
/// of a replacement that a crash interrupted (the file they were to replace is still intact).
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), StorageError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(io_err(dir, "data dir exists but is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            // The new directory's own entry must survive a crash too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
        Err(e) => return Err(io_err(dir, e)),
    }
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "tmp") {
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
        }
    }
    Ok(())
}

/// Fsyncs a directory so that renames and creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Replaces `dir/name` with `bytes` atomically: after a crash the file holds either the old or
/// the new content, never a mix. Write a temp file, fsync it, rename it over, fsync the dir.
pub(crate) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = tmp_path(dir, name);
    let target = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
    fsync_dir(dir)
}

/// The temp file a replacement of `dir/name` is written to.
pub(crate) fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.tmp"))
}

/// Decodes a file that is exactly one frame of JSON. Such files are only ever replaced
/// atomically, so any damage is corruption of the medium, never a torn write, and is reported
/// rather than papered over.
pub(crate) fn read_json_frame<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
    max_len: usize,
) -> Result<T, StorageError> {
    let (payload, used) = frame::decode(bytes, max_len).map_err(|e| corrupt(path, e))?;
    if used != bytes.len() {
        return Err(corrupt(path, "trailing bytes after the record"));
    }
    serde_json::from_slice(payload).map_err(|e| corrupt(path, e))
}

/// The content of `path`, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}
