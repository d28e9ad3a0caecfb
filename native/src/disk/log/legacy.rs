//! The single-file log of earlier versions, `raft.log`, read once to migrate it into segments.
//!
//! Format (version 1): a header frame with JSON `{"format":"raftkv-log","version":1,
//! "base_index":I,"base_term":T}`, then one frame per [`LogEntry`] as JSON. Its recovery rules
//! are kept: the first record that is cut short, fails its checksum, does not decode or does
//! not continue the log ends it (a torn tail of an unsynced write); a damaged header (only
//! ever written by an atomic replace) is corruption.

use std::ops::Range;
use std::path::Path;

use raftkv_core::kvraft::LogEntry;
use raftkv_core::raft::{Index, SnapshotMeta, StorageError};
use serde::Deserialize;

use super::super::{corrupt, frame};
use super::segment;

/// The old log's file name inside the data dir.
pub const FILE: &str = "raft.log";
const FORMAT: &str = "raftkv-log";
const VERSION: u32 = 1;
const MAX_HEADER_LEN: usize = 4 * 1024;

#[derive(Debug, Deserialize)]
struct Header {
    format: String,
    version: u32,
    base_index: Index,
    base_term: u64,
}

/// What an old log holds: its base and the frames of its good entries, in order.
#[derive(Debug)]
pub struct LegacyLog {
    /// The compaction base from the header.
    pub base: SnapshotMeta,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The byte range of each good entry's frame in `bytes`; entry base + 1 + i is at i.
    pub frames: Vec<Range<usize>>,
}

impl LegacyLog {
    /// Entry base + 1 + i, decoded.
    pub fn entry(&self, i: usize) -> Result<LogEntry, StorageError> {
        let frame = self
            .frames
            .get(i)
            .and_then(|r| self.bytes.get(r.clone()))
            .ok_or_else(|| StorageError::Io(format!("legacy entry {i} out of range")))?;
        segment::read_record(frame, usize::MAX)
            .map(|(entry, _)| entry)
            .map_err(StorageError::Corrupt)
    }
}

/// Reads and checks the old log in `path` (its bytes `bytes`).
pub fn read(path: &Path, bytes: Vec<u8>, max_entry_len: usize) -> Result<LegacyLog, StorageError> {
    let (payload, header_len) =
        frame::decode(&bytes, MAX_HEADER_LEN).map_err(|e| corrupt(path, format!("header: {e}")))?;
    let header: Header =
        serde_json::from_slice(payload).map_err(|e| corrupt(path, format!("header: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(corrupt(
            path,
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
    let mut frames = Vec::new();
    let mut pos = header_len;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let Ok((entry, used)) = segment::read_record(rest, max_entry_len) else {
            break;
        };
        if entry.index != base.last_included_index + 1 + frames.len() as Index {
            break;
        }
        frames.push(pos..pos + used);
        pos += used;
    }
    if pos < bytes.len() {
        tracing::warn!(
            path = %path.display(),
            offset = pos,
            dropped_bytes = bytes.len() - pos,
            "dropping a torn or corrupt tail of the old log while migrating it"
        );
    }
    Ok(LegacyLog {
        base,
        bytes,
        frames,
    })
}
