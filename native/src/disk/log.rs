//! The Raft log in `raft.log`: a header frame, then one frame per entry, appended in order.
//!
//! Encoding: the header's payload is JSON `{"format":"raftkv-log","version":1,"base_index":I,
//! "base_term":T}` (the compaction base); each following frame's payload is one
//! [`LogEntry`] as JSON (serde_json, the same shape as on the wire). JSON keeps the file
//! readable with a hex dump and costs little next to an fsync.
//!
//! Memory: the store keeps each entry's term and file offset, not the entry: the node keeps
//! the entries themselves (core's in-memory log), and only a restart reads them back
//! ([`read_range`](LogStore::read_range) decodes them from the file). A second copy of the whole
//! log in memory was, on a follower catching up on 100 entries of 1,000 keys, 23 MiB.
//!
//! Writes: `append` only encodes into an in-memory buffer; `sync` writes the buffer with one
//! write and one fdatasync (group commit: the host calls it once per batch, before sending the
//! messages that depend on the entries). `delete_from` truncates the file at the first removed
//! record and fsyncs. `truncate_prefix` rewrites the retained tail under a new header into a
//! temp file and renames it over the log, so a crash leaves either the old or the new log.
//!
//! Recovery on open: records are read from the header on; the first record that is cut short
//! (its length runs past the end of the file), fails its checksum, does not decode as an entry,
//! or does not continue the log (index != previous + 1, which also rules out entries at or
//! below the base) ends the log, and the file is truncated right before it. Only unsynced
//! writes can be damaged by a crash (the file is otherwise only truncated), and within an
//! unsynced batch the filesystem may have persisted later pages but not earlier ones, so
//! everything from the first bad record on is dropped, never read as data.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raftkv_core::kvraft::LogEntry;
use raftkv_core::raft::{Index, LogStore, SnapshotMeta, StorageError, Term};
use serde::{Deserialize, Serialize};

use super::{atomic_write, corrupt, frame, io_err, prepare_dir, read_optional};

/// The file name inside the data dir.
pub const FILE: &str = "raft.log";
/// The lock file: held (flock) while a [`DiskLogStore`] is open, so two processes (or two
/// stores in one process) never append to the same log.
pub const LOCK_FILE: &str = "raft.lock";
/// The value of the header's `format` field.
const FORMAT: &str = "raftkv-log";
/// The current (and only) header version.
const VERSION: u32 = 1;
/// The header is a few small fields: anything bigger is a garbage length.
const MAX_HEADER_LEN: usize = 4 * 1024;
/// No entry is this large (commands are bounded by the HTTP body limit); a longer length field
/// is garbage from a torn write.
const MAX_ENTRY_LEN: usize = 64 * 1024 * 1024;
/// Pending frames are written to the file (not synced) once they reach this many bytes.
const WRITE_BEHIND_BYTES: usize = 1024 * 1024;

/// The first record of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    base_index: Index,
    base_term: Term,
}

/// A [`LogStore`] in `<dir>/raft.log`. In memory it keeps each entry's term and where its frame
/// is (the file, or the pending buffer); reads decode from there. It changes memory after the
/// file (or the pending buffer) accepted the change.
#[derive(Debug)]
pub struct DiskLogStore {
    dir: PathBuf,
    path: PathBuf,
    /// The log file, open for reading and writing; writes go to explicit offsets.
    file: File,
    /// The compaction base, as recorded in the file's header.
    base: SnapshotMeta,
    /// The term of entry base + 1 + i. Invariant: terms.len() == offsets.len().
    terms: Vec<Term>,
    /// Invariant: offsets[i] is the byte offset of entry base + 1 + i's frame in the
    /// file-plus-pending byte stream, strictly increasing.
    offsets: Vec<u64>,
    /// Bytes of the file that hold records written (synced unless `unsynced` or `poisoned`).
    written: u64,
    /// Some of the file's `written` bytes were written since the last fdatasync.
    unsynced: bool,
    /// Encoded frames appended but not yet written; they belong at offset `written`. Written
    /// out once they reach [`WRITE_BEHIND_BYTES`], and at every sync.
    pending: Vec<u8>,
    /// Set when a write failed half-way: memory and file may disagree, so every later call
    /// fails until the store is reopened (and recovery repairs the file).
    poisoned: Option<String>,
    /// Holds the exclusive lock on `raft.lock` for as long as the store lives.
    _lock: File,
}

