//! The latest snapshot in `snapshot`: a frame holding the [`SnapshotMeta`] and the
//! configuration at its index as JSON, followed by a frame holding the snapshot bytes. The
//! second frame's header is the bytes' length and CRC-32, which is also the checksum a leader
//! announces in InstallSnapshot, so the file is read by byte range (chunk by chunk) without
//! decoding the rest. Files written before membership changes have no configuration in their
//! first frame and load with an empty one. A snapshot is at most 4 GiB (the frame's length
//! field).
//!
//! The file is only ever replaced whole, by a rename: a snapshot being written (taken here or
//! received from a leader) lives in a `*.tmp` file beside it, fsynced before the rename and the
//! directory fsynced after, so a crash at any point leaves the old snapshot or the new one;
//! opening the store discards leftover temp files (a reception cut by a kill starts over).

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use raftkv_core::raft::{
    Membership, SnapshotInfo, SnapshotMeta, SnapshotStore, SnapshotWriter, StorageError,
    StoredSnapshot, WrittenSnapshot,
};
use serde::{Deserialize, Serialize};

use super::{corrupt, frame, fsync_dir, io_err, prepare_dir};
use crate::failpoints;

/// The file name inside the data dir.
pub const FILE: &str = "snapshot";
/// The temp file a snapshot taken here is written to.
const WRITE_TMP: &str = "snapshot.write.tmp";
/// The temp file a snapshot received from a leader is written to.
const RECEIVE_TMP: &str = "snapshot.recv.tmp";
/// The metadata is two integers and a configuration as JSON: anything bigger is a garbage
/// length.
const MAX_META_LEN: usize = 1024 * 1024;

/// The first frame.
#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    meta: SnapshotMeta,
    #[serde(default, skip_serializing_if = "Membership::is_empty")]
    membership: Membership,
}

/// A snapshot file's metadata and where its bytes start.
#[derive(Clone, Debug)]
struct Located {
    info: SnapshotInfo,
    /// The offset of the snapshot's first byte in the file.
    data_start: u64,
}

/// A reception in progress.
#[derive(Debug)]
struct Receiving {
    loc: Located,
    file: File,
    /// Bytes appended so far. Invariant: at most `loc.info.size`.
    written: u64,
    crc: crc32fast::Hasher,
}

/// A [`SnapshotStore`] in `<dir>/snapshot`. It keeps the stored snapshot's metadata in memory
/// (checked against the file's checksum when opened and when replaced) and reads its bytes by
/// range.
#[derive(Debug)]
pub struct DiskSnapshotStore {
    dir: PathBuf,
    current: Option<Located>,
    receiving: Option<Receiving>,
}

impl DiskSnapshotStore {
    /// Opens the store in `dir`, creating the directory if missing and discarding a snapshot
    /// write or reception a crash cut short. A damaged snapshot file is reported now rather
    /// than at the first read.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let path = dir.join(FILE);
        let current = match File::open(&path) {
            Ok(f) => Some(verify(&path, f)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(DiskSnapshotStore {
            dir,
            current,
            receiving: None,
        })
    }
}

/// The two frame headers a snapshot file starts with, for a snapshot of `size` bytes whose
/// checksum is `checksum`, and the offset of its first byte.
fn file_head(
    meta: SnapshotMeta,
    membership: &Membership,
    size: u64,
    checksum: u32,
) -> Result<(Vec<u8>, u64), StorageError> {
    let header = Header {
        meta,
        membership: membership.clone(),
    };
    let json = serde_json::to_vec(&header).map_err(|e| StorageError::Io(e.to_string()))?;
    let mut head = frame::encode(&json)?;
    let len = u32::try_from(size).map_err(|_| {
        StorageError::Io(format!(
            "a snapshot of {size} bytes is too large (max 4 GiB)"
        ))
    })?;
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&checksum.to_le_bytes());
    let data_start = head.len() as u64;
    Ok((head, data_start))
}

