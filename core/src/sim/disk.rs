//! The simulated disk's faults beyond a crash: a sync that fails, and a record that reads back
//! corrupt.
//!
//! - **A failed sync.** Every node's stable store and log are wrapped ([`stores`]) around a
//!   shared switch, [`SyncFault`]. While the cluster holds it armed, the next write fails with
//!   an I/O error and writes nothing: the Ready's data stayed in a page cache that the failed
//!   fsync dropped (Linux marks the pages clean after reporting the error, so a retried fsync
//!   "succeeds" without them: PostgreSQL's and etcd's "fsyncgate"). The error comes out of
//!   `Host::persist` as it would from a real disk; the host must stop, not go on.
//! - **A corrupt record.** The stores hold structs, so a record's bytes exist only where one is
//!   damaged: [`encode_record`] gives the bytes a real log would hold (a length, a CRC-32 and
//!   the entry's JSON), [`Damage::apply`] flips a bit in them, and [`recover`] reads them back
//!   as a restart would and lets the checksum decide.
//!
//! Recovery follows what real logs do (etcd's WAL, a segmented log): a bad record that is the
//! last one is a write the crash cut short, never acknowledged, and the log is cut there; a bad
//! record followed by good ones means the disk lost data it had synced, and the node refuses to
//! start rather than serve with amnesia.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::kvraft::{LogEntry, Stores};
use crate::raft::{
    HardState, Index, LogStore, MemLogStore, MemSnapshotStore, MemStableStore, SnapshotMeta,
    StableStore, StorageError, Term,
};
use crate::types::Command;

/// A switch shared by a node's stores and the cluster: while armed, the next write fails.
#[derive(Clone, Debug, Default)]
pub struct SyncFault(Arc<AtomicBool>);

impl SyncFault {
    /// The next write (and the sync it belongs to) fails.
    pub fn arm(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Writes succeed again.
    pub fn disarm(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    /// The error a write gets while armed. Armed once, it fails every write until disarmed:
    /// a Ready's writes go down together (the node must stop at the first).
    fn check(&self) -> Result<(), StorageError> {
        match self.0.load(Ordering::Relaxed) {
            true => Err(StorageError::Io(
                "fsync failed (simulated): the write is lost".into(),
            )),
            false => Ok(()),
        }
    }
}

/// Fresh in-memory stores whose stable store and log fail while `fault` is armed.
pub fn stores(fault: &SyncFault) -> Stores {
    Stores {
        stable: Box::new(FaultyStable {
            inner: MemStableStore::default(),
            fault: fault.clone(),
        }),
        log: Box::new(FaultyLog {
            inner: MemLogStore::default(),
            fault: fault.clone(),
        }),
        snapshot: Box::new(MemSnapshotStore::default()),
    }
}

/// A stable store whose writes fail while its switch is armed.
struct FaultyStable {
    inner: MemStableStore,
    fault: SyncFault,
}

impl StableStore for FaultyStable {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        self.inner.hard_state()
    }

    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        self.fault.check()?;
        self.inner.set_hard_state(hs)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.fault.check()
    }
}

/// A log whose writes fail while its switch is armed.
struct FaultyLog {
    inner: MemLogStore<Command>,
    fault: SyncFault,
}

impl LogStore<Command> for FaultyLog {
    fn base(&self) -> SnapshotMeta {
        self.inner.base()
    }

    fn last_index(&self) -> Index {
        self.inner.last_index()
    }

    fn term_at(&self, index: Index) -> Result<Term, StorageError> {
        self.inner.term_at(index)
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.fault.check()?;
        self.inner.append(entries)
    }

    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.read_range(lo, hi)
    }

    fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
        self.fault.check()?;
        self.inner.delete_from(index)
    }

    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        self.fault.check()?;
        self.inner.truncate_prefix(upto, term)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.fault.check()
    }
}

/// Bytes before a record's JSON: its length and its CRC-32, little-endian.
const HEADER: usize = 8;

/// A log record as a disk holds it: the JSON's length and CRC-32 (IEEE), then the JSON.
pub fn encode_record(e: &LogEntry) -> Vec<u8> {
    // A LogEntry of the KV commands always serializes (no maps with non-string keys).
    let json = serde_json::to_vec(e).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + json.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads a record back; `verify`: check its checksum (a host that skips it takes whatever
/// the bytes say).
pub fn decode_record(bytes: &[u8], verify: bool) -> Result<LogEntry, String> {
    let header = |at: usize| -> Result<u32, String> {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| "record shorter than its header".to_string())
    };
    let len = header(0)? as usize;
    let crc = header(4)?;
    let json = bytes
        .get(HEADER..HEADER + len)
        .ok_or_else(|| format!("record of {len} bytes cut short"))?;
    if verify && crc32fast::hash(json) != crc {
        return Err(format!(
            "checksum mismatch (stored {crc:08x}, computed {:08x})",
            crc32fast::hash(json)
        ));
    }
    serde_json::from_slice(json).map_err(|e| format!("record does not parse: {e}"))
}

/// A record of a node's log that reads back corrupt at its next start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The record's index.
    pub index: Index,
}

