//! The disk stores against core's in-memory ones (same observable semantics), across reopen,
//! and under damage: a log cut at every byte of its last record, or with any byte of it flipped.

use std::fs;
use std::path::Path;

use raftkv_core::kvraft::{LogEntry, MemLogStore};
use raftkv_core::raft::{
    HardState, LogStore, MemSnapshotStore, MemStableStore, Membership, SnapshotInfo, SnapshotMeta,
    SnapshotStore, StableStore, StorageError, StoredSnapshot,
};
use raftkv_core::types::{Command, NodeId};
use raftkv_native::disk::{self, DiskLogStore, DiskSnapshotStore, DiskStableStore};

use raftkv_core::raft::testing::{check_log_contract, entries, entry};

fn log_file(dir: &Path) -> std::path::PathBuf {
    dir.join(disk::log::FILE)
}

/// Everything a caller can observe of a log, for comparing two logs.
#[derive(Debug, PartialEq)]
struct Observed {
    base: SnapshotMeta,
    last: u64,
    terms: Vec<Result<u64, StorageError>>,
    all: Result<Vec<LogEntry>, StorageError>,
}

fn observe(log: &dyn LogStore<Command>) -> Observed {
    let last = log.last_index();
    let base = log.base();
    Observed {
        base,
        last,
        terms: (0..last + 3).map(|i| log.term_at(i)).collect(),
        all: log.read_range(base.last_included_index + 1, last + 1),
    }
}

#[test]
fn log_contract_mem_and_disk() {
    check_log_contract(&mut MemLogStore::default());
    let dir = tempfile::tempdir().unwrap();
    check_log_contract(&mut DiskLogStore::open(dir.path()).unwrap());
    // And what was left on disk reads back the same.
    let reopened = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(reopened.base().last_included_index, 20);
    assert_eq!(reopened.read_range(21, 23), Ok(entries(21, 23, 5)));
}

/// A tiny deterministic generator, so the differential test needs no extra dependency.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn log_random_ops_match_mem_across_reopen() {
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = MemLogStore::default();
        let mut disk = DiskLogStore::open(dir.path()).unwrap();
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut term = 1;
        for step in 0..300 {
            let last = mem.last_index();
            let base = mem.base().last_included_index;
            match rng.next(10) {
                0..=4 => {
                    if rng.next(4) == 0 {
                        term += 1;
                    }
                    let n = rng.next(4);
                    let batch = entries(last + 1, last + 1 + n, term);
                    assert_eq!(
                        mem.append(&batch),
                        disk.append(&batch),
                        "seed {seed} step {step}"
                    );
                }
                5 | 6 => {
                    let at = base + rng.next(last - base + 3);
                    assert_eq!(
                        mem.delete_from(at),
                        disk.delete_from(at),
                        "seed {seed} step {step}"
                    );
                }
                7 => {
                    let upto = base + rng.next(last - base + 3);
                    let t = mem.term_at(upto).unwrap_or(term);
                    assert_eq!(
                        mem.truncate_prefix(upto, t),
                        disk.truncate_prefix(upto, t),
                        "seed {seed} step {step}"
                    );
                }
                8 => disk.sync().unwrap(),
                _ => {
                    // Reopen: only synced state survives, so sync first (a host always does
                    // before acknowledging anything).
                    disk.sync().unwrap();
                    drop(disk);
                    disk = DiskLogStore::open(dir.path()).unwrap();
                }
            }
            assert_eq!(observe(&mem), observe(&disk), "seed {seed} step {step}");
            let (lo, hi) = (rng.next(last + 3), rng.next(last + 3));
            assert_eq!(
                mem.read_range(lo, hi),
                disk.read_range(lo, hi),
                "seed {seed} step {step}"
            );
        }
    }
}

#[test]
fn log_reopen_after_writes_returns_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let mut log = DiskLogStore::open(dir.path()).unwrap();
        log.append(&entries(1, 11, 1)).unwrap();
        log.sync().unwrap();
        log.delete_from(8).unwrap();
        log.append(&entries(8, 12, 2)).unwrap();
        log.truncate_prefix(4, 1).unwrap();
        log.append(&entries(12, 14, 3)).unwrap();
        log.sync().unwrap();
        observe(&log)
    };
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(observe(&log), before);
    assert_eq!(
        log.base(),
        SnapshotMeta {
            last_included_index: 4,
            last_included_term: 1
        }
    );
    assert_eq!(log.last_index(), 13);
}

