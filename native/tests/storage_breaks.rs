//! The disk log's deliberate break (`--features protocol-breaks`): with the mid-log damage
//! check off, a log whose second record is damaged (every sector written) and whose third is
//! good opens with only its first entry, silently dropping two durable ones: exactly what
//! `disk_storage.rs`'s `log_damaged_record_followed_by_a_good_one_is_refused_not_dropped`
//! checks cannot happen. A check that cannot fail proves nothing; this shows it can.

use std::fs;
use std::sync::atomic::Ordering;

use raftkv_core::raft::LogStore;
use raftkv_core::raft::testing::entries;
use raftkv_native::disk::log::{BREAK_CUT_ROTTEN_MIDDLE, DIR, SegmentOptions};
use raftkv_native::disk::{DiskLogStore, frame};

#[test]
fn with_the_mid_log_check_off_a_rotten_record_drops_the_good_ones_after_it() {
    let opts = SegmentOptions { segment_bytes: 512 };
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = DiskLogStore::open_with(dir.path(), opts).unwrap();
        for i in 1..=3 {
            log.append(&entries(i, i + 1, 1)).unwrap();
            log.sync().unwrap();
        }
    }
    let seg = dir.path().join(DIR).join("00000000000000000001.seg");
    let mut bytes = fs::read(&seg).unwrap();
    // Record 2 starts where record 1's frame ends; damage a byte of its payload.
    let (_, first) = frame::decode(&bytes, 1 << 20).unwrap();
    bytes[first + frame::HEADER_LEN + 3] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();

    // Without the break the open is refused (the check in disk_storage.rs)...
    assert!(DiskLogStore::open_with(dir.path(), opts).is_err());
    // ...with it, entries 2 and 3 are gone without a word.
    BREAK_CUT_ROTTEN_MIDDLE.store(true, Ordering::Relaxed);
    let log = DiskLogStore::open_with(dir.path(), opts).unwrap();
    assert_eq!(log.last_index(), 1);
}