/// Reads a snapshot file's header and checks its bytes against their checksum (one streaming
/// pass): the file is only ever replaced whole, so any damage is corruption.
fn verify(path: &Path, mut f: File) -> Result<Located, StorageError> {
    let mut lens = [0u8; frame::HEADER_LEN];
    f.read_exact(&mut lens)
        .map_err(|_| corrupt(path, "truncated header"))?;
    let meta_len = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
    if meta_len > MAX_META_LEN {
        return Err(corrupt(path, format!("header length {meta_len}")));
    }
    let mut head = lens.to_vec();
    head.resize(frame::HEADER_LEN + meta_len, 0);
    f.read_exact(&mut head[frame::HEADER_LEN..])
        .map_err(|_| corrupt(path, "truncated header"))?;
    let (json, _) = frame::decode(&head, MAX_META_LEN).map_err(|e| corrupt(path, e))?;
    let Header { meta, membership } = serde_json::from_slice(json).map_err(|e| corrupt(path, e))?;
    let mut data_head = [0u8; frame::HEADER_LEN];
    f.read_exact(&mut data_head)
        .map_err(|_| corrupt(path, "truncated data header"))?;
    let size = u64::from(u32::from_le_bytes([
        data_head[0],
        data_head[1],
        data_head[2],
        data_head[3],
    ]));
    let checksum = u32::from_le_bytes([data_head[4], data_head[5], data_head[6], data_head[7]]);
    let data_start = (head.len() + frame::HEADER_LEN) as u64;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut seen = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        seen += n as u64;
    }
    if seen != size {
        return Err(corrupt(
            path,
            format!("{seen} snapshot bytes, the header says {size}"),
        ));
    }
    if crc.finalize() != checksum {
        return Err(corrupt(path, "snapshot checksum mismatch"));
    }
    Ok(Located {
        info: SnapshotInfo {
            meta,
            membership,
            size,
            checksum,
        },
        data_start,
    })
}

/// Bytes `offset..offset + len` of the snapshot in `path` located by `loc` (fewer at its end).
fn read_range(path: &Path, loc: &Located, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
    let size = loc.info.size;
    if offset > size {
        return Err(io_err(
            path,
            format!("snapshot offset {offset} past its end ({size} bytes)"),
        ));
    }
    let n = len.min(size - offset);
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    f.seek(SeekFrom::Start(loc.data_start + offset))
        .map_err(|e| io_err(path, e))?;
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf).map_err(|e| io_err(path, e))?;
    Ok(buf)
}

/// Renames `tmp` over the snapshot file and makes the rename durable.
fn replace_with(dir: &Path, tmp: &Path) -> Result<(), StorageError> {
    let target = dir.join(FILE);
    fs::rename(tmp, &target).map_err(|e| io_err(&target, e))?;
    fsync_dir(dir)
}

/// [`DiskSnapshotStore`]'s writer: the temp file, its header first with the data frame's
/// length and checksum filled in by `finish`.
struct DiskSnapshotWriter {
    dir: PathBuf,
    path: PathBuf,
    file: BufWriter<File>,
    meta: SnapshotMeta,
    membership: Membership,
    data_start: u64,
    size: u64,
    crc: crc32fast::Hasher,
}

impl Write for DiskSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl SnapshotWriter for DiskSnapshotWriter {
    fn finish(self: Box<Self>) -> Result<WrittenSnapshot, StorageError> {
        let DiskSnapshotWriter {
            dir,
            path,
            file,
            meta,
            membership,
            data_start,
            size,
            crc,
        } = *self;
        let checksum = crc.finalize();
        let (head, start) = file_head(meta, &membership, size, checksum)?;
        debug_assert_eq!(
            start, data_start,
            "the header's length does not depend on the size"
        );
        let mut file = file.into_inner().map_err(|e| io_err(&path, e.error()))?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&head))
            .and_then(|()| fail_io("snapshot-before-save"))
            .and_then(|()| file.sync_all())
            .and_then(|()| fail_io("snapshot-after-save"))
            .map_err(|e| io_err(&path, e))?;
        Ok(WrittenSnapshot {
            info: SnapshotInfo {
                meta,
                membership,
                size,
                checksum,
            },
            token: Box::new((dir, path, data_start)),
        })
    }
}

impl SnapshotStore for DiskSnapshotStore {
    fn info(&self) -> Result<Option<SnapshotInfo>, StorageError> {
        Ok(self.current.as_ref().map(|l| l.info.clone()))
    }

    fn read_chunk(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.dir.join(FILE);
        match &self.current {
            Some(loc) => read_range(&path, loc, offset, len),
            None => Err(io_err(&path, "no snapshot stored")),
        }
    }

