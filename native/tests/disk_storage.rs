//! The disk stores against core's in-memory ones (same observable semantics), across reopen,
//! and under damage: a log cut at every byte of its last record, or with any byte of it flipped.

use std::fs;
use std::path::{Path, PathBuf};

use raftkv_core::kvraft::{LogEntry, MemLogStore};
use raftkv_core::raft::{
    HardState, LogStore, MemSnapshotStore, MemStableStore, Membership, SnapshotInfo, SnapshotMeta,
    SnapshotStore, StableStore, StorageError, StoredSnapshot,
};
use raftkv_core::types::{Command, NodeId};
use raftkv_native::disk::log::SegmentOptions;
use raftkv_native::disk::{self, DiskLogStore, DiskSnapshotStore, DiskStableStore};

use raftkv_core::raft::testing::{check_log_contract, entries, entry};

fn log_dir(dir: &Path) -> PathBuf {
    dir.join(disk::log::DIR)
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
    // Default segments, and tiny ones so that rolls, compactions and cuts cross segments.
    for (seed, opts) in (1..=8u64).flat_map(|s| [(s, SegmentOptions::default()), (s, TINY)]) {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = MemLogStore::default();
        let mut disk = DiskLogStore::open_with(dir.path(), opts).unwrap();
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
                        "seed {seed} {opts:?} step {step}"
                    );
                }
                5 | 6 => {
                    let at = base + rng.next(last - base + 3);
                    assert_eq!(
                        mem.delete_from(at),
                        disk.delete_from(at),
                        "seed {seed} {opts:?} step {step}"
                    );
                }
                7 => {
                    let upto = base + rng.next(last - base + 3);
                    let t = mem.term_at(upto).unwrap_or(term);
                    assert_eq!(
                        mem.truncate_prefix(upto, t),
                        disk.truncate_prefix(upto, t),
                        "seed {seed} {opts:?} step {step}"
                    );
                }
                8 => disk.sync().unwrap(),
                _ => {
                    // Reopen: only synced state survives, so sync first (a host always does
                    // before acknowledging anything).
                    disk.sync().unwrap();
                    drop(disk);
                    disk = DiskLogStore::open_with(dir.path(), opts).unwrap();
                }
            }
            assert_eq!(
                observe(&mem),
                observe(&disk),
                "seed {seed} {opts:?} step {step}"
            );
            let (lo, hi) = (rng.next(last + 3), rng.next(last + 3));
            assert_eq!(
                mem.read_range(lo, hi),
                disk.read_range(lo, hi),
                "seed {seed} {opts:?} step {step}"
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

/// Segments small enough that a few entries fill one.
const TINY: SegmentOptions = SegmentOptions { segment_bytes: 512 };

/// The size of `e`'s record (frame header plus JSON).
fn frame_len(e: &LogEntry) -> usize {
    disk::frame::HEADER_LEN + serde_json::to_vec(e).unwrap().len()
}

/// Where each entry should land: (segment number from 0, offset), by the rule that a record
/// goes to a new segment when it does not fit the rest of the current one.
fn layout(entries: &[LogEntry], segment_bytes: u64) -> Vec<(usize, usize)> {
    let (mut seg, mut pos) = (0, 0);
    entries
        .iter()
        .map(|e| {
            let len = frame_len(e);
            if pos + len > segment_bytes as usize && pos > 0 {
                (seg, pos) = (seg + 1, 0);
            }
            let at = (seg, pos);
            pos += len;
            at
        })
        .collect()
}

/// The segment files in `dir`'s log, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = fs::read_dir(log_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    out.sort();
    out
}

/// The bytes of a segment that hold records (everything before the zeros).
fn records_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

/// Copies a data dir (the log and its lock file) to a new temp dir.
fn copy_data_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    fs::create_dir(log_dir(to.path())).unwrap();
    for f in fs::read_dir(log_dir(from)).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), log_dir(to.path()).join(f.file_name())).unwrap();
    }
    to
}

/// Writes entries 1..=n of term 1 in TINY segments, syncing after each, and returns the last
/// segment's path and the byte range of entry n's record in it.
fn write_log(dir: &Path, n: u64) -> (PathBuf, std::ops::Range<usize>) {
    let mut log = DiskLogStore::open_with(dir, TINY).unwrap();
    for i in 1..=n {
        log.append(&entries(i, i + 1, 1)).unwrap();
        log.sync().unwrap();
    }
    let segs = segments(dir);
    let want = layout(&entries(1, n + 1, 1), TINY.segment_bytes);
    assert_eq!(
        segs.len(),
        want[want.len() - 1].0 + 1,
        "segments as laid out"
    );
    let last = segs[segs.len() - 1].clone();
    let end = records_end(&fs::read(&last).unwrap());
    let start = end - frame_len(&entry(n, 1));
    assert_eq!(start, want[want.len() - 1].1);
    (last, start..end)
}

