//! The latest snapshot in `snapshot`: a frame holding the [`SnapshotMeta`] and the
//! configuration at its index as JSON, followed by a frame holding the snapshot bytes, replaced
//! atomically by [`SnapshotStore::save`]. Files written before membership changes have no
//! configuration in their first frame and load with an empty one.

use std::path::{Path, PathBuf};

use raftkv_core::raft::{Membership, SnapshotMeta, SnapshotStore, StorageError, StoredSnapshot};
use serde::{Deserialize, Serialize};

use super::{atomic_write, corrupt, frame, prepare_dir, read_optional};

/// The file name inside the data dir.
pub const FILE: &str = "snapshot";
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
fn decode(path: &Path, bytes: &[u8]) -> Result<StoredSnapshot, StorageError> {
    let (meta, used) = frame::decode(bytes, MAX_META_LEN).map_err(|e| corrupt(path, e))?;
    let Header { meta, membership } = serde_json::from_slice(meta).map_err(|e| corrupt(path, e))?;
    let rest = bytes.get(used..).unwrap_or_default();
    let (data, used) = frame::decode(rest, usize::MAX).map_err(|e| corrupt(path, e))?;
    if used != rest.len() {
        return Err(corrupt(path, "trailing bytes after the snapshot"));
    }
    Ok(StoredSnapshot {
        meta,
        membership,
        data: data.to_vec(),
    })
}

impl SnapshotStore for DiskSnapshotStore {
    fn save(
        &mut self,
        meta: SnapshotMeta,
        membership: &Membership,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let header = Header {
            meta,
            membership: membership.clone(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| StorageError::Io(e.to_string()))?;
        let mut bytes = frame::encode(&json)?;
        frame::encode_into(&mut bytes, data)?;
        atomic_write(&self.dir, FILE, &bytes)
    }

    fn load(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let path = self.dir.join(FILE);
        match read_optional(&path)? {
            None => Ok(None),
            Some(bytes) => decode(&path, &bytes).map(Some),
        }
    }
}