impl DiskLogStore {
    /// Opens the log in `dir` (creating the directory and an empty log if missing) and
    /// recovers it: a torn or corrupt tail is cut off the file before this returns.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let path = dir.join(FILE);
        let bytes = match read_optional(&path)? {
            Some(bytes) => bytes,
            None => {
                let bytes = encode_header(SnapshotMeta::default())?;
                atomic_write(&dir, FILE, &bytes)?;
                bytes
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;

        // The header is only ever written by an atomic replace: damage there is corruption.
        let (payload, header_len) = frame::decode(&bytes, MAX_HEADER_LEN)
            .map_err(|e| corrupt(&path, format!("header: {e}")))?;
        let header: Header =
            serde_json::from_slice(payload).map_err(|e| corrupt(&path, format!("header: {e}")))?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(corrupt(
                &path,
                format!(
                    "unknown log format {:?} version {}",
                    header.format, header.version
                ),
            ));
        }
        let base = SnapshotMeta {
            last_included_index: header.base_index,
            last_included_term: header.base_term,
        };

        let mut terms = Vec::new();
        let mut offsets = Vec::new();
        let mut pos = header_len;
        let mut torn = None;
        while pos < bytes.len() {
            let rest = bytes.get(pos..).unwrap_or_default();
            let (payload, used) = match frame::decode(rest, MAX_ENTRY_LEN) {
                Ok(ok) => ok,
                Err(e) => {
                    torn = Some(e.to_string());
                    break;
                }
            };
            let entry: LogEntry = match serde_json::from_slice(payload) {
                Ok(entry) => entry,
                Err(e) => {
                    torn = Some(format!("undecodable entry: {e}"));
                    break;
                }
            };
            // An entry that does not continue the log ends it, like a bad checksum.
            let next = base.last_included_index + 1 + terms.len() as Index;
            if entry.index != next {
                torn = Some(format!("expected index {next}, got {}", entry.index));
                break;
            }
            terms.push(entry.term);
            offsets.push(pos as u64);
            pos += used;
        }
        let written = pos as u64;
        if let Some(reason) = torn {
            tracing::warn!(
                path = %path.display(),
                offset = written,
                dropped_bytes = bytes.len() as u64 - written,
                %reason,
                "dropping a torn or corrupt log tail"
            );
            file.set_len(written)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err(&path, e))?;
        }
        Ok(DiskLogStore {
            dir,
            path,
            file,
            base,
            terms,
            offsets,
            written,
            unsynced: false,
            pending: Vec::new(),
            poisoned: None,
            _lock: lock,
        })
    }

    /// The data dir this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails if an earlier write failed half-way.
    fn check(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(why) => Err(StorageError::Io(format!(
                "{}: log unusable after an earlier write error ({why}); reopen it",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }

    /// Records a failed write, so no later call works on state that may not match the file.
    fn poison(&mut self, err: StorageError) -> StorageError {
        self.poisoned = Some(err.to_string());
        err
    }

    /// Writes the pending frames at the end of the file, without syncing them.
    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&self.pending, self.written) {
            let err = io_err(&self.path, e);
            return Err(self.poison(err));
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        // One burst of big entries must not pin its size in memory for the store's life.
        self.pending.shrink_to(WRITE_BEHIND_BYTES);
        self.unsynced = true;
        Ok(())
    }

    /// Writes the pending frames at the end of the file and fdatasyncs.
    fn flush(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        if !self.unsynced {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            let err = io_err(&self.path, e);
            return Err(self.poison(err));
        }
        self.unsynced = false;
        Ok(())
    }

    /// The position of `index` in `terms` and `offsets`.
    fn slot(&self, index: Index) -> Result<usize, StorageError> {
        if index <= self.base.last_included_index {
            Err(StorageError::Compacted(index))
        } else if index > self.last_index() {
            Err(StorageError::Missing(index))
        } else {
            Ok((index - self.base.last_included_index - 1) as usize)
        }
    }

    /// The bytes `from..to` of the file-plus-pending byte stream.
    fn read_stream(&self, from: u64, to: u64) -> Result<Vec<u8>, StorageError> {
        let len = usize::try_from(to - from).map_err(|e| io_err(&self.path, e))?;
        let mut out = vec![0; len];
        let on_file = to.min(self.written).saturating_sub(from) as usize;
        if on_file > 0 {
            self.file
                .read_exact_at(&mut out[..on_file], from)
                .map_err(|e| io_err(&self.path, e))?;
        }
        if on_file < len {
            let start = (from + on_file as u64 - self.written) as usize;
            let pending = self
                .pending
                .get(start..start + (len - on_file))
                .ok_or_else(|| corrupt(&self.path, "a frame past the pending buffer"))?;
            out[on_file..].copy_from_slice(pending);
        }
        Ok(out)
    }
}

/// Takes the data dir's exclusive lock, failing at once if another store holds it.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io_err(
            &path,
            "data dir is in use: another process (or store) has this log open",
        )),
        Err(TryLockError::Error(e)) => Err(io_err(&path, e)),
    }
}

/// The header frame for a log with base `base`.
fn encode_header(base: SnapshotMeta) -> Result<Vec<u8>, StorageError> {
    let header = Header {
        format: FORMAT.to_string(),
        version: VERSION,
        base_index: base.last_included_index,
        base_term: base.last_included_term,
    };
    let json = serde_json::to_vec(&header).map_err(|e| StorageError::Io(e.to_string()))?;
    frame::encode(&json)
}

/// Appends `entry`'s frame to `out`.
fn encode_entry(out: &mut Vec<u8>, entry: &LogEntry) -> Result<(), StorageError> {
    let json = serde_json::to_vec(entry).map_err(|e| StorageError::Io(e.to_string()))?;
    if json.len() > MAX_ENTRY_LEN {
        // Recovery would take it for garbage: refuse it now instead of losing it later.
        return Err(StorageError::Io(format!(
            "log entry {} of {} bytes exceeds the {MAX_ENTRY_LEN}-byte limit",
            entry.index,
            json.len()
        )));
    }
    frame::encode_into(out, &json)
}