/// Opens a copy of `dir` whose last segment is replaced by `damage` of it; checks that exactly
/// entries 1..n survive, that appending afterwards works, and that the result reopens.
fn check_recovers_without_last(dir: &Path, seg: &Path, damage: impl Fn(&mut Vec<u8>), n: u64) {
    let copy = copy_data_dir(dir);
    let target = log_dir(copy.path()).join(seg.file_name().unwrap());
    let mut bytes = fs::read(&target).unwrap();
    damage(&mut bytes);
    fs::write(&target, &bytes).unwrap();
    let mut log = DiskLogStore::open_with(copy.path(), TINY).unwrap();
    assert_eq!(log.last_index(), n - 1);
    assert_eq!(log.read_range(1, n), Ok(entries(1, n, 1)));
    log.append(&entries(n, n + 2, 7)).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = DiskLogStore::open_with(copy.path(), TINY).unwrap();
    assert_eq!(log.last_index(), n + 1);
    assert_eq!(
        log.read_range(1, n + 2),
        Ok([entries(1, n, 1), entries(n, n + 2, 7)].concat())
    );
}

/// The number of entries after which entry n is (a) inside the first segment, followed by its
/// preallocated zeros, (b) the first record of the second segment, (c) the second record of
/// the second segment.
fn damage_cases() -> [u64; 3] {
    let lay = layout(&entries(1, 40, 1), TINY.segment_bytes);
    let first_of_second = lay.iter().position(|&(s, _)| s == 1).unwrap() as u64 + 1;
    [2, first_of_second, first_of_second + 1]
}

#[test]
fn log_cut_at_every_offset_of_last_record_drops_only_it() {
    for n in damage_cases() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, rec) = write_log(dir.path(), n);
        for cut in rec.clone() {
            check_recovers_without_last(dir.path(), &seg, |b| b.truncate(cut), n);
        }
        // The uncut log keeps everything.
        let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
        assert_eq!(log.last_index(), n);
    }
}

#[test]
fn log_flipped_or_zeroed_byte_in_last_record_drops_it() {
    for n in damage_cases() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, rec) = write_log(dir.path(), n);
        let bytes = fs::read(&seg).unwrap();
        for at in rec.clone() {
            check_recovers_without_last(dir.path(), &seg, |b| b[at] ^= 0x01, n);
            check_recovers_without_last(dir.path(), &seg, |b| b[at] ^= 0xff, n);
            if bytes[at] != 0 {
                check_recovers_without_last(dir.path(), &seg, |b| b[at] = 0, n);
            }
        }
    }
}

#[test]
fn log_damaged_record_followed_by_a_good_one_is_refused_not_dropped() {
    // Entries 1..=3 in the first segment; entry 2's payload damaged with every sector written:
    // not a torn write (that leaves an unwritten, zero sector or a short file), so entry 3 was
    // durable and may have been acknowledged. Dropping 2 and 3 would lose it silently.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3);
    let seg = segments(dir.path())[0].clone();
    let at = layout(&entries(1, 4, 1), TINY.segment_bytes)[1].1;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[at + 8 + 3] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match DiskLogStore::open_with(dir.path(), TINY) {
        Err(StorageError::Corrupt(msg)) => {
            assert!(
                msg.contains("not a torn write") && msg.contains("entry 3"),
                "{msg}"
            )
        }
        Err(e) => panic!("another error: {e:?}"),
        Ok(log) => panic!("opened with last index {}", log.last_index()),
    }
    assert_eq!(
        fs::read(&seg).unwrap(),
        bytes,
        "a refused open changes nothing"
    );

    // The same record zeroed whole, as a write that never reached the disk leaves it: the log
    // ends before it, as for any torn tail.
    let len = frame_len(&entry(2, 1));
    bytes[at..at + len].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.last_index(), 1);
}

#[test]
fn log_garbage_after_last_record_is_dropped_and_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, rec) = write_log(dir.path(), 2);
    // Garbage in the preallocated tail, a few bytes past the last record: never read, and
    // cleared, so records appended later are not followed by it.
    let mut bytes = fs::read(&seg).unwrap();
    bytes[rec.end + 20..rec.end + 60].fill(0xa5);
    fs::write(&seg, &bytes).unwrap();
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.last_index(), 2);
    assert_eq!(records_end(&fs::read(&seg).unwrap()), rec.end);
    log.append(&entries(3, 4, 2)).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(
        log.read_range(1, 4),
        Ok([entries(1, 3, 1), entries(3, 4, 2)].concat())
    );
}

