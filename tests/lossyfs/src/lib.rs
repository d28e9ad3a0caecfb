//! A FUSE filesystem for tests that keeps written-but-unsynced data apart from synced data
//! and, on a [power cut](LossyFs::power_cut), throws the unsynced part away: what a machine
//! losing power does to a process's files, which `kill -9` alone does not (the page cache
//! survives the process).
//!
//! The filesystem runs in the test's own process, on fuser's background thread, its whole
//! state in memory ([`disk`] has the model). Mounting needs `/dev/fuse` and root (fuser's
//! pure-Rust mount calls mount(2) itself; no libfuse, no `fusermount`).
//!
//! ```no_run
//! let dir = tempfile::tempdir().unwrap();
//! let mut fs = raftkv_lossyfs::LossyFs::mount(dir.path()).unwrap();
//! std::fs::write(dir.path().join("f"), b"lost").unwrap(); // no fsync
//! // ... kill every process using the mount first ...
//! fs.power_cut().unwrap();
//! assert!(!dir.path().join("f").exists());
//! ```

pub mod disk;
mod fuse;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use disk::{CutReport, Disk};
use fuser::{BackgroundSession, Config, MountOption};

/// A mounted lossy filesystem. Dropping it unmounts (lazily, so a process still inside
/// cannot keep the mount alive behind the test).
pub struct LossyFs {
    disk: Arc<Mutex<Disk>>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl std::fmt::Debug for LossyFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossyFs")
            .field("mountpoint", &self.mountpoint)
            .field("mounted", &self.session.is_some())
            .finish()
    }
}

impl LossyFs {
    /// Mounts an empty lossy filesystem on the existing directory `mountpoint`.
    pub fn mount(mountpoint: &Path) -> io::Result<LossyFs> {
        let mut fs = LossyFs {
            disk: Arc::new(Mutex::new(Disk::new())),
            mountpoint: mountpoint.to_path_buf(),
            session: None,
        };
        fs.attach()?;
        Ok(fs)
    }

    fn attach(&mut self) -> io::Result<()> {
        debug_assert!(self.session.is_none(), "mounted twice");
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("lossyfs".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        let fs = fuse::LossyFuse {
            disk: self.disk.clone(),
        };
        let session = fuser::spawn_mount(fs, &self.mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "mounting lossyfs on {} (needs /dev/fuse and root): {e}",
                    self.mountpoint.display()
                ),
            )
        })?;
        self.session = Some(session);
        Ok(())
    }

    /// The directory the filesystem is mounted on.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: unmounts, throws away everything not fsynced (see [`disk`]), and mounts
    /// again at the same place, like a machine rebooting. Every process that had files open
    /// here must have exited first; otherwise the unmount fails (`EBUSY`) and nothing is cut.
    pub fn power_cut(&mut self) -> io::Result<CutReport> {
        if let Some(session) = self.session.take() {
            session.umount_and_join().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "unmounting {} for a power cut (is a process still using it?): {e}",
                        self.mountpoint.display()
                    ),
                )
            })?;
        }
        let report = self.disk().power_cut();
        self.attach()?;
        Ok(report)
    }

    /// Whether a power cut now would lose anything.
    pub fn has_unsynced(&self) -> bool {
        self.disk().has_unsynced()
    }

    /// How many power cuts this filesystem has had.
    pub fn cuts(&self) -> usize {
        self.disk().cuts()
    }

    fn disk(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for LossyFs {
    fn drop(&mut self) {
        // fuser's own unmount is a plain umount(2), which fails while something is inside;
        // a lazy one after it makes sure no mount is left behind either way.
        drop(self.session.take());
        if let Ok(path) = CString::new(self.mountpoint.as_os_str().as_bytes()) {
            // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
            let _ = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
