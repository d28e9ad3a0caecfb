//! The latest snapshot in `snapshot`: a frame holding the [`SnapshotMeta`] as JSON followed by
//! a frame holding the snapshot bytes, replaced atomically by [`SnapshotStore::save`].

use std::path::{Path, PathBuf};

use raftkv_core::raft::{SnapshotMeta, SnapshotStore, StorageError};

use super::{atomic_write, corrupt, frame, prepare_dir, read_optional};

/// The file name inside the data dir.
pub const FILE: &str = "snapshot";
/// The metadata is two integers as JSON: anything bigger is a garbage length.
const MAX_META_LEN: usize = 64 * 1024;

/// A [`SnapshotStore`] in `<dir>/snapshot`. `load` reads the file each time (snapshots are
/// loaded at startup and when a follower needs one, not on a hot path).
#[derive(Debug)]
pub struct DiskSnapshotStore {
    dir: PathBuf,
}

impl DiskSnapshotStore {
    /// Opens the store in `dir`, creating the directory if missing. A damaged snapshot file is
    /// reported now rather than at the first `load`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let store = DiskSnapshotStore { dir };
        store.load()?;
        Ok(store)
    }
}

/// Decodes the whole file; it is only ever replaced atomically, so damage is corruption.
fn decode(path: &Path, bytes: &[u8]) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
    let (meta, used) = frame::decode(bytes, MAX_META_LEN).map_err(|e| corrupt(path, e))?;
    let meta: SnapshotMeta = serde_json::from_slice(meta).map_err(|e| corrupt(path, e))?;
    let rest = bytes.get(used..).unwrap_or_default();
    let (data, used) = frame::decode(rest, usize::MAX).map_err(|e| corrupt(path, e))?;
    if used != rest.len() {
        return Err(corrupt(path, "trailing bytes after the snapshot"));
    }
    Ok((meta, data.to_vec()))
}

impl SnapshotStore for DiskSnapshotStore {
    fn save(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let json = serde_json::to_vec(&meta).map_err(|e| StorageError::Io(e.to_string()))?;
        let mut bytes = frame::encode(&json)?;
        frame::encode_into(&mut bytes, data)?;
        atomic_write(&self.dir, FILE, &bytes)
    }

    fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let path = self.dir.join(FILE);
        match read_optional(&path)? {
            None => Ok(None),
            Some(bytes) => decode(&path, &bytes).map(Some),
        }
    }
}
