//! The Raft log in `log/` inside the data dir: fixed-size, preallocated segment files and a
//! small `base` file.
//!
//! Layout: `log/base` holds the compaction base (see [`base`]); `log/<seq>.seg` are the
//! segments (see [`segment`]), numbered 1, 2, … in the order they were created, each holding
//! consecutive entries that continue the previous segment's. Every record is one [`frame`]
//! whose payload is a [`LogEntry`] as JSON (the same shape as on the wire); unused space in a
//! segment is zeros. A record never spans two segments: one that does not fit the rest of the
//! current segment goes to a new one, and one larger than a whole segment gets a segment of its
//! own sized to fit.
//!
//! Why segments: a segment is created at its full size, fsynced and its directory fsynced
//! before any record is written to it, so an append followed by fdatasync never changes a
//! file's size (fdatasync has no size to flush, unlike appending past the end of one growing
//! file). Compaction deletes whole segments whose records all lie at or below the new base
//! instead of rewriting the log; entries at or below the base still in the first kept segment
//! are skipped when it is read.
//!
//! Memory: the store keeps each entry's term and offset in its segment, not the entry: the node
//! keeps the entries themselves (core's in-memory log), and only a restart reads them back
//! ([`read_range`](LogStore::read_range) decodes them from the segments).
//!
//! Writes: `append` encodes into an in-memory buffer (written out once it reaches
//! [`WRITE_BEHIND_BYTES`], and when the segment is full); `sync` writes the buffer with one
//! write and one fdatasync of the current segment (group commit). Rolling to a new segment
//! fdatasyncs the full one first. `delete_from` zeroes the removed records in their segment
//! and fdatasyncs it, then deletes the later segments and fsyncs the directory, before it
//! returns. `truncate_prefix` writes the new base atomically, then deletes whole segments.
//!
//! Recovery on open: segments are read in order from the first record on. A record that is
//! unused space (zero length), cut short, fails its checksum, does not decode as an entry, or
//! does not continue the log (index != previous + 1) ends the segment. The log continues into
//! the next segment only if that is a roll: the next segment exists, its first record is good,
//! continues the log, and would not have fitted in the rest of this one. Otherwise the log ends
//! there: the rest of that segment is zeroed and later segments are deleted (durably) before
//! `open` returns, so nothing after the first bad record is ever read as data, and appends
//! continue right after the last good record. Except for damage that no torn write explains: a
//! record that fails its checksum although every sector of it was written (a torn write leaves
//! an unwritten, all-zero sector, or a short file), followed by a good record that continues
//! the log past it. The entries after it were durable, and dropping them would silently lose
//! what this node may have acknowledged, so `open` refuses with [`StorageError::Corrupt`] and
//! changes nothing (as etcd's WAL refuses a checksum mismatch that is not a torn tail).
//!
//! Migration: a data dir with the single-file log of earlier versions (`raft.log`, see
//! [`legacy`]) is converted on open: `log/` is emptied, the old log's entries are written into
//! segments and synced, and only then `raft.log` is removed (the commit point; a crash before
//! it redoes the migration).

mod base;
mod legacy;
mod segment;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use prometheus_client::metrics::histogram::Histogram;
use raftkv_core::kvraft::LogEntry;
use raftkv_core::raft::{Index, LogStore, SnapshotMeta, StorageError, Term};

use super::{corrupt, frame, fsync_dir, io_err, prepare_dir, read_optional};
use crate::failpoints;

/// The directory inside the data dir that holds the log.
pub const DIR: &str = "log";
/// The base file inside [`DIR`].
pub const BASE_FILE: &str = base::FILE;
/// The single-file log of earlier versions, migrated into [`DIR`] on open.
pub const LEGACY_FILE: &str = legacy::FILE;
/// The lock file: held (flock) while a [`DiskLogStore`] is open, so two processes (or two
/// stores in one process) never append to the same log.
pub const LOCK_FILE: &str = "raft.lock";
/// The size of a segment unless [`SegmentOptions`] says otherwise.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// No entry is this large (commands are bounded by the HTTP body limit); a longer length field
/// is garbage from a torn write.
const MAX_ENTRY_LEN: usize = 64 * 1024 * 1024;
/// Pending frames are written to the segment (not synced) once they reach this many bytes.
const WRITE_BEHIND_BYTES: usize = 1024 * 1024;