#[test]
fn log_delete_from_is_durable_before_new_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    log.append(&entries(1, 10, 1)).unwrap();
    log.sync().unwrap();
    // Delete a suffix that is partly on disk and partly still buffered.
    log.append(&entries(10, 12, 1)).unwrap();
    log.delete_from(5).unwrap();
    drop(log);
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), 4, "the deleted suffix must not come back");
    assert_eq!(log.read_range(1, 5), Ok(entries(1, 5, 1)));
}

/// Entries lo..hi of term `term`, each with a value of `bytes` bytes.
fn big_entries(lo: u64, hi: u64, term: u64, bytes: usize) -> Vec<LogEntry> {
    (lo..hi)
        .map(|i| LogEntry {
            payload: raftkv_core::raft::Payload::Command(Command::put(
                format!("k{i}"),
                "x".repeat(bytes),
            )),
            ..entry(i, term)
        })
        .collect()
}

#[test]
fn log_batches_larger_than_the_write_behind_buffer_round_trip_and_cut() {
    // 8 entries of 300 KB: the store writes them to the file before the sync, so a cut inside
    // the batch must cut the file, and what is synced must read back whole.
    let dir = tempfile::tempdir().unwrap();
    let mut mem = MemLogStore::default();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    for store in [&mut mem as &mut dyn LogStore<Command>, &mut log] {
        store.append(&big_entries(1, 9, 1, 300_000)).unwrap();
        store.delete_from(5).unwrap();
        store.append(&big_entries(5, 7, 2, 300_000)).unwrap();
        store.sync().unwrap();
    }
    assert_eq!(observe(&log), observe(&mem));
    drop(log);
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(observe(&log), observe(&mem));
    assert_eq!(log.last_index(), 6);
}

#[test]
fn log_unsynced_appends_are_not_claimed_durable_but_synced_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    log.append(&entries(1, 4, 1)).unwrap();
    log.sync().unwrap();
    log.append(&entries(4, 6, 1)).unwrap();
    drop(log); // like a crash before sync
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), 3);
    log.append(&entries(4, 6, 2)).unwrap();
    log.sync().unwrap();
    let want = log.read_range(1, 6);
    drop(log);
    assert_eq!(
        DiskLogStore::open(dir.path()).unwrap().read_range(1, 6),
        want
    );
}

#[test]
fn log_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = DiskLogStore::open(dir.path()).unwrap();
    match DiskLogStore::open(dir.path()) {
        Err(StorageError::Io(msg)) => assert!(msg.contains("in use"), "{msg}"),
        other => panic!(
            "a second open must fail, got {:?}",
            other.map(|l| l.last_index())
        ),
    }
    assert!(disk::open_stores(dir.path()).is_err());
    drop(log);
    DiskLogStore::open(dir.path()).unwrap();
}

/// Writes entries 1..=n (synced) and returns the log's bytes and the offset of the last record.
fn write_log(dir: &Path, n: u64) -> (Vec<u8>, usize) {
    let mut log = DiskLogStore::open(dir).unwrap();
    log.append(&entries(1, n, 1)).unwrap();
    log.sync().unwrap();
    let start = fs::metadata(log_file(dir)).unwrap().len() as usize;
    log.append(&entries(n, n + 1, 1)).unwrap();
    log.sync().unwrap();
    (fs::read(log_file(dir)).unwrap(), start)
}

/// Opens a log whose file holds `bytes`; checks that exactly entries 1..n survive and that
/// appending afterwards works and is durable.
fn check_recovers_without_last(bytes: &[u8], n: u64, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(log_file(dir.path()), bytes).unwrap();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), n - 1, "{what}");
    assert_eq!(log.read_range(1, n), Ok(entries(1, n, 1)), "{what}");
    assert_eq!(log.term_at(n), Err(StorageError::Missing(n)), "{what}");
    let repaired = fs::metadata(log_file(dir.path())).unwrap().len() as usize;
    assert!(repaired <= bytes.len(), "{what}");
    log.append(&entries(n, n + 2, 7)).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), n + 1, "{what}");
    assert_eq!(log.read_range(n, n + 2), Ok(entries(n, n + 2, 7)), "{what}");
}

#[test]
fn log_cut_at_every_offset_of_last_record_drops_only_it() {
    let n = 6;
    let dir = tempfile::tempdir().unwrap();
    let (bytes, start) = write_log(dir.path(), n);
    assert!(bytes.len() > start + 8);
    for cut in start..bytes.len() {
        check_recovers_without_last(&bytes[..cut], n, &format!("cut at {cut}"));
    }
    // The uncut file keeps everything.
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), n);
}