#[test]
fn log_record_out_of_sequence_is_dropped() {
    // A well-formed record whose index does not continue the log (here: a duplicate of entry
    // 2) ends the log.
    let dir = tempfile::tempdir().unwrap();
    let (seg, rec) = write_log(dir.path(), 3);
    let json = serde_json::to_vec(&entry(2, 1)).unwrap();
    let frame = disk::frame::encode(&json).unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    bytes[rec.end..rec.end + frame.len()].copy_from_slice(&frame);
    fs::write(&seg, &bytes).unwrap();
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.last_index(), 3);
    assert_eq!(log.read_range(1, 4), Ok(entries(1, 4, 1)));
}

#[test]
fn log_damaged_base_file_is_an_error_not_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3);
    let path = log_dir(dir.path()).join(disk::log::BASE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        DiskLogStore::open_with(dir.path(), TINY),
        Err(StorageError::Corrupt(_))
    ));
    // Segments without any base file are not a log this code wrote either.
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        DiskLogStore::open_with(dir.path(), TINY),
        Err(StorageError::Corrupt(_))
    ));
}

#[test]
fn log_segment_file_size_does_not_change_across_append_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open(dir.path()).unwrap();
    let seg = segments(dir.path()).remove(0);
    let len = || fs::metadata(&seg).unwrap().len();
    assert_eq!(
        len(),
        disk::log::DEFAULT_SEGMENT_BYTES,
        "created at full size"
    );
    for i in 1..20 {
        log.append(&entries(i, i + 1, 1)).unwrap();
        log.sync().unwrap();
        assert_eq!(len(), disk::log::DEFAULT_SEGMENT_BYTES, "after entry {i}");
    }
    drop(log);
    // With tiny segments, across rolls: every segment keeps the size it was created at.
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    for i in 1..40 {
        log.append(&entries(i, i + 1, 1)).unwrap();
        log.sync().unwrap();
        for s in segments(dir.path()) {
            assert_eq!(
                fs::metadata(&s).unwrap().len(),
                TINY.segment_bytes,
                "after {i}"
            );
        }
    }
    assert!(segments(dir.path()).len() > 3);
}

#[test]
fn log_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_entries(2, 3, 1, 2000);
    let want = [entries(1, 2, 1), big.clone(), entries(3, 5, 1)].concat();
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    log.append(&want).unwrap();
    log.sync().unwrap();
    let sizes: Vec<u64> = segments(dir.path())
        .iter()
        .map(|s| fs::metadata(s).unwrap().len())
        .collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert_eq!(
        sizes[1],
        frame_len(&big[0]) as u64,
        "sized to fit: {sizes:?}"
    );
    assert_eq!(log.read_range(1, 5), Ok(want.clone()));
    drop(log);
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.read_range(1, 5), Ok(want));
    // And as the first record of an empty log: the empty segment grows to fit it.
    log.truncate_prefix(10, 1).unwrap();
    let big = big_entries(11, 12, 2, 3000);
    log.append(&big).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.read_range(11, 12), Ok(big));
}

#[test]
fn log_compaction_deletes_whole_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    log.append(&entries(1, 61, 1)).unwrap();
    log.sync().unwrap();
    let before = segments(dir.path());
    let lay = layout(&entries(1, 61, 1), TINY.segment_bytes);
    assert_eq!(before.len(), lay[59].0 + 1);
    log.truncate_prefix(30, 1).unwrap();
    let after = segments(dir.path());
    // Exactly the segments whose records all lie at or below 30 are gone.
    let kept_from = lay[30].0 - usize::from(lay[30].1 != 0);
    assert_eq!(after, before[kept_from..], "{kept_from}");
    assert!(after.len() < before.len());
    drop(log);
    let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(
        log.base(),
        SnapshotMeta {
            last_included_index: 30,
            last_included_term: 1
        }
    );
    assert_eq!(log.read_range(30, 31), Err(StorageError::Compacted(30)));
    assert_eq!(log.read_range(31, 61), Ok(entries(31, 61, 1)));
    // Past the end: only the segment appends go to stays, and the log continues after it.
    log.truncate_prefix(100, 2).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    log.append(&entries(101, 104, 3)).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert_eq!(log.base().last_included_index, 100);
    assert_eq!(log.term_at(100), Ok(2));
    assert_eq!(log.read_range(101, 104), Ok(entries(101, 104, 3)));
}

