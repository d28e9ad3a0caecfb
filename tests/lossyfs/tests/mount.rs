//! The filesystem through a real mount: what a process's system calls leave behind a power
//! cut. Needs /dev/fuse and root (see the crate doc); fails, never skips, without them.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use raftkv_lossyfs::LossyFs;

fn mounted() -> (tempfile::TempDir, LossyFs) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = LossyFs::mount(dir.path()).expect("mount lossyfs");
    (dir, fs)
}

fn fsync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

fn read(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut out))
        .expect("read");
    out
}

#[test]
fn a_write_without_fsync_is_gone_after_a_power_cut() {
    let (dir, mut fs) = mounted();
    let path = dir.path().join("f");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_all().unwrap();
    fsync_dir(dir.path());
    f.write_all(b" and then not").unwrap();
    drop(f);
    assert_eq!(
        read(&path),
        b"synced and then not",
        "a process sees its writes"
    );
    assert!(fs.has_unsynced());
    let report = fs.power_cut().unwrap();
    assert_eq!(report.files_reverted, 1);
    assert_eq!(read(&path), b"synced");
    assert!(!fs.has_unsynced());
}

#[test]
fn an_fdatasync_keeps_writes_in_place_and_the_new_size() {
    let (dir, mut fs) = mounted();
    let path = dir.path().join("seg");
    let f = File::create(&path).unwrap();
    f.set_len(1 << 20).unwrap();
    f.sync_all().unwrap();
    fsync_dir(dir.path());
    drop(f);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(4090)).unwrap();
    f.write_all(b"record one").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"record two").unwrap();
    drop(f);
    fs.power_cut().unwrap();
    let bytes = read(&path);
    assert_eq!(bytes.len(), 1 << 20);
    assert_eq!(&bytes[4090..4110], b"record one\0\0\0\0\0\0\0\0\0\0");
}

#[test]
fn a_rename_without_a_directory_fsync_leaves_the_old_file() {
    let (dir, mut fs) = mounted();
    let target = dir.path().join("state");
    let tmp = dir.path().join("state.tmp");
    for (content, sync_dir) in [(&b"old"[..], true), (&b"new"[..], false)] {
        let mut f = File::create(&tmp).unwrap();
        f.write_all(content).unwrap();
        f.sync_all().unwrap();
        fs::rename(&tmp, &target).unwrap();
        if sync_dir {
            fsync_dir(dir.path());
        }
    }
    assert_eq!(read(&target), b"new");
    let report = fs.power_cut().unwrap();
    assert_eq!(report.dirs_reverted, 1);
    assert_eq!(read(&target), b"old");
    assert!(
        !tmp.exists(),
        "the temp file was never durable under its own name either"
    );
}

#[test]
fn a_new_file_in_a_new_directory_needs_every_parent_fsynced() {
    let (dir, mut fs) = mounted();
    let sub = dir.path().join("data");
    fs::create_dir(&sub).unwrap();
    let mut f = File::create(sub.join("f")).unwrap();
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fsync_dir(&sub);
    fs.power_cut().unwrap();
    assert!(!sub.exists(), "data/ was never fsynced into the root");

    fs::create_dir(&sub).unwrap();
    fsync_dir(dir.path());
    let mut f = File::create(sub.join("f")).unwrap();
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    drop(f);
    fsync_dir(&sub);
    fs.power_cut().unwrap();
    assert_eq!(read(&sub.join("f")), b"x");
    assert_eq!(fs.cuts(), 2);
}

#[test]
fn a_cut_while_a_file_is_open_here_is_refused_and_cuts_nothing() {
    let (dir, mut fs) = mounted();
    let path = dir.path().join("f");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"unsynced").unwrap();
    let err = fs.power_cut().unwrap_err();
    assert!(err.to_string().contains("still using it"), "{err}");
    assert_eq!(fs.cuts(), 0);
    drop(f);
    // The failed unmount left the filesystem serving.
    assert_eq!(read(&path), b"unsynced");
}
