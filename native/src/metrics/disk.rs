//! The data dir's sizes, taken from the file system when scraped: the Raft log's segments,
//! the stored snapshot and the state engine's database. (The fsync histogram is recorded by
//! the log store itself, see [`crate::disk::DiskLogStore::observe_fsync`].)

use std::fmt;
use std::path::{Path, PathBuf};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::raft::gauge;

/// Stats the data dir's files when scraped.
#[derive(Debug)]
pub(super) struct DiskCollector {
    pub(super) data_dir: PathBuf,
}

/// The size of `path` in bytes; 0 when it does not exist (no snapshot yet, the memory engine)
/// or cannot be read: a scrape reports what it can rather than failing.
fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The bytes of the files directly in `dir` (the log's segments, preallocated, and its base).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

impl Collector for DiskCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let dir = &self.data_dir;
        gauge(
            &mut enc,
            "raftkv_disk_log_size_bytes",
            "Bytes of the Raft log's files on disk (segments are preallocated whole).",
            dir_bytes(&dir.join("log")),
        )?;
        gauge(
            &mut enc,
            "raftkv_disk_snapshot_size_bytes",
            "Bytes of the stored snapshot file (0 without one).",
            file_bytes(&dir.join("snapshot")),
        )?;
        gauge(
            &mut enc,
            "etcd_debug_mvcc_db_total_size_in_bytes",
            "Total size of the state engine's database file in bytes (0 for the memory engine).",
            file_bytes(&dir.join(crate::engine::disk::FILE)),
        )
    }
}