/// How the log cuts its segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    /// The size every new segment is created at (a record larger than this gets a segment of
    /// its own, sized to fit). Tests use tiny ones to cross segment boundaries.
    pub segment_bytes: u64,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// Open for reading and writing; writes go to explicit offsets.
    file: File,
    /// The file's size, fixed while the segment is in use. Invariant: `end <= capacity`.
    capacity: u64,
    /// The index of its first record (possibly at or below the base in the first segment);
    /// while it is empty, the index the next appended entry will get.
    first_index: Index,
    /// Bytes at the start of the file holding records; the rest is zeros.
    end: u64,
}

/// Where an entry lives: a full segment, or the one being appended to.
#[derive(Clone, Copy, Debug)]
enum Seg {
    Sealed(usize),
    Active,
}

/// A [`LogStore`] in `<dir>/log/`. In memory it keeps each entry's term and where its frame is
/// (a segment, or the pending buffer); reads decode from there. It changes memory after the
/// files (or the pending buffer) accepted the change.
#[derive(Debug)]
pub struct DiskLogStore {
    dir: PathBuf,
    log_dir: PathBuf,
    opts: SegmentOptions,
    /// The full segments, oldest first. Invariant: `seq` and `first_index` strictly increase
    /// along `sealed` then `active`, and the first segment's `first_index` is at most
    /// base + 1, so entry i lives in the last segment whose `first_index` <= i.
    sealed: Vec<Segment>,
    /// The segment appends go to (the newest).
    active: Segment,
    /// The compaction base, as recorded in `log/base`.
    base: SnapshotMeta,
    /// The term of entry base + 1 + i. Invariant: terms.len() == offsets.len().
    terms: Vec<Term>,
    /// offsets[i] is the byte offset of entry base + 1 + i's frame in its segment (for the
    /// active one, in the segment-plus-pending byte stream).
    offsets: Vec<u64>,
    /// Some of the active segment's `end` bytes were written since its last fdatasync.
    unsynced: bool,
    /// Encoded frames appended but not yet written; they belong at `active.end`. Invariant:
    /// `active.end + pending.len() <= active.capacity`.
    pending: Vec<u8>,
    /// Set when a write failed half-way: memory and files may disagree, so every later call
    /// fails until the store is reopened (and recovery repairs the files).
    poisoned: Option<String>,
    /// Where each fdatasync's duration goes (`/metrics`), if anywhere.
    fsync_seconds: Option<Histogram>,
    /// Holds the exclusive lock on `raft.lock` for as long as the store lives.
    _lock: File,
}

/// Whether a record with `index`, after one with `prev`, belongs to a log based at `base`:
/// `Some(true)` to take it, `Some(false)` to skip it (at or below the base), `None` when it
/// does not continue the log.
fn classify(base: Index, prev: Option<Index>, index: Index) -> Option<bool> {
    match prev {
        None if index <= base => Some(false),
        None => (index == base + 1).then_some(true),
        Some(p) if p >= base => (index == p + 1).then_some(true),
        Some(p) if index <= p => None,
        // Still below the base: each compaction past the end of the log made the next entry
        // its base + 1, so compacted records may jump forward; none of them is ever read.
        Some(_) if index <= base => Some(false),
        Some(_) => (index == base + 1).then_some(true),
    }
}

