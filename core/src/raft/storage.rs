//! What Raft keeps durable, as three traits, with in-memory implementations.
//!
//! Log indices are 1-based; index 0 is the sentinel "no entry" whose term is 0. After
//! compaction the log has a base (the snapshot's last index and term) and holds entries
//! base+1..=last_index.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::membership::Membership;
use super::{Index, Millis, Term};
use crate::types::NodeId;

/// What a log entry carries: Raft's own entries, or a command of the state machine's own
/// type `C`, opaque to Raft.
///
/// On the wire and on disk a command is the command itself and the no-op is `null` (an
/// entry's `cmd` field, as before payloads were generic): every entry is encoded and decoded
/// at each hop, so the encoding stays as small as the command. A configuration is
/// `{"config": {...}}`, a shape no command has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<C> {
    /// The entry a new leader appends at the start of its term (the only way it can commit
    /// entries of earlier terms, Raft §5.4.2).
    Noop,
    /// A client command for the state machine.
    Command(C),
    /// The whole configuration the cluster switches to once this entry is committed (see
    /// [`membership`](super::membership)).
    Config(Membership),
}

/// The encoding of a payload (see [`Payload`]).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WirePayload<C> {
    Config { config: Membership },
    Other(Option<C>),
}

impl<C: Serialize> Serialize for Payload<C> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Noop => Option::<&C>::None.serialize(s),
            Payload::Command(c) => c.serialize(s),
            Payload::Config(m) => {
                #[derive(Serialize)]
                struct Wire<'a> {
                    config: &'a Membership,
                }
                Wire { config: m }.serialize(s)
            }
        }
    }
}

impl<'de, C: Deserialize<'de>> Deserialize<'de> for Payload<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match WirePayload::<C>::deserialize(d)? {
            WirePayload::Config { config } => Payload::Config(config),
            WirePayload::Other(Some(c)) => Payload::Command(c),
            WirePayload::Other(None) => Payload::Noop,
        })
    }
}

impl<C> Payload<C> {
    /// The command, if this is one.
    pub fn command(&self) -> Option<&C> {
        match self {
            Payload::Command(c) => Some(c),
            Payload::Noop | Payload::Config(_) => None,
        }
    }

    /// The configuration, if this is a configuration entry.
    pub fn config(&self) -> Option<&Membership> {
        match self {
            Payload::Config(m) => Some(m),
            Payload::Noop | Payload::Command(_) => None,
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry<C> {
    /// Its position in the log (1-based).
    pub index: Index,
    /// The term of the leader that created it.
    pub term: Term,
    /// What it carries (`cmd` on the wire and on disk).
    #[serde(rename = "cmd")]
    pub payload: Payload<C>,
    /// The clock reading of the leader that created it (its host's milliseconds). Every
    /// replica applies the same readings, so what the state machine measures in them (client
    /// sessions' idle time) comes out the same everywhere. 0 in logs from before it existed
    /// (and then left out of the encoding).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: Millis,
}

fn is_zero(t: &Millis) -> bool {
    *t == 0
}

/// The term and vote, written together so a crash never leaves a vote from another term.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom it voted for in `term`, if anyone.
    pub voted_for: Option<NodeId>,
    /// An index known committed whose entries were durable here when this was written (0 in
    /// data dirs from before it existed). A restart hands those entries out again at once, so
    /// a configuration committed in the log takes effect before the node may campaign.
    #[serde(default)]
    pub commit: Index,
}

/// Describes a snapshot: it covers every entry up to and including `last_included_index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub last_included_index: Index,
    /// The term of that entry.
    pub last_included_term: Term,
}

/// Why a storage call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The index is past the end of the log.
    #[error("log index {0} is not in the log")]
    Missing(Index),
    /// The index was compacted into a snapshot.
    #[error("log index {0} was compacted into a snapshot")]
    Compacted(Index),
    /// Appended entries do not continue the log (wrong first index, or not contiguous).
    #[error("entries do not continue the log: {0}")]
    NotContiguous(String),
    /// The medium failed (disk stores only).
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes are not what was written (disk stores only).
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
}

