//! The term and vote in `hardstate`: one frame holding the [`HardState`] as JSON, replaced
//! atomically on every change so a crash never leaves a vote from another term.

use std::path::{Path, PathBuf};

use raftkv_core::raft::{HardState, StableStore, StorageError};

use super::{atomic_write, frame, prepare_dir, read_json_frame, read_optional};

/// The file name inside the data dir.
pub const FILE: &str = "hardstate";
/// A hard state is a term and a node id: anything bigger is a garbage length.
const MAX_LEN: usize = 64 * 1024;

/// A [`StableStore`] in `<dir>/hardstate`. Every `set_hard_state` is durable when it returns
/// (terms and votes change rarely, so no batching), which makes `sync` a no-op.
#[derive(Debug)]
pub struct DiskStableStore {
    dir: PathBuf,
    /// Invariant: equal to the file's content (or the default when there is no file).
    current: HardState,
}

impl DiskStableStore {
    /// Opens the store in `dir`, creating the directory if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        prepare_dir(&dir)?;
        let path = dir.join(FILE);
        let current = match read_optional(&path)? {
            None => HardState::default(),
            Some(bytes) => decode(&path, &bytes)?,
        };
        Ok(DiskStableStore { dir, current })
    }
}

/// Decodes the whole file; the file is only ever replaced atomically, so any damage is
/// corruption and must not be papered over (a lost vote could let this node vote twice in one
/// term).
fn decode(path: &Path, bytes: &[u8]) -> Result<HardState, StorageError> {
    read_json_frame(path, bytes, MAX_LEN)
}

impl StableStore for DiskStableStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        Ok(self.current.clone())
    }

    fn set_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        if *hs == self.current {
            return Ok(());
        }
        let json = serde_json::to_vec(hs).map_err(|e| StorageError::Io(e.to_string()))?;
        atomic_write(&self.dir, FILE, &frame::encode(&json)?)?;
        self.current = hs.clone();
        Ok(())
    }
}