impl DiskLogStore {
    /// Opens the log in `dir` with [`DEFAULT_SEGMENT_BYTES`] segments (creating the directory
    /// and an empty log if missing) and recovers it: a torn or corrupt tail is cut off before
    /// this returns. An old single-file `raft.log` is migrated into segments.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(dir, SegmentOptions::default())
    }

    /// Like [`open`](Self::open), creating new segments of `opts.segment_bytes` bytes.
    pub fn open_with(dir: impl AsRef<Path>, opts: SegmentOptions) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let lock = lock_dir(&dir)?;
        let log_dir = dir.join(DIR);
        let legacy_path = dir.join(LEGACY_FILE);
        if let Some(bytes) = read_optional(&legacy_path)? {
            return Self::migrate(dir, log_dir, opts, lock, &legacy_path, bytes);
        }
        prepare_dir(&log_dir)?;
        let base = match base::read(&log_dir)? {
            Some(base) => base,
            None => {
                // A new log. The base is written before any segment, so segments without a
                // base are not a log this code wrote: refuse to guess.
                if !segment::list(&log_dir)?.is_empty() {
                    return Err(corrupt(&log_dir, "segments without a base file"));
                }
                base::write(&log_dir, SnapshotMeta::default())?;
                SnapshotMeta::default()
            }
        };
        Self::recover(dir, log_dir, opts, lock, base)
    }

    /// Converts the old single-file log into segments, then removes it.
    fn migrate(
        dir: PathBuf,
        log_dir: PathBuf,
        opts: SegmentOptions,
        lock: File,
        legacy_path: &Path,
        bytes: Vec<u8>,
    ) -> Result<Self, StorageError> {
        let old = legacy::read(legacy_path, bytes, MAX_ENTRY_LEN)?;
        // Whatever is in log/ is an earlier migration that did not finish: raft.log is still
        // the log.
        prepare_dir(&log_dir)?;
        for entry in fs::read_dir(&log_dir).map_err(|e| io_err(&log_dir, e))? {
            let path = entry.map_err(|e| io_err(&log_dir, e))?.path();
            fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
        }
        fsync_dir(&log_dir)?;
        base::write(&log_dir, old.base)?;
        let mut store = Self::recover(dir, log_dir, opts, lock, old.base)?;
        for i in 0..old.frames.len() {
            store.append(&[old.entry(i)?])?;
        }
        store.sync()?;
        // The commit point: from here on the segments are the log.
        fs::remove_file(legacy_path).map_err(|e| io_err(legacy_path, e))?;
        fsync_dir(&store.dir)?;
        tracing::info!(
            path = %legacy_path.display(),
            entries = old.frames.len(),
            "migrated the single-file log into segments"
        );
        Ok(store)
    }

    /// Reads the segments of a log based at `base` and repairs a damaged tail (see the module
    /// docs); creates the first segment of an empty log.
    fn recover(
        dir: PathBuf,
        log_dir: PathBuf,
        opts: SegmentOptions,
        lock: File,
        base: SnapshotMeta,
    ) -> Result<Self, StorageError> {
        let base_index = base.last_included_index;
        let files = segment::list(&log_dir)?;
        let mut sealed = Vec::new();
        let mut terms = Vec::new();
        let mut offsets = Vec::new();
        let mut prev: Option<Index> = None;
        let Some((first_seq, first_path)) = files.first() else {
            let (path, file) = segment::create(&log_dir, 1, opts.segment_bytes)?;
            let active = Segment {
                seq: 1,
                path,
                file,
                capacity: opts.segment_bytes,
                first_index: base_index + 1,
                end: 0,
            };
            return Ok(Self::assemble(
                dir, log_dir, opts, lock, base, sealed, active, terms, offsets,
            ));
        };
        let (mut seq, mut path) = (*first_seq, first_path.clone());
        let mut bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        let mut i = 0;
        loop {
            let mut pos = 0;
            let mut seg_first = None;
            let reason = loop {
                let rest = bytes.get(pos..).unwrap_or_default();
                let (entry, used) = match segment::read_record(rest, MAX_ENTRY_LEN) {
                    Ok(ok) => ok,
                    Err(reason) => break reason,
                };
                if prev.is_none() && entry.index > base_index + 1 {
                    // Not a torn write: entries after the base are gone.
                    return Err(corrupt(
                        &path,
                        format!(
                            "the log starts at entry {} but its base is {base_index}",
                            entry.index
                        ),
                    ));
                }
                let Some(take) = classify(base_index, prev, entry.index) else {
                    break format!(
                        "entry {} does not continue entry {}",
                        entry.index,
                        prev.unwrap_or_default()
                    );
                };
                if take {
                    terms.push(entry.term);
                    offsets.push(pos as u64);
                }
                seg_first.get_or_insert(entry.index);
                prev = Some(entry.index);
                pos += used;
            };
            let capacity = bytes.len() as u64;
            let first_index = seg_first.unwrap_or(base_index + 1 + terms.len() as Index);
            // A roll: the next segment's first record is good, continues the log and would not
            // have fitted in the rest of this one.
            let next = files.get(i + 1).filter(|(s, _)| *s == seq + 1);
            let next_bytes = match next {
                Some((_, next_path)) => {
                    let nb = fs::read(next_path).map_err(|e| io_err(next_path, e))?;
                    let rolled = segment::read_record(&nb, MAX_ENTRY_LEN).is_ok_and(|(e, used)| {
                        classify(base_index, prev, e.index).is_some()
                            && used as u64 > capacity - pos as u64
                    });
                    rolled.then_some(nb)
                }
                None => None,
            };
            let file = segment::open(&path)?;
            let mut seg = Segment {
                seq,
                path: path.clone(),
                file,
                capacity,
                first_index,
                end: pos as u64,
            };
            if let (Some(nb), Some((next_seq, next_path))) = (next_bytes, next) {
                sealed.push(seg);
                (seq, path, bytes) = (*next_seq, next_path.clone(), nb);
                i += 1;
                continue;
            }

            // The log ends here, unless what ends it is damage with good entries after it.
            let after = prev.map_or(base_index, |p| p.max(base_index)) + 1;
            if let Some(found) = damaged_before_good(&bytes, pos, after) {
                return Err(corrupt(
                    &path,
                    format!(
                        "the record at offset {pos} is damaged ({reason}) but entry {found} after \
                         it is good: not a torn write, refusing to drop durable entries (restore \
                         this node's data from a backup or its peers)"
                    ),
                ));
            }
            let dirty = bytes.get(pos..).is_some_and(|t| !all_zero(t));
            if dirty {
                tracing::warn!(
                    path = %path.display(),
                    offset = pos,
                    %reason,
                    "dropping a torn or corrupt log tail"
                );
                segment::zero(&seg.file, &path, seg.end, capacity)?;
            }
            if capacity < opts.segment_bytes {
                // Cut short (by the medium or by hand): back to full size, so appends never
                // grow it.
                seg.file
                    .set_len(opts.segment_bytes)
                    .map_err(|e| io_err(&path, e))?;
                seg.capacity = opts.segment_bytes;
            }
            if dirty || capacity < opts.segment_bytes {
                seg.file.sync_all().map_err(|e| io_err(&path, e))?;
            }
            let garbage = files.get(i + 1..).unwrap_or_default();
            if !garbage.is_empty() {
                tracing::warn!(
                    segments = garbage.len(),
                    after = %path.display(),
                    "deleting segments after the end of the log"
                );
                for (_, p) in garbage.iter().rev() {
                    fs::remove_file(p).map_err(|e| io_err(p, e))?;
                }
                fsync_dir(&log_dir)?;
            }
            return Ok(Self::assemble(
                dir, log_dir, opts, lock, base, sealed, seg, terms, offsets,
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: PathBuf,
        log_dir: PathBuf,
        opts: SegmentOptions,
        lock: File,
        base: SnapshotMeta,
        sealed: Vec<Segment>,
        active: Segment,
        terms: Vec<Term>,
        offsets: Vec<u64>,
    ) -> Self {
        let store = DiskLogStore {
            dir,
            log_dir,
            opts,
            sealed,
            active,
            base,
            terms,
            offsets,
            unsynced: false,
            pending: Vec::new(),
            poisoned: None,
            fsync_seconds: None,
            _lock: lock,
        };
        store.debug_check();
        store
    }

    /// Asserts the invariants next to the fields (debug builds).
    fn debug_check(&self) {
        debug_assert_eq!(self.terms.len(), self.offsets.len());
        debug_assert!(self.active.end + self.pending.len() as u64 <= self.active.capacity);
        let all: Vec<&Segment> = self.sealed.iter().chain([&self.active]).collect();
        debug_assert!(
            all.windows(2)
                .all(|w| w[0].seq < w[1].seq && w[0].first_index < w[1].first_index)
        );
        debug_assert!(
            self.sealed.first().unwrap_or(&self.active).first_index
                <= self.base.last_included_index + 1
        );
    }

    /// Records the duration of every fdatasync of the log (the Raft log's `sync`) into `h`.
    pub fn observe_fsync(&mut self, h: Histogram) {
        self.fsync_seconds = Some(h);
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
                self.log_dir.display()
            ))),
            None => Ok(()),
        }
    }

    /// Records a failed write, so no later call works on state that may not match the files.
    fn poison(&mut self, err: StorageError) -> StorageError {
        self.poisoned = Some(err.to_string());
        err
    }

    /// Writes the pending frames into the active segment, without syncing them.
    fn write_pending(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        debug_assert!(self.active.end + self.pending.len() as u64 <= self.active.capacity);
        if let Err(e) = self
            .active
            .file
            .write_all_at(&self.pending, self.active.end)
        {
            let err = io_err(&self.active.path, e);
            return Err(self.poison(err));
        }
        self.active.end += self.pending.len() as u64;
        self.pending.clear();
        // One burst of big entries must not pin its size in memory for the store's life.
        self.pending.shrink_to(WRITE_BEHIND_BYTES);
        self.unsynced = true;
        Ok(())
    }

    /// Writes the pending frames into the active segment and fdatasyncs it.
    fn flush(&mut self) -> Result<(), StorageError> {
        self.write_pending()?;
        if !self.unsynced {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let synced = if failpoints::fires("log-before-fsync") {
            Err(failpoints::io_error("log-before-fsync"))
        } else if failpoints::fires("log-skip-fsync") {
            // A deliberate durability break for the power-loss proof: the entries are
            // reported durable (and so acknowledged) while they are only in the page cache.
            Ok(())
        } else {
            self.active.file.sync_data().and_then(|()| {
                if failpoints::fires("log-after-fsync") {
                    Err(failpoints::io_error("log-after-fsync"))
                } else {
                    Ok(())
                }
            })
        };
        if let Some(h) = &self.fsync_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        if let Err(e) = synced {
            let err = io_err(&self.active.path, e);
            return Err(self.poison(err));
        }
        self.unsynced = false;
        Ok(())
    }

    /// Makes room for a frame of `need` bytes that does not fit the rest of the active
    /// segment: an empty segment grows to fit it; otherwise the active one is written out and
    /// synced, and a new segment (at least `need` bytes) is created durably and becomes active.
    fn roll(&mut self, need: u64, first_index: Index) -> Result<(), StorageError> {
        if self.active.end == 0 && self.pending.is_empty() {
            let res = self
                .active
                .file
                .set_len(need)
                .and_then(|()| self.active.file.sync_all());
            if let Err(e) = res {
                let err = io_err(&self.active.path, e);
                return Err(self.poison(err));
            }
            self.active.capacity = need;
            return Ok(());
        }
        self.flush()?;
        let seq = self.active.seq + 1;
        let size = need.max(self.opts.segment_bytes);
        let (path, file) = match segment::create(&self.log_dir, seq, size) {
            Ok(ok) => ok,
            Err(err) => return Err(self.poison(err)),
        };
        let next = Segment {
            seq,
            path,
            file,
            capacity: size,
            first_index,
            end: 0,
        };
        self.sealed.push(std::mem::replace(&mut self.active, next));
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

    /// The segment holding entry `index` (which is in the log), and the first index past it.
    fn locate(&self, index: Index) -> (Seg, Index) {
        if self.active.first_index <= index {
            return (Seg::Active, self.last_index() + 1);
        }
        let j = self
            .sealed
            .partition_point(|s| s.first_index <= index)
            .saturating_sub(1);
        let limit = self
            .sealed
            .get(j + 1)
            .map_or(self.active.first_index, |s| s.first_index);
        (Seg::Sealed(j), limit)
    }

    fn segment(&self, seg: Seg) -> Result<&Segment, StorageError> {
        match seg {
            Seg::Active => Ok(&self.active),
            Seg::Sealed(j) => self
                .sealed
                .get(j)
                .ok_or_else(|| StorageError::Io(format!("no segment {j}"))),
        }
    }

    /// Bytes `from..to` of a segment (for the active one, of the segment-plus-pending stream).
    fn read_bytes(&self, seg: Seg, from: u64, to: u64) -> Result<Vec<u8>, StorageError> {
        let s = self.segment(seg)?;
        let len = usize::try_from(to.saturating_sub(from)).map_err(|e| io_err(&s.path, e))?;
        let mut out = vec![0; len];
        let on_file = to.min(s.end).saturating_sub(from) as usize;
        if on_file > 0 {
            s.file
                .read_exact_at(&mut out[..on_file], from)
                .map_err(|e| io_err(&s.path, e))?;
        }
        if on_file < len {
            let pending = matches!(seg, Seg::Active)
                .then(|| {
                    let start = (from + on_file as u64 - s.end) as usize;
                    self.pending.get(start..start + (len - on_file))
                })
                .flatten()
                .ok_or_else(|| corrupt(&s.path, "a frame past the end of the segment"))?;
            out[on_file..].copy_from_slice(pending);
        }
        Ok(out)
    }

    /// Takes back entries `first..` after a failed append (they may already be in a segment).
    fn undo_append(&mut self, first: Index, err: StorageError) -> StorageError {
        if self.last_index() >= first
            && let Err(undo) = self.delete_from(first)
        {
            return self.poison(undo);
        }
        err
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
        let first = self.last_index() + 1;
        if let Some((e, next)) = entries.iter().zip(first..).find(|(e, n)| e.index != *n) {
            return Err(StorageError::NotContiguous(format!(
                "expected index {next}, got {}",
                e.index
            )));
        }
        for e in entries {
            // Encoded straight into the pending buffer, no second copy of a batch.
            let start = self.pending.len();
            if let Err(err) = encode_entry(&mut self.pending, e) {
                self.pending.truncate(start);
                return Err(self.undo_append(first, err));
            }
            let len = (self.pending.len() - start) as u64;
            if self.active.end + self.pending.len() as u64 > self.active.capacity {
                // A record never spans two segments: this one starts the next.
                let frame = self.pending.split_off(start);
                self.roll(len, e.index)?;
                self.pending.extend_from_slice(&frame);
            }
            let at = self.active.end + (self.pending.len() as u64 - len);
            if at == 0 {
                self.active.first_index = e.index;
            }
            self.offsets.push(at);
            self.terms.push(e.term);
            // A big batch goes to the segment as it grows (synced at the next sync, like the
            // rest): the buffer stays about WRITE_BEHIND_BYTES whatever a batch holds.
            if self.pending.len() >= WRITE_BEHIND_BYTES {
                self.write_pending()?;
            }
        }
        self.debug_check();
        Ok(())
    }

    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let (first, last) = (self.slot(lo)?, self.slot(hi - 1)?);
        let mut out = Vec::with_capacity(last - first + 1);
        let mut index = lo;
        while index < hi {
            // The entries index..until, all in one segment, in one read.
            let (seg, limit) = self.locate(index);
            let until = hi.min(limit);
            let from = self.offsets[self.slot(index)?];
            let to = if until == limit {
                let s = self.segment(seg)?;
                match seg {
                    Seg::Active => s.end + self.pending.len() as u64,
                    Seg::Sealed(_) => s.end,
                }
            } else {
                self.offsets[self.slot(until)?]
            };
            let path = &self.segment(seg)?.path;
            let bytes = self.read_bytes(seg, from, to)?;
            // Frames written by this store: damage here is the medium's, reported as
            // corruption.
            let mut rest = bytes.as_slice();
            for i in index..until {
                let (entry, used) = segment::read_record(rest, MAX_ENTRY_LEN)
                    .map_err(|e| corrupt(path, format!("entry {i}: {e}")))?;
                if entry.index != i {
                    return Err(corrupt(
                        path,
                        format!("entry {i} is stored as {}", entry.index),
                    ));
                }
                out.push(entry);
                rest = rest.get(used..).unwrap_or_default();
            }
            index = until;
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
        let keep = self.slot(index)?;
        let cut = self.offsets[keep];
        let (seg, _) = self.locate(index);
        self.terms.truncate(keep);
        self.offsets.truncate(keep);
        if matches!(seg, Seg::Active) && cut >= self.active.end {
            // Only unwritten records go: nothing on disk changes.
            self.pending.truncate((cut - self.active.end) as usize);
            return Ok(());
        }
        // Removed entries may already be durable: zero them and delete the later segments,
        // durably, before anything else is appended, so a crash cannot resurrect a conflicting
        // suffix (recovery also stops at the zeros, and a later segment whose first record
        // does not continue the log is not read).
        self.pending.clear();
        self.unsynced = false;
        // The segment holding `cut` becomes the active one; the segments after it go.
        let mut doomed = Vec::new();
        if let Seg::Sealed(j) = seg {
            let mut later = self.sealed.split_off(j);
            doomed = later.split_off(1);
            let Some(kept) = later.pop() else {
                return Err(self.poison(StorageError::Io(format!("no segment {j}"))));
            };
            doomed.push(std::mem::replace(&mut self.active, kept));
        }
        let res = segment::zero(&self.active.file, &self.active.path, cut, self.active.end)
            .and_then(|()| {
                self.active
                    .file
                    .sync_data()
                    .map_err(|e| io_err(&self.active.path, e))
            });
        if let Err(err) = res {
            return Err(self.poison(err));
        }
        self.active.end = cut;
        if !doomed.is_empty() {
            for s in doomed.iter().rev() {
                if let Err(e) = fs::remove_file(&s.path) {
                    let err = io_err(&s.path, e);
                    return Err(self.poison(err));
                }
            }
            if let Err(err) = fsync_dir(&self.log_dir) {
                return Err(self.poison(err));
            }
        }
        if cut == 0 {
            self.active.first_index = index;
        }
        self.debug_check();
        Ok(())
    }

    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        self.check()?;
        let old = self.base.last_included_index;
        if upto <= old {
            return Ok(());
        }
        let base = SnapshotMeta {
            last_included_index: upto,
            last_included_term: term,
        };
        // The commit point: once the base is durable, entries up to it are never read again,
        // so the segments holding only them can go.
        if let Err(err) = base::write(&self.log_dir, base) {
            return Err(self.poison(err));
        }
        let gone = (upto.min(self.last_index()) - old) as usize;
        self.terms.drain(..gone);
        self.offsets.drain(..gone);
        self.base = base;
        // Segment j holds only entries <= upto when the one after it starts at or before
        // upto + 1. The active segment always stays (it is where appends go).
        let mut n = 0;
        while n < self.sealed.len() {
            let next_first = self
                .sealed
                .get(n + 1)
                .map_or(self.active.first_index, |s| s.first_index);
            if next_first > upto + 1 {
                break;
            }
            n += 1;
        }
        if n > 0 {
            let doomed: Vec<Segment> = self.sealed.drain(..n).collect();
            for s in &doomed {
                if let Err(e) = fs::remove_file(&s.path) {
                    let err = io_err(&s.path, e);
                    return Err(self.poison(err));
                }
            }
            if let Err(err) = fsync_dir(&self.log_dir) {
                return Err(self.poison(err));
            }
        }
        self.debug_check();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check()?;
        self.flush()
    }
}