/// Term and vote.
pub trait StableStore: Send {
    /// The stored hard state (default when nothing was ever stored).
    fn hard_state(&self) -> Result<HardState, StorageError>;
    /// Replaces the hard state.
    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError>;
    /// Makes every write so far durable. In-memory stores: nothing to do.
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    /// The stored term.
    fn current_term(&self) -> Result<Term, StorageError> {
        Ok(self.hard_state()?.term)
    }
    /// The stored vote.
    fn voted_for(&self) -> Result<Option<NodeId>, StorageError> {
        Ok(self.hard_state()?.voted_for)
    }
}

/// The log. Never hands out references to its internals: reads return copies.
pub trait LogStore<C>: Send {
    /// The snapshot base: (last compacted index, its term); (0, 0) before any compaction.
    fn base(&self) -> SnapshotMeta;
    /// The last index in the log, or the base index when the log holds no entry.
    fn last_index(&self) -> Index;
    /// The term at `index`: 0 for index 0, the base term for the base index, an error for a
    /// compacted index or one past the end (never a made-up 0).
    fn term_at(&self, index: Index) -> Result<Term, StorageError>;
    /// Appends entries that continue the log: the first has index last_index + 1 and the rest
    /// follow contiguously. An empty slice is a no-op.
    fn append(&mut self, entries: &[LogEntry<C>]) -> Result<(), StorageError>;
    /// Copies of the entries with `lo <= index < hi`. Errors if any is compacted or missing.
    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry<C>>, StorageError>;
    /// Removes every entry at or after `index` (a conflicting suffix). Errors if `index` is
    /// at or below the base.
    fn delete_from(&mut self, index: Index) -> Result<(), StorageError>;
    /// Discards every entry up to and including `upto`, making (upto, term) the new base.
    /// When `upto` is past the end, the log becomes empty with that base. No-op if
    /// `upto` <= base.
    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError>;
    /// Makes every write so far durable. In-memory stores: nothing to do.
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A snapshot as stored: what it covers, the configuration in force at its last index, and
/// the state machine's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The configuration at `meta.last_included_index` (empty in snapshots from before
    /// membership changes: the node then keeps the configuration it was created with).
    pub membership: Membership,
    /// The state machine's bytes.
    pub data: Vec<u8>,
}

/// What a store knows of a snapshot without its bytes: what the node keeps of its snapshot,
/// and what an InstallSnapshot carries besides one chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The configuration at its last index (see [`StoredSnapshot::membership`]).
    pub membership: Membership,
    /// How many bytes the snapshot has.
    pub size: u64,
    /// CRC-32 (IEEE, `crc32fast`) of all of them.
    pub checksum: u32,
}

/// A snapshot being written by the host's state machine (see [`SnapshotStore::create`]): its
/// bytes go in through [`Write`], on any thread.
pub trait SnapshotWriter: std::io::Write + Send {
    /// Makes what was written durable, not yet the stored snapshot: hand the result to
    /// [`SnapshotStore::commit`].
    fn finish(self: Box<Self>) -> Result<WrittenSnapshot, StorageError>;
}

