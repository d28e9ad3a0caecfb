//! The in-memory stores against the storage traits' contracts. They run natively and, through
//! wasm-bindgen-test, in wasm32 under Node.

use raftkv_core::kvraft::Payload;
use raftkv_core::kvraft::{LogEntry, MemLogStore};
use raftkv_core::raft::{
    HardState, LogStore, MemSnapshotStore, MemStableStore, Membership, SnapshotMeta, SnapshotStore,
    StableStore, StorageError,
};
use raftkv_core::types::{Command, NodeId};
use wasm_bindgen_test::wasm_bindgen_test;

fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index,
        term,
        payload: Payload::Command(Command::put(format!("k{index}"), "v")),
        time: 0,
    }
}

/// A log holding entries 1..=terms.len() with the given terms.
fn log_with(terms: &[u64]) -> MemLogStore {
    let mut log = MemLogStore::default();
    let entries: Vec<LogEntry> = (1..).zip(terms).map(|(i, &t)| entry(i, t)).collect();
    log.append(&entries).unwrap();
    log
}

#[wasm_bindgen_test(unsupported = test)]
fn mem_log_store_append_read_range_term_at() {
    let mut log = MemLogStore::default();
    assert_eq!(log.last_index(), 0);
    assert_eq!(log.term_at(0), Ok(0));
    log.append(&[entry(1, 1), entry(2, 1)]).unwrap();
    log.append(&[entry(3, 2)]).unwrap();
    log.append(&[]).unwrap();
    assert_eq!(log.last_index(), 3);
    assert_eq!(log.term_at(2), Ok(1));
    assert_eq!(log.term_at(3), Ok(2));
    assert_eq!(
        log.read_range(2, 4).unwrap(),
        vec![entry(2, 1), entry(3, 2)]
    );
    assert_eq!(log.read_range(3, 3).unwrap(), vec![]);
    assert_eq!(log.read_range(3, 5), Err(StorageError::Missing(4)));
    // Appends must continue the log, contiguously.
    assert!(matches!(
        log.append(&[entry(5, 2)]),
        Err(StorageError::NotContiguous(_))
    ));
    assert!(matches!(
        log.append(&[entry(4, 2), entry(6, 2)]),
        Err(StorageError::NotContiguous(_))
    ));
    assert_eq!(log.last_index(), 3);
    // Reads are copies: changing one does not change the log.
    let mut copy = log.read_range(1, 2).unwrap();
    copy[0].term = 99;
    assert_eq!(log.term_at(1), Ok(1));
}

#[wasm_bindgen_test(unsupported = test)]
fn mem_log_store_delete_from_truncates_suffix() {
    let mut log = log_with(&[1, 1, 2, 2, 3]);
    log.delete_from(3).unwrap();
    assert_eq!(log.last_index(), 2);
    assert_eq!(log.term_at(3), Err(StorageError::Missing(3)));
    // The log continues from the cut.
    log.append(&[entry(3, 4)]).unwrap();
    assert_eq!(log.term_at(3), Ok(4));
    // Past the end: nothing to delete.
    log.delete_from(10).unwrap();
    assert_eq!(log.last_index(), 3);
    // At or below the base: refused.
    log.truncate_prefix(2, 1).unwrap();
    assert_eq!(log.delete_from(2), Err(StorageError::Compacted(2)));
    assert_eq!(log.last_index(), 3);
}

#[wasm_bindgen_test(unsupported = test)]
fn mem_log_store_term_at_errors_on_missing() {
    let mut log = log_with(&[1, 2]);
    assert_eq!(log.term_at(3), Err(StorageError::Missing(3)));
    assert_eq!(log.term_at(u64::MAX), Err(StorageError::Missing(u64::MAX)));
    log.truncate_prefix(1, 1).unwrap();
    // The base keeps its term; below it is compacted, not a made-up 0.
    assert_eq!(log.term_at(1), Ok(1));
    assert_eq!(log.term_at(0), Err(StorageError::Compacted(0)));
}

#[wasm_bindgen_test(unsupported = test)]
fn mem_stable_store_term_vote() {
    let mut s = MemStableStore::default();
    assert_eq!(s.current_term(), Ok(0));
    assert_eq!(s.voted_for(), Ok(None));
    let hs = HardState {
        term: 5,
        voted_for: Some(NodeId::from("n2")),
        commit: 0,
    };
    s.set_hard_state(&hs).unwrap();
    assert_eq!(s.hard_state(), Ok(hs));
    assert_eq!(s.current_term(), Ok(5));
    assert_eq!(s.voted_for(), Ok(Some(NodeId::from("n2"))));
    s.set_hard_state(&HardState {
        term: 6,
        voted_for: None,
        commit: 0,
    })
    .unwrap();
    assert_eq!(s.voted_for(), Ok(None));
    assert_eq!(s.current_term(), Ok(6));
}

#[wasm_bindgen_test(unsupported = test)]
fn snapshot_store_save_load() {
    let mut s = MemSnapshotStore::default();
    assert_eq!(s.load(), Ok(None));
    let meta = SnapshotMeta {
        last_included_index: 7,
        last_included_term: 2,
    };
    s.save(meta, &Membership::default(), b"first").unwrap();
    assert_eq!(
        s.load().unwrap().map(|x| (x.meta, x.data)),
        Some((meta, b"first".to_vec()))
    );
    // A later save replaces it.
    let meta2 = SnapshotMeta {
        last_included_index: 9,
        last_included_term: 3,
    };
    s.save(meta2, &Membership::default(), b"second").unwrap();
    assert_eq!(
        s.load().unwrap().map(|x| (x.meta, x.data)),
        Some((meta2, b"second".to_vec()))
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn log_store_truncate_prefix() {
    let mut log = log_with(&[1, 1, 2, 2, 3]);
    log.truncate_prefix(3, 2).unwrap();
    assert_eq!(
        log.base(),
        SnapshotMeta {
            last_included_index: 3,
            last_included_term: 2
        }
    );
    assert_eq!(log.last_index(), 5);
    assert_eq!(log.term_at(3), Ok(2));
    assert_eq!(log.term_at(2), Err(StorageError::Compacted(2)));
    assert_eq!(
        log.read_range(4, 6).unwrap(),
        vec![entry(4, 2), entry(5, 3)]
    );
    assert_eq!(log.read_range(3, 5), Err(StorageError::Compacted(3)));
    // An older base is a no-op.
    log.truncate_prefix(2, 1).unwrap();
    assert_eq!(log.base().last_included_index, 3);
    // Past the end: the log is empty, based on the new point, and continues from it.
    log.truncate_prefix(9, 4).unwrap();
    assert_eq!(log.last_index(), 9);
    assert_eq!(log.term_at(9), Ok(4));
    assert_eq!(log.read_range(9, 10), Err(StorageError::Compacted(9)));
    log.append(&[entry(10, 4)]).unwrap();
    assert_eq!(log.last_index(), 10);
}