#[test]
fn log_flipped_byte_in_last_record_drops_it() {
    let n = 5;
    let dir = tempfile::tempdir().unwrap();
    let (bytes, start) = write_log(dir.path(), n);
    for at in start..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        check_recovers_without_last(&damaged, n, &format!("flip at {at}"));
        let mut damaged = bytes.clone();
        damaged[at] ^= 0xff;
        check_recovers_without_last(&damaged, n, &format!("invert at {at}"));
    }
}

#[test]
fn log_garbage_after_last_record_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, _) = write_log(dir.path(), 3);
    // A zero-filled tail (a filesystem that extended the file but never wrote the data).
    bytes.extend_from_slice(&[0u8; 100]);
    fs::write(log_file(dir.path()), &bytes).unwrap();
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), 3);
}

#[test]
fn log_record_out_of_sequence_is_dropped() {
    // A well-formed record whose index does not continue the log (here: a duplicate of the
    // first entry, which is also at or below nothing valid) ends the log.
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, _) = write_log(dir.path(), 3);
    let json = serde_json::to_vec(&entry(2, 1)).unwrap();
    bytes.extend_from_slice(&disk::frame::encode(&json).unwrap());
    fs::write(log_file(dir.path()), &bytes).unwrap();
    let log = DiskLogStore::open(dir.path()).unwrap();
    assert_eq!(log.last_index(), 3);
    assert_eq!(log.read_range(1, 4), Ok(entries(1, 4, 1)));
}

#[test]
fn log_damaged_header_is_an_error_not_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, _) = write_log(dir.path(), 3);
    bytes[10] ^= 0x20;
    fs::write(log_file(dir.path()), &bytes).unwrap();
    assert!(matches!(
        DiskLogStore::open(dir.path()),
        Err(StorageError::Corrupt(_))
    ));
}

/// A log written before core v2 (entries with `cmd`, a no-op as `null`) still opens, entry for
/// entry: payloads kept the encoding, so upgrading loses nothing.
#[test]
fn log_written_before_generic_payloads_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let header = br#"{"format":"raftkv-log","version":1,"base_index":0,"base_term":0}"#;
    let noop = br#"{"index":1,"term":1,"cmd":null}"#;
    let put =
        br#"{"index":2,"term":1,"cmd":{"client_id":"c","seq":1,"op":"put","key":"a","value":"1"}}"#;
    let mut bytes = disk::frame::encode(header).unwrap();
    for e in [&noop[..], &put[..]] {
        bytes.extend(disk::frame::encode(e).unwrap());
    }
    fs::write(log_file(dir.path()), &bytes).unwrap();
    let log = DiskLogStore::open(dir.path()).unwrap();
    let got = log.read_range(1, 3).unwrap();
    assert_eq!(got[0].payload, raftkv_core::kvraft::Payload::Noop);
    assert_eq!(
        got[1].payload,
        raftkv_core::kvraft::Payload::Command(Command::put("a", "1").with_client("c", 1))
    );
}

fn check_stable_contract(store: &mut dyn StableStore) {
    assert_eq!(store.hard_state(), Ok(HardState::default()));
    let hs = HardState {
        term: 3,
        voted_for: Some(NodeId::from("n2")),
        commit: 7,
    };
    store.set_hard_state(&hs).unwrap();
    store.sync().unwrap();
    assert_eq!(store.hard_state(), Ok(hs));
    assert_eq!(store.current_term(), Ok(3));
    assert_eq!(store.voted_for(), Ok(Some(NodeId::from("n2"))));
}

#[test]
fn hard_state_round_trip_and_atomic_replace() {
    check_stable_contract(&mut MemStableStore::default());
    let dir = tempfile::tempdir().unwrap();
    check_stable_contract(&mut DiskStableStore::open(dir.path()).unwrap());
    let mut store = DiskStableStore::open(dir.path()).unwrap();
    assert_eq!(store.current_term(), Ok(3), "survives reopen");
    let hs = HardState {
        term: 4,
        voted_for: None,
        commit: 0,
    };
    store.set_hard_state(&hs).unwrap();
    assert_eq!(
        DiskStableStore::open(dir.path()).unwrap().hard_state(),
        Ok(hs.clone())
    );

    // A replacement interrupted before its rename leaves a temp file: the old state wins and
    // the leftover is cleaned up.
    let tmp = dir.path().join(format!("{}.tmp", disk::hard_state::FILE));
    fs::write(&tmp, b"half a write").unwrap();
    assert_eq!(
        DiskStableStore::open(dir.path()).unwrap().hard_state(),
        Ok(hs)
    );
    assert!(!tmp.exists());

    // The file itself is never torn (only renamed over), so damage is reported, never reset
    // to a default that would let the node vote twice.
    let path = dir.path().join(disk::hard_state::FILE);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        DiskStableStore::open(dir.path()),
        Err(StorageError::Corrupt(_))
    ));
}