/// A snapshot written in full and durable, waiting for [`SnapshotStore::commit`].
pub struct WrittenSnapshot {
    /// What it is.
    pub info: SnapshotInfo,
    /// Where the store that made the writer put it (its own business: a buffer, a file
    /// name); a store only commits tokens of its own kind.
    pub token: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for WrittenSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrittenSnapshot")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The latest snapshot, read by byte range (a leader sends it chunk by chunk), and the one
/// being received from a leader, written chunk by chunk beside it. The stored snapshot is only
/// ever replaced whole and atomically ([`commit`](Self::commit),
/// [`finish_receive`](Self::finish_receive)), so a crash leaves either the old or the new one;
/// a reception in progress is not durable state and a restart discards it.
pub trait SnapshotStore: Send {
    /// The stored snapshot's metadata, if there is one.
    fn info(&self) -> Result<Option<SnapshotInfo>, StorageError>;
    /// Bytes `offset..offset + len` of the stored snapshot (fewer at its end). An error when
    /// there is no snapshot or `offset` is past its end.
    fn read_chunk(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;
    /// A writer for a new snapshot covering `meta`. The stored snapshot stays as it is until
    /// the written one is committed.
    fn create(
        &self,
        meta: SnapshotMeta,
        membership: &Membership,
    ) -> Result<Box<dyn SnapshotWriter>, StorageError>;
    /// Makes a snapshot written through [`create`](Self::create) the stored one, atomically.
    /// Durable when it returns.
    fn commit(&mut self, written: WrittenSnapshot) -> Result<(), StorageError>;
    /// Starts receiving the snapshot `info` describes, discarding any reception in progress.
    fn begin_receive(&mut self, info: &SnapshotInfo) -> Result<(), StorageError>;
    /// Appends the next bytes of the reception in progress. Durable when it returns (the
    /// node acknowledges the chunk once the Ready after it is).
    fn append_chunk(&mut self, data: &[u8]) -> Result<(), StorageError>;
    /// Bytes `offset..offset + len` received so far (to check the snapshot before adopting
    /// it).
    fn read_received(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;
    /// Makes the received snapshot the stored one, atomically, once all of it arrived with
    /// the size and checksum announced; an error (and nothing replaced) otherwise.
    fn finish_receive(&mut self) -> Result<SnapshotInfo, StorageError>;
    /// Discards the reception in progress, if any.
    fn abort_receive(&mut self) -> Result<(), StorageError>;

    /// Replaces the stored snapshot with `data`. Durable when it returns.
    fn save(
        &mut self,
        meta: SnapshotMeta,
        membership: &Membership,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let mut w = self.create(meta, membership)?;
        std::io::Write::write_all(&mut w, data).map_err(|e| StorageError::Io(e.to_string()))?;
        let written = w.finish()?;
        self.commit(written)
    }
    /// The stored snapshot, bytes and all, if any (tests and small tools; hosts stream it).
    fn load(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let Some(info) = self.info()? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        snapshot_reader(self, info.size, Source::Stored)
            .read_to_end(&mut data)
            .map_err(|e| StorageError::Io(e.to_string()))?;
        Ok(Some(StoredSnapshot {
            meta: info.meta,
            membership: info.membership,
            data,
        }))
    }
}

/// Which snapshot of a store a [`snapshot_reader`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The stored snapshot.
    Stored,
    /// The one being received.
    Received,
}

/// How many bytes a [`snapshot_reader`] asks its store for at a time.
const READ_PIECE: u64 = 256 * 1024;

/// Reads the first `size` bytes of one of `store`'s snapshots as a stream, a piece at a time,
/// so restoring or checking a snapshot never holds all of it.
pub fn snapshot_reader<S: SnapshotStore + ?Sized>(
    store: &S,
    size: u64,
    source: Source,
) -> impl Read + '_ {
    SnapshotReader {
        store,
        source,
        offset: 0,
        size,
        buf: Vec::new(),
        pos: 0,
    }
}

struct SnapshotReader<'a, S: ?Sized> {
    store: &'a S,
    source: Source,
    /// The next offset to fetch from the store.
    offset: u64,
    size: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` already read. Invariant: `pos <= buf.len()`.
    pos: usize,
}

impl<S: SnapshotStore + ?Sized> Read for SnapshotReader<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.offset >= self.size {
                return Ok(0);
            }
            let len = READ_PIECE.min(self.size - self.offset);
            let piece = match self.source {
                Source::Stored => self.store.read_chunk(self.offset, len),
                Source::Received => self.store.read_received(self.offset, len),
            }
            .map_err(std::io::Error::other)?;
            if piece.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the snapshot ends before its size",
                ));
            }
            self.offset += piece.len() as u64;
            self.buf = piece;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        debug_assert!(self.pos <= self.buf.len());
        Ok(n)
    }
}

/// Bytes `offset..offset + len` of `data` (fewer at its end), or an error past its end: the
/// range read every store answers, here over bytes in memory.
pub fn chunk_of(data: &[u8], offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
    let size = data.len() as u64;
    if offset > size {
        return Err(StorageError::Io(format!(
            "snapshot offset {offset} past its end ({size} bytes)"
        )));
    }
    let end = offset.saturating_add(len).min(size);
    Ok(data[offset as usize..end as usize].to_vec())
}

/// The three stores a host writes a node's durable state to. Handed back by
/// [`Host::into_stores`](super::Host::into_stores) when a host kills the node, so a restart
/// sees exactly what was durable.
pub struct Stores<C> {
    /// Term and vote.
    pub stable: Box<dyn StableStore>,
    /// The log.
    pub log: Box<dyn LogStore<C>>,
    /// The snapshot.
    pub snapshot: Box<dyn SnapshotStore>,
}

impl<C: Clone + Send + 'static> Stores<C> {
    /// Fresh, empty in-memory stores.
    pub fn in_memory() -> Self {
        Stores {
            stable: Box::new(MemStableStore::default()),
            log: Box::new(MemLogStore::default()),
            snapshot: Box::new(MemSnapshotStore::default()),
        }
    }
}

/// In-memory [`StableStore`].
#[derive(Clone, Debug, Default)]
pub struct MemStableStore {
    hs: HardState,
}

/// In-memory [`LogStore`]; also the node's own copy of its log.
/// Invariant: entries[i].index == base.last_included_index + 1 + i.
#[derive(Clone, Debug)]
pub struct MemLogStore<C> {
    base: SnapshotMeta,
    entries: Vec<LogEntry<C>>,
}

impl<C> Default for MemLogStore<C> {
    fn default() -> Self {
        MemLogStore {
            base: SnapshotMeta::default(),
            entries: Vec::new(),
        }
    }
}

/// In-memory [`SnapshotStore`].
#[derive(Clone, Debug, Default)]
pub struct MemSnapshotStore {
    /// The stored snapshot and its checksum.
    latest: Option<(StoredSnapshot, u32)>,
    /// The reception in progress: what it announced, and the bytes so far. Invariant: no more
    /// bytes than announced.
    receiving: Option<(SnapshotInfo, Vec<u8>)>,
}

/// [`MemSnapshotStore`]'s writer: the bytes in a buffer.
struct MemSnapshotWriter {
    meta: SnapshotMeta,
    membership: Membership,
    data: Vec<u8>,
}

impl std::io::Write for MemSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SnapshotWriter for MemSnapshotWriter {
    fn finish(self: Box<Self>) -> Result<WrittenSnapshot, StorageError> {
        let info = SnapshotInfo {
            meta: self.meta,
            membership: self.membership.clone(),
            size: self.data.len() as u64,
            checksum: crc32fast::hash(&self.data),
        };
        let snap = StoredSnapshot {
            meta: self.meta,
            membership: self.membership,
            data: self.data,
        };
        Ok(WrittenSnapshot {
            info,
            token: Box::new(snap),
        })
    }
}

impl StableStore for MemStableStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        Ok(self.hs.clone())
    }
    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.hs = hs.clone();
        Ok(())
    }
}

impl<C: Clone + Send> MemLogStore<C> {
    /// An empty log whose compaction base is `base` (the next entry is base + 1): what a
    /// durable log rebuilds its in-memory copy on.
    pub fn with_base(base: SnapshotMeta) -> Self {
        MemLogStore {
            base,
            entries: Vec::new(),
        }
    }

    /// The entries with `lo <= index < hi`, borrowed: the node reads its own in-memory log
    /// without copying what it does not send. Errors as `read_range` does.
    pub fn slice(&self, lo: Index, hi: Index) -> Result<&[LogEntry<C>], StorageError> {
        if lo >= hi {
            return Ok(&[]);
        }
        let first = self.slot(lo)?;
        let last = self.slot(hi - 1)?;
        Ok(&self.entries[first..=last])
    }

    /// The position in `entries` of `index`, which must lie in base+1..=last_index.
    fn slot(&self, index: Index) -> Result<usize, StorageError> {
        let base = self.base.last_included_index;
        if index <= base {
            Err(StorageError::Compacted(index))
        } else if index > self.last_index() {
            Err(StorageError::Missing(index))
        } else {
            Ok((index - base - 1) as usize)
        }
    }
}

impl<C: Clone + Send> LogStore<C> for MemLogStore<C> {
    fn base(&self) -> SnapshotMeta {
        self.base
    }

    fn last_index(&self) -> Index {
        self.base.last_included_index + self.entries.len() as Index
    }

    fn term_at(&self, index: Index) -> Result<Term, StorageError> {
        if index == self.base.last_included_index {
            return Ok(self.base.last_included_term);
        }
        if index == 0 {
            // Below a non-zero base: compacted.
            return Err(StorageError::Compacted(0));
        }
        Ok(self.entries[self.slot(index)?].term)
    }

    fn append(&mut self, entries: &[LogEntry<C>]) -> Result<(), StorageError> {
        for (next, e) in (self.last_index() + 1..).zip(entries) {
            if e.index != next {
                return Err(StorageError::NotContiguous(format!(
                    "expected index {next}, got {}",
                    e.index
                )));
            }
        }
        self.entries.extend_from_slice(entries);
        debug_assert!(
            self.entries
                .first()
                .is_none_or(|e| e.index == self.base.last_included_index + 1)
                && self
                    .entries
                    .last()
                    .is_none_or(|e| e.index == self.last_index()),
            "a MemLogStore's entries run from its base + 1 to its last index"
        );
        Ok(())
    }

    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry<C>>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let first = self.slot(lo)?;
        let last = self.slot(hi - 1)?;
        Ok(self.entries[first..=last].to_vec())
    }

    fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
        if index <= self.base.last_included_index {
            return Err(StorageError::Compacted(index));
        }
        if index <= self.last_index() {
            let keep = (index - self.base.last_included_index - 1) as usize;
            self.entries.truncate(keep);
        }
        Ok(())
    }

    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        let base = self.base.last_included_index;
        if upto <= base {
            return Ok(());
        }
        if upto >= self.last_index() {
            self.entries.clear();
        } else {
            self.entries.drain(..(upto - base) as usize);
        }
        self.base = SnapshotMeta {
            last_included_index: upto,
            last_included_term: term,
        };
        Ok(())
    }
}

impl SnapshotStore for MemSnapshotStore {
    fn info(&self) -> Result<Option<SnapshotInfo>, StorageError> {
        Ok(self.latest.as_ref().map(|(s, checksum)| SnapshotInfo {
            meta: s.meta,
            membership: s.membership.clone(),
            size: s.data.len() as u64,
            checksum: *checksum,
        }))
    }

    fn read_chunk(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        match &self.latest {
            Some((s, _)) => chunk_of(&s.data, offset, len),
            None => Err(StorageError::Io("no snapshot stored".into())),
        }
    }

    fn create(
        &self,
        meta: SnapshotMeta,
        membership: &Membership,
    ) -> Result<Box<dyn SnapshotWriter>, StorageError> {
        Ok(Box::new(MemSnapshotWriter {
            meta,
            membership: membership.clone(),
            data: Vec::new(),
        }))
    }

    fn commit(&mut self, written: WrittenSnapshot) -> Result<(), StorageError> {
        let snap = written
            .token
            .downcast::<StoredSnapshot>()
            .map_err(|_| StorageError::Io("not a snapshot written by this store".into()))?;
        self.latest = Some((*snap, written.info.checksum));
        Ok(())
    }

    fn begin_receive(&mut self, info: &SnapshotInfo) -> Result<(), StorageError> {
        self.receiving = Some((info.clone(), Vec::new()));
        Ok(())
    }

    fn append_chunk(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let Some((info, buf)) = self.receiving.as_mut() else {
            return Err(StorageError::Io("no snapshot reception in progress".into()));
        };
        if buf.len() as u64 + data.len() as u64 > info.size {
            return Err(StorageError::Io(format!(
                "a chunk runs past the announced {} bytes",
                info.size
            )));
        }
        buf.extend_from_slice(data);
        Ok(())
    }

    fn read_received(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        match &self.receiving {
            Some((_, buf)) => chunk_of(buf, offset, len),
            None => Err(StorageError::Io("no snapshot reception in progress".into())),
        }
    }

    fn finish_receive(&mut self) -> Result<SnapshotInfo, StorageError> {
        let Some((info, data)) = self.receiving.take() else {
            return Err(StorageError::Io("no snapshot reception in progress".into()));
        };
        if data.len() as u64 != info.size || crc32fast::hash(&data) != info.checksum {
            return Err(StorageError::Io(
                "the received snapshot does not match its size and checksum".into(),
            ));
        }
        self.latest = Some((
            StoredSnapshot {
                meta: info.meta,
                membership: info.membership.clone(),
                data,
            },
            info.checksum,
        ));
        Ok(info)
    }

    fn abort_receive(&mut self) -> Result<(), StorageError> {
        self.receiving = None;
        Ok(())
    }
}
