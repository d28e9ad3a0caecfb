//! The disk the filesystem stands for: every file's and directory's current state (what a
//! running process sees) beside its synced state (what survives a power cut).
//!
//! The model, per inode:
//! - a file has current content and synced content; `fsync`/`fdatasync` of the file makes the
//!   current content (and size) the synced one;
//! - a directory has current entries and synced entries; an `fsync` of the directory makes the
//!   current entries (creations, renames, unlinks in it) the synced ones. A new file's entry
//!   does not survive a cut until its parent is fsynced, whatever was done to the file itself
//!   (strict, like ext4 with no ordering between a file's data and its directory).
//!
//! [`Disk::power_cut`] throws away every current state and keeps the synced ones; inodes no
//! longer reachable from the root through synced entries are gone. Attributes other than the
//! size (mode, owner, times) are not modelled: they keep their current values.
//!
//! Not modelled: reordering or partial persistence within the unsynced data (a cut loses all
//! of a file's unsynced writes, never some), the loss of metadata alone, hard links,
//! symlinks, xattrs, and space limits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

use fuser::Errno;

/// An inode number, as the kernel sees it. Never reused, so a stale one is simply unknown.
pub type Ino = u64;

/// The root directory's inode number (FUSE's).
pub const ROOT: Ino = 1;

/// Size of the copy-on-write unit of file content.
pub const PAGE: usize = 4096;

type Page = Arc<[u8; PAGE]>;

/// A file's bytes: its size and its non-zero pages (a missing page reads as zeros, so a
/// 64 MiB `set_len` costs nothing). Pages are shared between the current and synced content
/// until one of them is written.
#[derive(Clone, Debug, Default)]
struct Content {
    size: u64,
    pages: BTreeMap<u64, Page>,
}

impl Content {
    /// Up to `len` bytes from `offset`, stopping at the size.
    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let end = self.size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut pos = offset;
        while pos < end {
            let page = pos / PAGE as u64;
            let in_page = (pos % PAGE as u64) as usize;
            let n = (PAGE - in_page).min((end - pos) as usize);
            if let Some(p) = self.pages.get(&page) {
                let at = (pos - offset) as usize;
                out[at..at + n].copy_from_slice(&p[in_page..in_page + n]);
            }
            pos += n as u64;
        }
        out
    }

    /// Writes `data` at `offset`, growing the size; records the pages it touched in `dirty`.
    fn write(&mut self, offset: u64, data: &[u8], dirty: &mut BTreeSet<u64>) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let page = pos / PAGE as u64;
            let in_page = (pos % PAGE as u64) as usize;
            let n = (PAGE - in_page).min(rest.len());
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| Arc::new([0u8; PAGE]));
            Arc::make_mut(p)[in_page..in_page + n].copy_from_slice(&rest[..n]);
            dirty.insert(page);
            rest = &rest[n..];
            pos += n as u64;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Sets the size; bytes past it are gone (read as zeros if the file grows again).
    fn truncate(&mut self, size: u64, dirty: &mut BTreeSet<u64>) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE as u64);
            let gone: Vec<u64> = self.pages.range(first_gone..).map(|(k, _)| *k).collect();
            for k in gone {
                self.pages.remove(&k);
                dirty.insert(k);
            }
            let in_page = (size % PAGE as u64) as usize;
            if in_page != 0
                && let Some(p) = self.pages.get_mut(&(size / PAGE as u64))
            {
                Arc::make_mut(p)[in_page..].fill(0);
                dirty.insert(size / PAGE as u64);
            }
        }
        self.size = size;
    }
}

/// A regular file.
#[derive(Debug, Default)]
struct FileNode {
    current: Content,
    synced: Content,
    /// Pages where `current` may differ from `synced`.
    dirty: BTreeSet<u64>,
}

impl FileNode {
    fn sync(&mut self) {
        for page in std::mem::take(&mut self.dirty) {
            match self.current.pages.get(&page) {
                Some(p) => self.synced.pages.insert(page, p.clone()),
                None => self.synced.pages.remove(&page),
            };
        }
        self.synced.size = self.current.size;
    }

