//! Segment files: `log/<seq>.seg`, fixed-size files holding consecutive frames.
//!
//! A segment is named by its sequence number (20 decimal digits, so names sort like numbers);
//! the log is the segments in sequence order, each continuing the previous one. A segment is
//! created at its full size (temp file, `set_len`, fsync, rename, fsync of the directory)
//! before any record is written to it, so appending never changes a file's size and an
//! fdatasync after an append has no size to flush. Unused space is zeros: a frame header of
//! length 0 marks the end of the records in a segment.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raftkv_core::kvraft::LogEntry;
use raftkv_core::raft::StorageError;

use super::super::{frame, fsync_dir, io_err};

/// The extension of a segment file.
const EXT: &str = "seg";
/// Zeros are written in chunks of this size when a range is cleared.
const ZERO_CHUNK: usize = 64 * 1024;

/// The file name of segment `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.{EXT}")
}

/// The sequence number of a segment file name, or `None` for any other file.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, by sequence number.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// Opens an existing segment for reading and writing.
pub fn open(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))
}

/// Creates segment `seq` in `dir` at `size` bytes of zeros, durably (the file and its
/// directory entry are fsynced) before it returns, so records written to it later never
/// change its size and a crash never loses the file itself.
///
/// `set_len` makes a sparse file: the size is fixed, but blocks are allocated as records are
/// first written, which some filesystems still journal at the fdatasync. Writing zeros (or
/// fallocate) up front would avoid that at the cost of writing every segment twice; not done.
pub fn create(dir: &Path, seq: u64, size: u64) -> Result<(PathBuf, File), StorageError> {
    let name = file_name(seq);
    let tmp = super::super::tmp_path(dir, &name);
    let path = dir.join(&name);
    let file = File::create(&tmp)
        .and_then(|f| f.set_len(size).map(|()| f))
        .and_then(|f| f.sync_all().map(|()| f))
        .map_err(|e| io_err(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    fsync_dir(dir)?;
    Ok((path.clone(), open(&path)?))
}

/// Overwrites bytes `from..to` of `file` with zeros (not synced).
pub fn zero(file: &File, path: &Path, from: u64, to: u64) -> Result<(), StorageError> {
    let zeros = vec![0u8; ZERO_CHUNK.min(to.saturating_sub(from) as usize)];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| io_err(path, e))?;
        at += n as u64;
    }
    Ok(())
}

/// Reads the record at the start of `buf`: the entry and the size of its frame, or why there
/// is none (unused space, a short or damaged frame, a payload that is not an entry).
pub fn read_record(buf: &[u8], max_len: usize) -> Result<(LogEntry, usize), String> {
    if buf.get(..4).is_some_and(|len| len == [0; 4]) {
        // No entry encodes to nothing: a zero length is unused (preallocated) space.
        return Err("end of records (zero length)".to_string());
    }
    let (payload, used) = frame::decode(buf, max_len).map_err(|e| e.to_string())?;
    let entry = serde_json::from_slice(payload).map_err(|e| format!("undecodable entry: {e}"))?;
    Ok((entry, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort_numerically() {
        assert_eq!(file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("base"), None);
        assert_eq!(parse_name("00000000000000000001.seg.tmp"), None);
        assert_eq!(parse_name("1.seg"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn zero_length_header_is_the_end_of_records() {
        assert!(read_record(&[0; 64], 1024).unwrap_err().contains("zero"));
        assert!(read_record(&[], 1024).is_err());
    }
}