#[test]
fn log_delete_from_then_append_returns_the_new_suffix_across_segments() {
    let lay = layout(&entries(1, 41, 1), TINY.segment_bytes);
    // The first entry of the third segment, and one inside the second.
    let boundary = lay.iter().position(|&(s, _)| s == 2).unwrap() as u64 + 1;
    let inside = lay.iter().position(|&(s, o)| s == 1 && o > 0).unwrap() as u64 + 1;
    for cut in [boundary, inside, 2] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
        log.append(&entries(1, 41, 1)).unwrap();
        log.sync().unwrap();
        log.delete_from(cut).unwrap();
        drop(log); // a crash right after: the old suffix stays gone
        let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
        assert_eq!(log.last_index(), cut - 1, "cut {cut}");
        // A shorter new suffix: nothing of the old one may show behind it.
        log.append(&entries(cut, cut + 2, 2)).unwrap();
        log.sync().unwrap();
        drop(log);
        let mut log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
        let want = [entries(1, cut, 1), entries(cut, cut + 2, 2)].concat();
        assert_eq!(log.last_index(), cut + 1, "cut {cut}");
        assert_eq!(log.read_range(1, cut + 2), Ok(want.clone()));
        // And a longer one, across segment boundaries again.
        log.append(&entries(cut + 2, 50, 3)).unwrap();
        log.sync().unwrap();
        drop(log);
        let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
        assert_eq!(
            log.read_range(1, 50),
            Ok([want, entries(cut + 2, 50, 3)].concat()),
            "cut {cut}"
        );
    }
}

/// Writes `raft.log` in the single-file format of earlier versions: a header frame with the
/// base, then one frame per entry.
fn write_legacy_log(dir: &Path, base: (u64, u64), entries: &[LogEntry], tail: &[u8]) {
    let header = format!(
        r#"{{"format":"raftkv-log","version":1,"base_index":{},"base_term":{}}}"#,
        base.0, base.1
    );
    let mut bytes = disk::frame::encode(header.as_bytes()).unwrap();
    for e in entries {
        bytes.extend(disk::frame::encode(&serde_json::to_vec(e).unwrap()).unwrap());
    }
    bytes.extend_from_slice(tail);
    fs::write(dir.join(disk::log::LEGACY_FILE), &bytes).unwrap();
}

#[test]
fn log_old_single_file_log_is_migrated_into_segments() {
    let dir = tempfile::tempdir().unwrap();
    let want = [entries(5, 30, 2), big_entries(30, 32, 3, 700)].concat();
    // A torn tail, as an old crash may have left it: dropped like the old code did.
    write_legacy_log(dir.path(), (4, 2), &want, &[9, 0, 0, 0, 1, 2]);
    // A migration that died before removing raft.log left segments: they are redone.
    fs::create_dir(log_dir(dir.path())).unwrap();
    fs::write(
        log_dir(dir.path()).join("00000000000000000001.seg"),
        b"junk",
    )
    .unwrap();
    let log = DiskLogStore::open_with(dir.path(), TINY).unwrap();
    assert!(!dir.path().join(disk::log::LEGACY_FILE).exists());
    assert!(segments(dir.path()).len() > 1);
    let check = |log: &DiskLogStore| {
        assert_eq!(
            log.base(),
            SnapshotMeta {
                last_included_index: 4,
                last_included_term: 2
            }
        );
        assert_eq!(log.last_index(), 31);
        assert_eq!(log.read_range(5, 32), Ok(want.clone()));
        assert_eq!(log.term_at(4), Ok(2));
    };
    check(&log);
    drop(log);
    check(&DiskLogStore::open_with(dir.path(), TINY).unwrap());
}

#[test]
fn log_old_single_file_log_with_damaged_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_log(dir.path(), (0, 0), &entries(1, 4, 1), &[]);
    let path = dir.path().join(disk::log::LEGACY_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        DiskLogStore::open(dir.path()),
        Err(StorageError::Corrupt(_))
    ));
    assert!(
        path.exists(),
        "the old log is kept when it cannot be migrated"
    );
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
    fs::write(dir.path().join(disk::log::LEGACY_FILE), &bytes).unwrap();
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
    let mut log = DiskLogStore::open_with(
        dir.path(),
        SegmentOptions {
            segment_bytes: 4096,
        },
    )
    .unwrap();
    log.append(&entries(1, 5, 1)).unwrap();
    log.sync().unwrap();
    // Entries still pending (not yet written) read back from the buffer.
    log.append(&entries(5, 7, 2)).unwrap();
    assert_eq!(
        log.read_range(1, 7),
        Ok([entries(1, 5, 1), entries(5, 7, 2)].concat())
    );
    let path = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&path).unwrap();
    let last = records_end(&bytes) - 3;
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