    /// Whether a cut now would lose something of this file.
    fn unsynced(&self) -> bool {
        !self.dirty.is_empty() || self.current.size != self.synced.size
    }
}

/// A directory: its entries now and as last fsynced.
#[derive(Debug, Default)]
struct DirNode {
    current: BTreeMap<OsString, Ino>,
    synced: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// What kind of inode.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// An inode's attributes as the filesystem reports them.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File or directory.
    pub kind: Kind,
    /// Current size in bytes (a directory: 0).
    pub size: u64,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last access (as set; reads do not update it).
    pub atime: SystemTime,
    /// Last change.
    pub ctime: SystemTime,
}

#[derive(Debug)]
struct Inode {
    node: Node,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    /// Open handles: an unlinked file stays readable while open.
    open: u32,
}

/// What one [`Disk::power_cut`] threw away.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct CutReport {
    /// Files whose content went back to an older synced state.
    pub files_reverted: usize,
    /// Directories whose entries went back to their synced entries.
    pub dirs_reverted: usize,
    /// Inodes that no synced entry reached, now gone.
    pub inodes_lost: usize,
}

/// The whole filesystem state. All operations take `&mut self`; the FUSE layer serialises them.
#[derive(Debug)]
pub struct Disk {
    inodes: HashMap<Ino, Inode>,
    next: Ino,
    /// Every cut so far, for reports.
    cuts: usize,
}

impl Default for Disk {
    fn default() -> Self {
        Self::new()
    }
}

impl Disk {
    /// An empty filesystem: a root directory (mode 0755, owned by root) whose existence is
    /// durable.
    pub fn new() -> Self {
        let now = SystemTime::now();
        let root = Inode {
            node: Node::Dir(DirNode::default()),
            perm: 0o755,
            uid: 0,
            gid: 0,
            atime: now,
            mtime: now,
            ctime: now,
            open: 0,
        };
        Disk {
            inodes: HashMap::from([(ROOT, root)]),
            next: ROOT + 1,
            cuts: 0,
        }
    }