impl Damage {
    /// Flips one bit of `record`: the low bit of the last digit of the entry's term, so the
    /// damaged record still parses (a digit stays a digit) and only the checksum tells. The
    /// nastiest flip: one a reader without checksums would take for a real entry.
    pub fn apply(&self, record: &mut [u8]) {
        const KEY: &[u8] = b"\"term\":";
        let Some(at) = record.windows(KEY.len()).position(|w| w == KEY) else {
            // No term field: flip the last byte instead (the checksum still covers it).
            if let Some(b) = record.last_mut() {
                *b ^= 1;
            }
            return;
        };
        let digits = at + KEY.len();
        let end = record[digits..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(record.len(), |n| digits + n);
        if end > digits {
            record[end - 1] ^= 1;
        }
    }
}

/// What a start found when it read a damaged log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// The damaged record was the last: a write cut short by the crash, cut off.
    TailCut {
        /// The index the log now ends before.
        from: Index,
    },
    /// The checksum was not checked (a protocol break): the damaged record is in the log as
    /// it read.
    TakenAsRead {
        /// Its index.
        index: Index,
    },
}

/// Reads `stores`' log with `damage` as a start does. The damaged record's bytes are made
/// ([`encode_record`], [`Damage::apply`]) and decoded; every other record reads back as
/// written. `verify`: check checksums. Errors (the node must not start) when the bad record
/// has good ones after it: the disk lost synced data.
pub fn recover(stores: &mut Stores, damage: Damage, verify: bool) -> Result<Recovered, String> {
    let log = &mut stores.log;
    let index = damage.index;
    let last = log.last_index();
    let entry = log
        .read_range(index, index + 1)
        .map_err(|e| format!("reading log record {index}: {e}"))?;
    let Some(entry) = entry.first() else {
        return Err(format!("log record {index} is missing"));
    };
    let mut bytes = encode_record(entry);
    damage.apply(&mut bytes);
    debug_assert!(
        decode_record(&bytes, true).is_err(),
        "a flipped bit always fails CRC-32"
    );
    match decode_record(&bytes, verify) {
        Err(e) if index == last => {
            log.delete_from(index)
                .map_err(|e| format!("cutting the torn record {index}: {e}"))?;
            let _ = e;
            Ok(Recovered::TailCut { from: index })
        }
        Err(e) => Err(format!(
            "log record {index} of {last} is corrupt ({e}) with good records after it: the \
             disk lost synced data; refusing to start (restore this node from a peer)"
        )),
        Ok(read) => {
            // Only without the check: the bad record goes in as it read.
            let mut rest = log
                .read_range(index, last + 1)
                .map_err(|e| format!("reading the log: {e}"))?;
            rest[0] = read;
            log.delete_from(index)
                .and_then(|()| log.append(&rest))
                .map_err(|e| format!("rewriting the log: {e}"))?;
            Ok(Recovered::TakenAsRead { index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Payload;
    use crate::types::Command;

    fn entry(index: Index, term: Term) -> LogEntry {
        LogEntry {
            index,
            term,
            payload: Payload::Command(Command {
                client_id: "c1".into(),
                seq: 7,
                ..Command::put("k", "v")
            }),
            time: 1234,
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_record_fails_its_checksum() {
        let e = entry(12, 3);
        let good = encode_record(&e);
        assert_eq!(decode_record(&good, true), Ok(e));
        for byte in HEADER..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode_record(&bad, true).is_err(),
                    "flip of bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn the_damage_leaves_a_record_that_parses_with_another_term() {
        let mut bytes = encode_record(&entry(5, 2));
        Damage { index: 5 }.apply(&mut bytes);
        assert!(decode_record(&bytes, true).is_err());
        let read = decode_record(&bytes, false);
        assert_eq!(read.map(|e| (e.index, e.term)), Ok((5, 3)));
    }

    fn stores_with(n: Index) -> Stores {
        let mut s = stores(&SyncFault::default());
        let entries: Vec<_> = (1..=n).map(|i| entry(i, 1)).collect();
        s.log.append(&entries).unwrap();
        s
    }

    #[test]
    fn a_corrupt_last_record_is_cut_like_a_torn_write() {
        let mut s = stores_with(4);
        assert_eq!(
            recover(&mut s, Damage { index: 4 }, true),
            Ok(Recovered::TailCut { from: 4 })
        );
        assert_eq!(s.log.last_index(), 3);
    }

    #[test]
    fn a_corrupt_synced_record_refuses_the_start() {
        let mut s = stores_with(4);
        let r = recover(&mut s, Damage { index: 2 }, true);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("refusing to start")),
            "{r:?}"
        );
        assert_eq!(s.log.last_index(), 4, "nothing is cut");
    }

    #[test]
    fn an_armed_switch_fails_writes_and_writes_nothing() {
        let fault = SyncFault::default();
        let mut s = stores(&fault);
        fault.arm();
        assert!(s.log.append(&[entry(1, 1)]).is_err());
        assert!(s.stable.sync().is_err());
        assert_eq!(s.log.last_index(), 0);
        fault.disarm();
        assert!(s.log.append(&[entry(1, 1)]).is_ok());
    }
}
