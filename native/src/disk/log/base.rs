//! The log's compaction base in `log/base`: one frame holding JSON `{"format":"raftkv-log",
//! "version":2,"base_index":I,"base_term":T}`, replaced atomically (temp, fsync, rename, fsync
//! of the directory) at every compaction. Entries at or below the base that are still in the
//! first segment are skipped when the log is read.

use std::path::Path;

use raftkv_core::raft::{SnapshotMeta, StorageError};
use serde::{Deserialize, Serialize};

use super::super::{atomic_write, frame, read_json_frame, read_optional};

/// The file name inside `log/`.
pub const FILE: &str = "base";
/// The value of the `format` field (the same as the single-file log's header).
const FORMAT: &str = "raftkv-log";
/// Version 2: segments (version 1 was the single `raft.log`).
const VERSION: u32 = 2;
/// A few small fields: anything bigger is a garbage length.
const MAX_LEN: usize = 4 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Base {
    format: String,
    version: u32,
    base_index: u64,
    base_term: u64,
}

/// The stored base, or `None` when `dir` has no base file. The file is only ever replaced
/// atomically, so damage is corruption and is reported.
pub fn read(dir: &Path) -> Result<Option<SnapshotMeta>, StorageError> {
    let path = dir.join(FILE);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let base: Base = read_json_frame(&path, &bytes, MAX_LEN)?;
    if base.format != FORMAT || base.version != VERSION {
        return Err(super::super::corrupt(
            &path,
            format!(
                "unknown log format {:?} version {}",
                base.format, base.version
            ),
        ));
    }
    Ok(Some(SnapshotMeta {
        last_included_index: base.base_index,
        last_included_term: base.base_term,
    }))
}

/// Replaces the stored base with `meta`, durably.
pub fn write(dir: &Path, meta: SnapshotMeta) -> Result<(), StorageError> {
    let base = Base {
        format: FORMAT.to_string(),
        version: VERSION,
        base_index: meta.last_included_index,
        base_term: meta.last_included_term,
    };
    let json = serde_json::to_vec(&base).map_err(|e| StorageError::Io(e.to_string()))?;
    atomic_write(dir, FILE, &frame::encode(&json)?)
}