    fn create(
        &self,
        meta: SnapshotMeta,
        membership: &Membership,
    ) -> Result<Box<dyn SnapshotWriter>, StorageError> {
        let path = self.dir.join(WRITE_TMP);
        // The placeholder has the final header's length: only the data frame's fields change.
        let (head, data_start) = file_head(meta, membership, 0, 0)?;
        let mut file = BufWriter::new(File::create(&path).map_err(|e| io_err(&path, e))?);
        file.write_all(&head).map_err(|e| io_err(&path, e))?;
        Ok(Box::new(DiskSnapshotWriter {
            dir: self.dir.clone(),
            path,
            file,
            meta,
            membership: membership.clone(),
            data_start,
            size: 0,
            crc: crc32fast::Hasher::new(),
        }))
    }

    fn commit(&mut self, written: WrittenSnapshot) -> Result<(), StorageError> {
        let (dir, path, data_start) = *written
            .token
            .downcast::<(PathBuf, PathBuf, u64)>()
            .map_err(|_| StorageError::Io("not a snapshot written by this store".into()))?;
        if dir != self.dir {
            return Err(io_err(&path, "a snapshot written for another store"));
        }
        replace_with(&self.dir, &path)?;
        self.current = Some(Located {
            info: written.info,
            data_start,
        });
        Ok(())
    }

    fn begin_receive(&mut self, info: &SnapshotInfo) -> Result<(), StorageError> {
        self.abort_receive()?;
        let path = self.dir.join(RECEIVE_TMP);
        let (head, data_start) = file_head(info.meta, &info.membership, info.size, info.checksum)?;
        let mut file = File::create(&path).map_err(|e| io_err(&path, e))?;
        file.write_all(&head).map_err(|e| io_err(&path, e))?;
        self.receiving = Some(Receiving {
            loc: Located {
                info: info.clone(),
                data_start,
            },
            file,
            written: 0,
            crc: crc32fast::Hasher::new(),
        });
        Ok(())
    }

    fn append_chunk(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let path = self.dir.join(RECEIVE_TMP);
        let Some(r) = self.receiving.as_mut() else {
            return Err(io_err(&path, "no snapshot reception in progress"));
        };
        let end = r.written + data.len() as u64;
        if end > r.loc.info.size {
            return Err(io_err(
                &path,
                format!("a chunk runs past the announced {} bytes", r.loc.info.size),
            ));
        }
        // No fsync per chunk: a reception does not survive a restart (`open` discards it), so
        // nothing reads these bytes after a crash; `finish_receive` fsyncs the whole file
        // before it becomes the stored snapshot. (An fsync per 1 MiB chunk was most of a
        // 265 MB transfer's time on loopback.)
        r.file.write_all(data).map_err(|e| io_err(&path, e))?;
        r.crc.update(data);
        r.written = end;
        Ok(())
    }

    fn read_received(&self, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.dir.join(RECEIVE_TMP);
        match &self.receiving {
            Some(r) => read_range(
                &path,
                &r.loc,
                offset,
                len.min(r.written.saturating_sub(offset)),
            ),
            None => Err(io_err(&path, "no snapshot reception in progress")),
        }
    }

    fn finish_receive(&mut self) -> Result<SnapshotInfo, StorageError> {
        let path = self.dir.join(RECEIVE_TMP);
        let Some(r) = self.receiving.take() else {
            return Err(io_err(&path, "no snapshot reception in progress"));
        };
        if r.written != r.loc.info.size || r.crc.clone().finalize() != r.loc.info.checksum {
            let _ = fs::remove_file(&path);
            return Err(io_err(
                &path,
                "the received snapshot does not match its size and checksum",
            ));
        }
        r.file.sync_all().map_err(|e| io_err(&path, e))?;
        drop(r.file);
        replace_with(&self.dir, &path)?;
        let info = r.loc.info.clone();
        self.current = Some(r.loc);
        Ok(info)
    }

    /// Reads and checks the whole file again (tools and tests; the node streams by range).
    fn load(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let path = self.dir.join(FILE);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        let loc = verify(&path, f)?;
        let data = read_range(&path, &loc, 0, loc.info.size)?;
        Ok(Some(StoredSnapshot {
            meta: loc.info.meta,
            membership: loc.info.membership,
            data,
        }))
    }

    fn abort_receive(&mut self) -> Result<(), StorageError> {
        if self.receiving.take().is_some() {
            let path = self.dir.join(RECEIVE_TMP);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        Ok(())
    }
}

/// Fails with an I/O error where failpoint `point` fires (see [`failpoints`]).
fn fail_io(point: &str) -> std::io::Result<()> {
    if failpoints::fires(point) {
        Err(failpoints::io_error(point))
    } else {
        Ok(())
    }
}