fn stored(meta: SnapshotMeta, membership: Membership, data: &[u8]) -> StoredSnapshot {
    StoredSnapshot {
        meta,
        membership,
        data: data.to_vec(),
    }
}

fn check_snapshot_contract(store: &mut dyn SnapshotStore) {
    assert_eq!(store.load(), Ok(None));
    let meta = SnapshotMeta {
        last_included_index: 10,
        last_included_term: 2,
    };
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let mut conf = Membership::with_voters(["n1".into(), "n2".into()]);
    conf.learners.insert("n3".into());
    conf.addrs.insert("n3".into(), "127.0.0.1:7003".into());
    store.save(meta, &conf, &data).unwrap();
    assert_eq!(store.load(), Ok(Some(stored(meta, conf.clone(), &data))));
    let meta2 = SnapshotMeta {
        last_included_index: 20,
        last_included_term: 3,
    };
    store.save(meta2, &Membership::default(), b"").unwrap();
    assert_eq!(
        store.load(),
        Ok(Some(stored(meta2, Membership::default(), b"")))
    );
    check_chunked_snapshot_contract(store, &conf, &data);
}

/// Range reads of the stored snapshot, and a reception chunk by chunk: nothing changes until
/// it is finished; an aborted or mismatched one leaves the stored snapshot as it was.
fn check_chunked_snapshot_contract(store: &mut dyn SnapshotStore, conf: &Membership, data: &[u8]) {
    let meta = SnapshotMeta {
        last_included_index: 30,
        last_included_term: 4,
    };
    store.save(meta, conf, data).unwrap();
    let info = store.info().unwrap().unwrap();
    assert_eq!(
        info,
        SnapshotInfo {
            meta,
            membership: conf.clone(),
            size: data.len() as u64,
            checksum: crc32fast::hash(data),
        }
    );
    assert_eq!(store.read_chunk(0, 100).unwrap(), &data[..100]);
    assert_eq!(
        store.read_chunk(950, 100).unwrap(),
        &data[950..],
        "short at the end"
    );
    assert_eq!(store.read_chunk(1000, 10).unwrap(), b"");
    assert!(store.read_chunk(1001, 10).is_err(), "past the end");

    // A reception: chunks append; the stored snapshot stays until it is finished.
    let new: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
    let new_info = SnapshotInfo {
        meta: SnapshotMeta {
            last_included_index: 40,
            last_included_term: 5,
        },
        membership: Membership::default(),
        size: new.len() as u64,
        checksum: crc32fast::hash(&new),
    };
    store.begin_receive(&new_info).unwrap();
    store.append_chunk(&new[..300]).unwrap();
    assert_eq!(store.read_received(100, 50).unwrap(), &new[100..150]);
    assert_eq!(
        store.info().unwrap().unwrap(),
        info,
        "unchanged while receiving"
    );
    assert!(
        store.append_chunk(&[0; 401]).is_err(),
        "a chunk past the announced size"
    );
    store.append_chunk(&new[300..]).unwrap();
    assert_eq!(store.finish_receive().unwrap(), new_info);
    assert_eq!(store.info().unwrap().unwrap(), new_info);
    assert_eq!(store.load().unwrap().unwrap().data, new);

    // Aborted, or bytes that do not match the checksum: nothing replaced.
    store.begin_receive(&info).unwrap();
    store.append_chunk(&data[..10]).unwrap();
    store.abort_receive().unwrap();
    assert!(store.finish_receive().is_err());
    let mut bad = info.clone();
    bad.size = 3;
    store.begin_receive(&bad).unwrap();
    store.append_chunk(b"abc").unwrap();
    assert!(store.finish_receive().is_err());
    assert_eq!(store.info().unwrap().unwrap(), new_info);
}