/// The sector size a torn write is assumed to respect: a sector is written whole or not at
/// all (the assumption etcd's WAL makes too).
const SECTOR: usize = 512;

/// Tells a torn tail from damage in the middle of a durable log, for the bad record at `pos`
/// in a segment's `bytes`. A torn write leaves the last, unfinished write partly on disk: a
/// record of it that fails its checksum has a sector never written (all zeros, the
/// preallocated space), or runs past the end of the file. A record that fails its checksum
/// with every sector written, followed right after it by a good record carrying entry
/// `after + 1` (the one after the damaged entry `after`), is damage to a record that was
/// written whole: the entries after it were durable, and may have been acknowledged. Returns
/// that later entry's index. (A damaged length hides where the next record starts: then
/// nothing is found, and the tail is dropped as before.)
fn damaged_before_good(bytes: &[u8], pos: usize, after: Index) -> Option<Index> {
    #[cfg(feature = "protocol-breaks")]
    if BREAK_CUT_ROTTEN_MIDDLE.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let header = bytes.get(pos..pos + frame::HEADER_LEN)?;
    let len = u32::from_le_bytes(header.get(..4)?.try_into().ok()?) as usize;
    if len == 0 || len > MAX_ENTRY_LEN {
        return None;
    }
    let end = pos.checked_add(frame::HEADER_LEN + len)?;
    let record = bytes.get(pos..end)?;
    // The record's part in each sector it touches: one of them all zeros is an unwritten sector.
    let mut at = pos;
    while at < end {
        let sector_end = ((at / SECTOR) + 1) * SECTOR;
        let part = record.get(at - pos..sector_end.min(end) - pos)?;
        if all_zero(part) {
            return None;
        }
        at = sector_end;
    }
    let (next, _) = segment::read_record(bytes.get(end..)?, MAX_ENTRY_LEN).ok()?;
    (next.index == after + 1).then_some(next.index)
}

/// The deliberate break (`protocol-breaks` only): when set, damage with good records after it
/// is cut off like a torn tail again, silently dropping durable entries.
/// `native/tests/storage_breaks.rs` proves the disk tests' check notices.
#[cfg(feature = "protocol-breaks")]
pub static BREAK_CUT_ROTTEN_MIDDLE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether every byte is zero, compared a page at a time with a zero page (a `memcmp`). The
/// unused rest of the last segment (most of 64 MiB) is scanned at every open: byte by byte, a
/// debug build spent about 0.2 s of each open there.
fn all_zero(bytes: &[u8]) -> bool {
    const ZERO: [u8; 4096] = [0; 4096];
    bytes
        .chunks(ZERO.len())
        .all(|c| ZERO.get(..c.len()) == Some(c))
}
