//! A write-ahead journal: an append-only file of checksummed records, fsynced on every append.
//!
//! It gives a single node durable writes before Raft exists; the Raft log replaces it later, so
//! it stays deliberately small: no compaction, no snapshots.
//!
//! Record layout (little-endian):
//!
//! ```text
//! [len: u32][crc: u32][payload: len bytes]      crc = CRC32 over the 4 len bytes, then payload
//! ```
//!
//! The CRC covers the length too, and a zero length is invalid, so a tail of zeroes (what some
//! file systems leave after a crash) or a torn length field is never read as a record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of the record header: length and checksum.
const HEADER_LEN: usize = 8;

/// The largest payload accepted. A length above it can only come from a damaged header, and
/// rejecting it early keeps a corrupt length from looking like "more data follows".
pub const MAX_RECORD_LEN: usize = 256 * 1024 * 1024;

/// Why the journal could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O operation on the journal file failed.
    #[error("journal {path}: {what}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A payload exceeds [`MAX_RECORD_LEN`].
    #[error("journal record of {0} bytes exceeds the limit of {MAX_RECORD_LEN} bytes")]
    TooLarge(usize),
    /// An earlier failed append could not be rolled back, so the file's tail is unknown; appending
    /// after it could hide good records behind garbage.
    #[error("journal {0} is unusable after a failed write; restart the server to recover it")]
    Broken(PathBuf),
}

/// What opening the journal found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The payloads of every intact record, in append order.
    pub records: Vec<Vec<u8>>,
    /// How many bytes of torn or corrupt tail were cut off (0 for a clean file).
    pub dropped_bytes: u64,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Length of the file up to the end of the last intact record.
    len: u64,
    broken: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, reads every intact record, and cuts off a
    /// torn or corrupt tail so that later appends follow the last good record.
    pub fn open(path: &Path) -> Result<(Journal, Recovery), JournalError> {
        let io_err = |what: &'static str| {
            let path = path.to_path_buf();
            move |source| JournalError::Io { path, what, source }
        };
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err("open"))?;
        if !existed {
            // Make the new file's directory entry durable too, or a crash could lose the whole
            // journal even though every record in it was fsynced.
            sync_parent_dir(path).map_err(io_err("sync directory"))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err("read"))?;
        let (records, good_len) = scan(&bytes);
        let dropped_bytes = (bytes.len() - good_len) as u64;
        if dropped_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes,
                kept_records = records.len(),
                "journal has a torn or corrupt tail; truncating it to the last intact record"
            );
            file.set_len(good_len as u64).map_err(io_err("truncate"))?;
            file.sync_all().map_err(io_err("sync"))?;
        }
        let journal = Journal {
            path: path.to_path_buf(),
            file,
            len: good_len as u64,
            broken: false,
        };
        Ok((
            journal,
            Recovery {
                records,
                dropped_bytes,
            },
        ))
    }

    /// Appends one record and fsyncs it: when this returns `Ok`, the record survives a crash.
    ///
    /// On failure the file is cut back to its previous length, so a half-written record never
    /// sits in front of later ones; if even that fails the journal refuses further appends.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), JournalError> {
        if self.broken {
            return Err(JournalError::Broken(self.path.clone()));
        }
        let record = encode(payload)?;
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(())
            }
            Err(source) => {
                if self.file.set_len(self.len).is_err() {
                    self.broken = true;
                }
                Err(JournalError::Io {
                    path: self.path.clone(),
                    what: "append",
                    source,
                })
            }
        }
    }

    /// The file's length up to the end of the last intact record.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Frames `payload` as one record.
fn encode(payload: &[u8]) -> Result<Vec<u8>, JournalError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n > 0 && n as usize <= MAX_RECORD_LEN)
        .ok_or(JournalError::TooLarge(payload.len()))?;
    let len_bytes = len.to_le_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&checksum(&len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// Reads records from the start of `bytes` until the first one that is incomplete or fails its
/// checksum. Returns the payloads and the length of the intact prefix.
fn scan(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + HEADER_LEN) {
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len == 0 || len > MAX_RECORD_LEN {
            break;
        }
        let start = pos + HEADER_LEN;
        let Some(payload) = bytes.get(start..start + len) else {
            break;
        };
        if checksum(&len_bytes, payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        pos = start + len;
    }
    (records, pos)
}

fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// Creates `dir` (and its parents) if missing and checks that it is a directory.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        // create_dir_all's own error here ("File exists") would not say what is wrong.
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "exists and is not a directory",
        )),
        Err(_) => fs::create_dir_all(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> (Journal, Recovery) {
        Journal::open(path).unwrap()
    }

    fn payloads() -> Vec<Vec<u8>> {
        vec![
            b"first".to_vec(),
            br#"{"op":"put","key":"k","value":"v"}"#.to_vec(),
            vec![0xff; 300],
        ]
    }

    /// Writes `payloads` to a fresh journal and returns the file's bytes and where the last
    /// record starts.
    fn written(dir: &Path) -> (PathBuf, Vec<u8>, usize) {
        let path = dir.join("journal");
        let (mut j, rec) = open(&path);
        assert_eq!(rec, Recovery::default());
        let mut last_start = 0;
        for p in payloads() {
            last_start = j.len() as usize;
            j.append(&p).unwrap();
        }
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, j.len());
        (path, bytes, last_start)
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = written(dir.path());
        let (_, rec) = open(&path);
        assert_eq!(rec.records, payloads());
        assert_eq!(rec.dropped_bytes, 0);
    }

    #[test]
    fn a_cut_anywhere_in_the_last_record_drops_only_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, last_start) = written(dir.path());
        let earlier = &payloads()[..2];
        for cut in last_start..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let (mut j, rec) = open(&path);
            assert_eq!(rec.records, earlier, "cut at {cut}");
            assert_eq!(rec.dropped_bytes, (cut - last_start) as u64, "cut at {cut}");
            assert_eq!(fs::metadata(&path).unwrap().len(), last_start as u64);
            // Appending after recovery continues from the last good record.
            j.append(b"after").unwrap();
            drop(j);
            let (_, rec) = open(&path);
            let mut want = earlier.to_vec();
            want.push(b"after".to_vec());
            assert_eq!(rec.records, want, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_last_record_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes, last_start) = written(dir.path());
        for at in last_start..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            fs::write(&path, &damaged).unwrap();
            let (_, rec) = open(&path);
            assert_eq!(rec.records, &payloads()[..2], "flip at {at}");
        }
    }

    #[test]
    fn a_zero_filled_tail_is_not_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes, _) = written(dir.path());
        let good = bytes.len();
        bytes.extend_from_slice(&[0; 64]);
        fs::write(&path, &bytes).unwrap();
        let (_, rec) = open(&path);
        assert_eq!(rec.records, payloads());
        assert_eq!(rec.dropped_bytes, 64);
        assert_eq!(fs::metadata(&path).unwrap().len(), good as u64);
    }

    #[test]
    fn empty_and_oversized_payloads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(&dir.path().join("journal"));
        assert!(matches!(j.append(b""), Err(JournalError::TooLarge(0))));
        assert!(j.is_empty());
    }

    #[test]
    fn ensure_dir_refuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        assert!(ensure_dir(&file).is_err());
        let nested = dir.path().join("a/b");
        ensure_dir(&nested).unwrap();
        assert!(nested.is_dir());
    }
}