    fn inode(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&DirNode, Errno> {
        match &self.inode(ino)?.node {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirNode, Errno> {
        match &mut self.inode_mut(ino)?.node {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileNode, Errno> {
        match &mut self.inode_mut(ino)?.node {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// The attributes of `ino`.
    pub fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let i = self.inode(ino)?;
        let (kind, size) = match &i.node {
            Node::File(f) => (Kind::File, f.current.size),
            Node::Dir(_) => (Kind::Dir, 0),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: i.perm,
            uid: i.uid,
            gid: i.gid,
            mtime: i.mtime,
            atime: i.atime,
            ctime: i.ctime,
        })
    }

    /// The inode `name` in directory `parent` names now.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.dir(parent)?
            .current
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    /// Creates a file or directory `name` in `parent`. Its entry is not durable until
    /// `parent` is fsynced.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, Errno> {
        if self.dir(parent)?.current.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        let now = SystemTime::now();
        let node = match kind {
            Kind::File => Node::File(FileNode::default()),
            Kind::Dir => Node::Dir(DirNode::default()),
        };
        self.inodes.insert(
            ino,
            Inode {
                node,
                perm,
                uid,
                gid,
                atime: now,
                mtime: now,
                ctime: now,
                open: 0,
            },
        );
        self.dir_mut(parent)?.current.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            i.mtime = now;
            i.ctime = now;
        }
    }

    /// Removes the entry `name` from `parent`: a file (`dir == false`) or an empty directory.
    pub fn remove(&mut self, parent: Ino, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        match (&self.inode(ino)?.node, dir) {
            (Node::Dir(d), true) if !d.current.is_empty() => return Err(Errno::ENOTEMPTY),
            (Node::Dir(_), false) => return Err(Errno::EISDIR),
            (Node::File(_), true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.dir_mut(parent)?.current.remove(name);
        self.touch(parent);
        Ok(())
    }

    /// Renames `parent/name` to `new_parent/new_name`, replacing a file there (or an empty
    /// directory, when a directory is moved), unless `no_replace`.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        self.dir(new_parent)?;
        let moving_dir = matches!(self.inode(ino)?.node, Node::Dir(_));
        if moving_dir && self.is_within(new_parent, ino) {
            return Err(Errno::EINVAL);
        }
        if let Ok(old) = self.lookup(new_parent, new_name) {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(Errno::EEXIST);
            }
            match (&self.inode(old)?.node, moving_dir) {
                (Node::Dir(d), true) if !d.current.is_empty() => return Err(Errno::ENOTEMPTY),
                (Node::Dir(_), false) => return Err(Errno::EISDIR),
                (Node::File(_), true) => return Err(Errno::ENOTDIR),
                _ => {}
            }
        }
        self.dir_mut(parent)?.current.remove(name);
        self.dir_mut(new_parent)?
            .current
            .insert(new_name.to_owned(), ino);
        self.touch(parent);
        self.touch(new_parent);
        Ok(())
    }

    /// Whether `ino` is `ancestor` or below it (through current entries).
    fn is_within(&self, ino: Ino, ancestor: Ino) -> bool {
        let mut stack = vec![ancestor];
        while let Some(d) = stack.pop() {
            if d == ino {
                return true;
            }
            if let Ok(dir) = self.dir(d) {
                stack.extend(dir.current.values().copied());
            }
        }
        false
    }

    /// Up to `len` bytes of file `ino` from `offset`.
    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        match &self.inode(ino)?.node {
            Node::File(f) => Ok(f.current.read(offset, len)),
            Node::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// Writes `data` at `offset` of file `ino` (not durable until the file is fsynced).
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Errno> {
        offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let f = self.file_mut(ino)?;
        f.current.write(offset, data, &mut f.dirty);
        self.touch(ino);
        Ok(())
    }

    /// Sets the size of file `ino` (not durable until the file is fsynced).
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        f.current.truncate(size, &mut f.dirty);
        self.touch(ino);
        Ok(())
    }

    /// Sets the attributes that are given (not part of the durability model).
    pub fn set_meta(
        &mut self,
        ino: Ino,
        perm: Option<u16>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Result<(), Errno> {
        let i = self.inode_mut(ino)?;
        if let Some(p) = perm {
            i.perm = p;
        }
        if let Some(u) = uid {
            i.uid = u;
        }
        if let Some(g) = gid {
            i.gid = g;
        }
        if let Some(t) = atime {
            i.atime = t;
        }
        if let Some(t) = mtime {
            i.mtime = t;
        }
        i.ctime = SystemTime::now();
        Ok(())
    }

    /// `fsync` of `ino`: a file's content, or a directory's entries, become durable.
    pub fn fsync(&mut self, ino: Ino) -> Result<(), Errno> {
        match &mut self.inode_mut(ino)?.node {
            Node::File(f) => f.sync(),
            Node::Dir(d) => d.synced = d.current.clone(),
        }
        // An entry the directory no longer has, synced or not, may have been the last
        // reference to its inode.
        self.collect();
        Ok(())
    }

    /// The entries of directory `ino` now, in name order.
    pub fn entries(&self, ino: Ino) -> Result<Vec<(OsString, Ino, Kind)>, Errno> {
        let dir = self.dir(ino)?;
        Ok(dir
            .current
            .iter()
            .filter_map(|(name, &i)| {
                let kind = match self.inodes.get(&i)?.node {
                    Node::File(_) => Kind::File,
                    Node::Dir(_) => Kind::Dir,
                };
                Some((name.clone(), i, kind))
            })
            .collect())
    }

    /// An open handle of `ino` was made.
    pub fn opened(&mut self, ino: Ino) -> Result<(), Errno> {
        self.inode_mut(ino)?.open += 1;
        Ok(())
    }

    /// An open handle of `ino` was closed.
    pub fn released(&mut self, ino: Ino) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            debug_assert!(i.open > 0, "release of inode {ino} with no open handle");
            i.open = i.open.saturating_sub(1);
        }
        self.collect();
    }

    /// Whether a power cut now would lose anything.
    pub fn has_unsynced(&self) -> bool {
        self.inodes.values().any(|i| match &i.node {
            Node::File(f) => f.unsynced(),
            Node::Dir(d) => d.current != d.synced,
        })
    }

    /// How many power cuts this disk has had.
    pub fn cuts(&self) -> usize {
        self.cuts
    }

    /// A power cut: every file and directory goes back to its synced state, and inodes that
    /// no synced entry reaches are gone. Open handles do not survive a cut (the processes
    /// holding them must be dead already); the caller makes sure of that.
    pub fn power_cut(&mut self) -> CutReport {
        let mut report = CutReport::default();
        for i in self.inodes.values_mut() {
            i.open = 0;
            match &mut i.node {
                Node::File(f) => {
                    if f.unsynced() {
                        report.files_reverted += 1;
                    }
                    f.current = f.synced.clone();
                    f.dirty.clear();
                }
                Node::Dir(d) => {
                    if d.current != d.synced {
                        report.dirs_reverted += 1;
                    }
                    d.current = d.synced.clone();
                }
            }
        }
        let before = self.inodes.len();
        self.collect();
        report.inodes_lost = before - self.inodes.len();
        self.cuts += 1;
        debug_assert!(!self.has_unsynced(), "a cut leaves nothing unsynced");
        report
    }

    /// Drops inodes that neither the current nor the synced tree reaches and nobody has open.
    fn collect(&mut self) {
        let mut live = BTreeSet::new();
        let mut stack = vec![ROOT];
        stack.extend(
            self.inodes
                .iter()
                .filter(|(_, i)| i.open > 0)
                .map(|(&ino, _)| ino),
        );
        while let Some(ino) = stack.pop() {
            if !live.insert(ino) {
                continue;
            }
            if let Some(Inode {
                node: Node::Dir(d), ..
            }) = self.inodes.get(&ino)
            {
                stack.extend(d.current.values().chain(d.synced.values()).copied());
            }
        }
        self.inodes.retain(|ino, _| live.contains(ino));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(d: &mut Disk, parent: Ino, name: &str) -> Ino {
        d.create(parent, OsStr::new(name), Kind::File, 0o644, 0, 0)
            .unwrap()
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let mut d = Disk::new();
        let f = file(&mut d, ROOT, "f");
        d.fsync(ROOT).unwrap();
        d.write(f, 0, b"durable").unwrap();
        d.fsync(f).unwrap();
        d.write(f, 7, b" and not").unwrap();
        d.write(f, 0, b"D").unwrap();
        assert_eq!(d.read(f, 0, 100).unwrap(), b"Durable and not");
        assert!(d.has_unsynced());
        let r = d.power_cut();
        assert_eq!(r.files_reverted, 1);
        assert_eq!(d.read(f, 0, 100).unwrap(), b"durable");
        assert!(!d.has_unsynced());
    }

    #[test]
    fn a_new_file_needs_its_directory_fsynced_to_survive() {
        let mut d = Disk::new();
        let f = file(&mut d, ROOT, "f");
        d.write(f, 0, b"x").unwrap();
        d.fsync(f).unwrap();
        let r = d.power_cut();
        assert_eq!(r.inodes_lost, 1);
        assert_eq!(d.lookup(ROOT, OsStr::new("f")), Err(Errno::ENOENT));
    }

    #[test]
    fn a_rename_without_a_directory_fsync_leaves_the_old_file() {
        let mut d = Disk::new();
        let old = file(&mut d, ROOT, "state");
        d.write(old, 0, b"old").unwrap();
        d.fsync(old).unwrap();
        d.fsync(ROOT).unwrap();
        let tmp = file(&mut d, ROOT, "state.tmp");
        d.write(tmp, 0, b"new").unwrap();
        d.fsync(tmp).unwrap();
        d.rename(
            ROOT,
            OsStr::new("state.tmp"),
            ROOT,
            OsStr::new("state"),
            false,
        )
        .unwrap();
        let now = d.lookup(ROOT, OsStr::new("state")).unwrap();
        assert_eq!(d.read(now, 0, 10).unwrap(), b"new");
        d.power_cut();
        let after = d.lookup(ROOT, OsStr::new("state")).unwrap();
        assert_eq!(d.read(after, 0, 10).unwrap(), b"old");
        assert_eq!(d.lookup(ROOT, OsStr::new("state.tmp")), Err(Errno::ENOENT));
        // And with the fsync, the new content is what survives.
        let tmp = file(&mut d, ROOT, "state.tmp");
        d.write(tmp, 0, b"new").unwrap();
        d.fsync(tmp).unwrap();
        d.rename(
            ROOT,
            OsStr::new("state.tmp"),
            ROOT,
            OsStr::new("state"),
            false,
        )
        .unwrap();
        d.fsync(ROOT).unwrap();
        d.power_cut();
        let after = d.lookup(ROOT, OsStr::new("state")).unwrap();
        assert_eq!(d.read(after, 0, 10).unwrap(), b"new");
    }

    #[test]
    fn an_unlink_without_a_directory_fsync_is_undone() {
        let mut d = Disk::new();
        let f = file(&mut d, ROOT, "f");
        d.write(f, 0, b"kept").unwrap();
        d.fsync(f).unwrap();
        d.fsync(ROOT).unwrap();
        d.remove(ROOT, OsStr::new("f"), false).unwrap();
        d.power_cut();
        let f = d.lookup(ROOT, OsStr::new("f")).unwrap();
        assert_eq!(d.read(f, 0, 10).unwrap(), b"kept");
    }

    #[test]
    fn truncation_and_sparse_growth_follow_fsync() {
        let mut d = Disk::new();
        let f = file(&mut d, ROOT, "seg");
        d.fsync(ROOT).unwrap();
        d.truncate(f, 64 << 20).unwrap();
        d.fsync(f).unwrap();
        d.write(f, 5000, b"rec").unwrap();
        assert_eq!(d.attr(f).unwrap().size, 64 << 20);
        assert_eq!(d.read(f, 4999, 5).unwrap(), b"\0rec\0");
        d.power_cut();
        assert_eq!(d.attr(f).unwrap().size, 64 << 20, "the synced size stays");
        assert_eq!(d.read(f, 4999, 5).unwrap(), b"\0\0\0\0\0");
        d.write(f, 10, b"abcdef").unwrap();
        d.fsync(f).unwrap();
        d.truncate(f, 13).unwrap();
        d.truncate(f, 20).unwrap();
        assert_eq!(d.read(f, 10, 10).unwrap(), b"abc\0\0\0\0\0\0\0");
        d.power_cut();
        assert_eq!(d.read(f, 10, 6).unwrap(), b"abcdef");
    }

    #[test]
    fn a_directory_in_a_new_directory_needs_both_fsynced() {
        let mut d = Disk::new();
        let a = d
            .create(ROOT, OsStr::new("a"), Kind::Dir, 0o755, 0, 0)
            .unwrap();
        let b = d
            .create(a, OsStr::new("b"), Kind::Dir, 0o755, 0, 0)
            .unwrap();
        d.fsync(a).unwrap();
        d.power_cut();
        assert_eq!(d.lookup(ROOT, OsStr::new("a")), Err(Errno::ENOENT));
        assert_eq!(d.attr(b).map(|_| ()), Err(Errno::ENOENT));
        assert!(d.inodes.len() == 1, "only the root is left");
    }

    #[test]
    fn an_open_unlinked_file_stays_readable_until_released() {
        let mut d = Disk::new();
        let f = file(&mut d, ROOT, "f");
        d.opened(f).unwrap();
        d.write(f, 0, b"x").unwrap();
        d.remove(ROOT, OsStr::new("f"), false).unwrap();
        d.fsync(ROOT).unwrap();
        assert_eq!(d.read(f, 0, 1).unwrap(), b"x");
        d.released(f);
        assert_eq!(d.read(f, 0, 1), Err(Errno::ENOENT));
    }
}