/// A kill in the middle of a reception (or of writing a snapshot) leaves the previous
/// snapshot: reopening discards the temp files.
#[test]
fn a_reception_cut_by_a_restart_leaves_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SnapshotMeta {
        last_included_index: 7,
        last_included_term: 2,
    };
    let mut store = DiskSnapshotStore::open(dir.path()).unwrap();
    store
        .save(meta, &Membership::default(), b"old bytes")
        .unwrap();
    let info = SnapshotInfo {
        meta: SnapshotMeta {
            last_included_index: 9,
            last_included_term: 2,
        },
        membership: Membership::default(),
        size: 9,
        checksum: crc32fast::hash(b"new bytes"),
    };
    store.begin_receive(&info).unwrap();
    store.append_chunk(b"new").unwrap();
    let _writer = store.create(info.meta, &Membership::default()).unwrap();
    // The process dies here (the store is dropped without finishing either).
    drop(store);
    let store = DiskSnapshotStore::open(dir.path()).unwrap();
    assert_eq!(
        store.load().unwrap(),
        Some(stored(meta, Membership::default(), b"old bytes"))
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn snapshot_store_save_load() {
    check_snapshot_contract(&mut MemSnapshotStore::default());
    let dir = tempfile::tempdir().unwrap();
    let mut disk = DiskSnapshotStore::open(dir.path()).unwrap();
    check_snapshot_contract(&mut disk);
    let last = disk.load().unwrap();
    drop(disk);
    let meta = SnapshotMeta {
        last_included_index: 20,
        last_included_term: 3,
    };
    let store = DiskSnapshotStore::open(dir.path()).unwrap();
    assert_eq!(store.load(), Ok(last), "survives reopen");

    let mut store = DiskSnapshotStore::open(dir.path()).unwrap();
    store
        .save(meta, &Membership::default(), b"{\"kv\":{}}")
        .unwrap();
    let path = dir.path().join(disk::snapshot::FILE);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(store.load(), Err(StorageError::Corrupt(_))));
    assert!(matches!(
        DiskSnapshotStore::open(dir.path()),
        Err(StorageError::Corrupt(_))
    ));
}

#[test]
fn data_dir_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    for res in [
        disk::open_stores(&file).err(),
        DiskLogStore::open(&file).err(),
        DiskStableStore::open(&file).err(),
        DiskSnapshotStore::open(&file).err(),
    ] {
        match res {
            Some(StorageError::Io(msg)) => {
                assert!(msg.contains(&file.display().to_string()), "{msg}");
                assert!(msg.contains("not a directory"), "{msg}");
            }
            other => panic!("expected an Io error naming the path, got {other:?}"),
        }
    }
    // A data dir below a file cannot be created either.
    match disk::open_stores(file.join("sub")) {
        Err(StorageError::Io(msg)) => assert!(msg.contains("not-a-dir"), "{msg}"),
        other => panic!("expected an Io error, got {:?}", other.err()),
    }
}

#[test]
fn open_stores_creates_missing_dir_and_survives_reopen() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b/n1");
    {
        let mut stores = disk::open_stores(&dir).unwrap();
        stores
            .stable
            .set_hard_state(&HardState {
                term: 2,
                voted_for: Some("n1".into()),
                commit: 0,
            })
            .unwrap();
        stores.log.append(&entries(1, 4, 2)).unwrap();
        stores.log.sync().unwrap();
        stores
            .snapshot
            .save(
                SnapshotMeta {
                    last_included_index: 1,
                    last_included_term: 2,
                },
                &Membership::default(),
                b"snap",
            )
            .unwrap();
    }
    let stores = disk::open_stores(&dir).unwrap();
    assert_eq!(stores.stable.current_term(), Ok(2));
    assert_eq!(stores.log.read_range(1, 4), Ok(entries(1, 4, 2)));
    assert_eq!(
        stores.snapshot.load(),
        Ok(Some(stored(
            SnapshotMeta {
                last_included_index: 1,
                last_included_term: 2
            },
            Membership::default(),
            b"snap"
        )))
    );
}

/// The store keeps terms and offsets, not entries: a read decodes from the file, so damage to
/// a synced record under an open store is reported as corruption, never papered over by a
/// copy in memory (and never read as data).
#[test]
fn log_reads_decode_the_file_not_a_copy_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    log.append(&entries(1, 5, 1)).unwrap();
    log.sync().unwrap();
    // Entries still pending (not yet written) read back from the buffer.
    log.append(&entries(5, 7, 2)).unwrap();
    assert_eq!(
        log.read_range(1, 7),
        Ok([entries(1, 5, 1), entries(5, 7, 2)].concat())
    );
    let path = log_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    assert!(
        matches!(log.read_range(1, 5), Err(StorageError::Corrupt(_))),
        "a damaged record was read back: {:?}",
        log.read_range(1, 5)
    );
    assert_eq!(log.read_range(5, 7), Ok(entries(5, 7, 2)));
    assert_eq!(log.term_at(4), Ok(1));
}