impl LogStore<raftkv_core::Command> for DiskLogStore {
    fn base(&self) -> SnapshotMeta {
        self.base
    }

    fn last_index(&self) -> Index {
        self.base.last_included_index + self.terms.len() as Index
    }

    fn term_at(&self, index: Index) -> Result<Term, StorageError> {
        if index == self.base.last_included_index {
            return Ok(self.base.last_included_term);
        }
        if index == 0 {
            // Below a non-zero base: compacted.
            return Err(StorageError::Compacted(0));
        }
        Ok(self.terms[self.slot(index)?])
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check()?;
        // Encoded straight into the pending buffer, no second copy of a batch; a failure (an
        // entry too large, entries that do not continue the in-memory log) takes the buffer
        // and the offsets back, so the store is unchanged.
        let (pending_len, offsets_len) = (self.pending.len(), self.offsets.len());
        let first = self.last_index() + 1;
        let encoded = entries.iter().zip(first..).try_for_each(|(e, next)| {
            if e.index != next {
                return Err(StorageError::NotContiguous(format!(
                    "expected index {next}, got {}",
                    e.index
                )));
            }
            self.offsets.push(self.written + self.pending.len() as u64);
            self.terms.push(e.term);
            encode_entry(&mut self.pending, e)
        });
        if let Err(err) = encoded {
            self.pending.truncate(pending_len);
            self.offsets.truncate(offsets_len);
            self.terms.truncate(offsets_len);
            return Err(err);
        }
        // A big batch goes to the file as it grows (synced at the next sync, like the rest):
        // the buffer stays about WRITE_BEHIND_BYTES whatever a batch holds.
        if self.pending.len() >= WRITE_BEHIND_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let (first, last) = (self.slot(lo)?, self.slot(hi - 1)?);
        let end = self
            .offsets
            .get(last + 1)
            .copied()
            .unwrap_or(self.written + self.pending.len() as u64);
        let bytes = self.read_stream(self.offsets[first], end)?;
        // Frames written by this store: damage here is the medium's, reported as corruption.
        let mut out = Vec::with_capacity(last - first + 1);
        let mut rest = bytes.as_slice();
        for index in lo..hi {
            let (payload, used) = frame::decode(rest, MAX_ENTRY_LEN)
                .map_err(|e| corrupt(&self.path, format!("entry {index}: {e}")))?;
            let entry: LogEntry = serde_json::from_slice(payload)
                .map_err(|e| corrupt(&self.path, format!("entry {index}: {e}")))?;
            if entry.index != index {
                return Err(corrupt(
                    &self.path,
                    format!("entry {index} is stored as {}", entry.index),
                ));
            }
            out.push(entry);
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(out)
    }

    fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
        self.check()?;
        let base = self.base().last_included_index;
        if index <= base {
            return Err(StorageError::Compacted(index));
        }
        if index > self.last_index() {
            return Ok(());
        }
        let keep = (index - base - 1) as usize;
        let Some(&cut) = self.offsets.get(keep) else {
            return Ok(());
        };
        self.terms.truncate(keep);
        self.offsets.truncate(keep);
        if cut >= self.written {
            // Only unwritten records go: nothing on disk changes.
            self.pending.truncate((cut - self.written) as usize);
            return Ok(());
        }
        // Removed entries may already be durable: cut the file and make the cut durable before
        // anything else is appended, so a crash cannot resurrect a conflicting suffix.
        self.pending.clear();
        let res = self.file.set_len(cut).and_then(|()| self.file.sync_all());
        if let Err(e) = res {
            let err = io_err(&self.path, e);
            return Err(self.poison(err));
        }
        self.written = cut;
        self.unsynced = false;
        Ok(())
    }

    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        self.check()?;
        if upto <= self.base().last_included_index {
            return Ok(());
        }
        let base = SnapshotMeta {
            last_included_index: upto,
            last_included_term: term,
        };
        let kept = self.read_range(upto + 1, self.last_index() + 1)?;
        let mut bytes = encode_header(base)?;
        let mut offsets = Vec::with_capacity(kept.len());
        for e in &kept {
            offsets.push(bytes.len() as u64);
            encode_entry(&mut bytes, e)?;
        }
        // The rewrite contains every kept entry, pending ones included, so it also serves as
        // their sync. The rename is the commit point: before it the old log is intact.
        if let Err(err) = atomic_write(&self.dir, FILE, &bytes) {
            return Err(self.poison(err));
        }
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) => {
                let err = io_err(&self.path, e);
                return Err(self.poison(err));
            }
        };
        self.file = file;
        self.terms = kept.iter().map(|e| e.term).collect();
        self.base = base;
        self.offsets = offsets;
        self.written = bytes.len() as u64;
        self.unsynced = false;
        self.pending.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check()?;
        self.flush()
    }
}
