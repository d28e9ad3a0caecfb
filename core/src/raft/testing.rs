//! The contract every [`LogStore`] meets, as a reusable check: the in-memory store runs it in
//! core's tests, the disk store in kvserver's, and any new store (per shard, on another engine)
//! gets it for free. Compiled with the `testing` feature (and in core's own tests).

use super::{LogStore, SnapshotMeta, StorageError};
use crate::kvraft::{LogEntry, Payload};
use crate::types::Command;

/// Entry `index` of `term`; every third one is a no-op, the others a put naming both.
pub fn entry(index: u64, term: u64) -> LogEntry {
    let payload = if index.is_multiple_of(3) {
        Payload::Noop
    } else {
        Payload::Command(Command::put(
            format!("k{index}"),
            format!("v{index}-{term}"),
        ))
    };
    LogEntry {
        index,
        term,
        payload,
        time: 0,
    }
}

/// Entries `lo..hi`, all of `term`.
pub fn entries(lo: u64, hi: u64, term: u64) -> Vec<LogEntry> {
    (lo..hi).map(|i| entry(i, term)).collect()
}

/// The fixed checks of the LogStore contract, run against any implementation, which must be
/// empty. Panics (like an assertion) where the store breaks the contract.
pub fn check_log_contract(log: &mut dyn LogStore<Command>) {
    assert_eq!(log.base(), SnapshotMeta::default());
    assert_eq!(log.last_index(), 0);
    assert_eq!(log.term_at(0), Ok(0));
    assert_eq!(log.term_at(1), Err(StorageError::Missing(1)));
    assert_eq!(log.read_range(1, 1), Ok(vec![]));
    assert_eq!(log.read_range(1, 2), Err(StorageError::Missing(1)));
    log.append(&[]).unwrap();

    log.append(&entries(1, 6, 1)).unwrap();
    log.append(&entries(6, 8, 2)).unwrap();
    log.sync().unwrap();
    assert_eq!(log.last_index(), 7);
    assert_eq!(log.term_at(5), Ok(1));
    assert_eq!(log.term_at(7), Ok(2));
    assert_eq!(log.term_at(8), Err(StorageError::Missing(8)));
    assert_eq!(log.read_range(2, 4), Ok(entries(2, 4, 1)));
    assert_eq!(log.read_range(5, 9), Err(StorageError::Missing(8)));
    assert!(matches!(
        log.append(&[entry(9, 2)]),
        Err(StorageError::NotContiguous(_))
    ));
    assert!(matches!(
        log.append(&[entry(8, 2), entry(10, 2)]),
        Err(StorageError::NotContiguous(_))
    ));
    assert_eq!(log.last_index(), 7, "a rejected append changes nothing");

    // delete_from: a suffix goes; past the end is a no-op.
    log.delete_from(9).unwrap();
    assert_eq!(log.last_index(), 7);
    log.delete_from(6).unwrap();
    assert_eq!(log.last_index(), 5);
    assert_eq!(log.term_at(6), Err(StorageError::Missing(6)));
    log.append(&entries(6, 9, 3)).unwrap();
    assert_eq!(
        log.read_range(5, 9),
        Ok([entries(5, 6, 1), entries(6, 9, 3)].concat())
    );

    // truncate_prefix: the base moves, compacted indices error, the base's term is kept.
    log.truncate_prefix(3, 1).unwrap();
    assert_eq!(
        log.base(),
        SnapshotMeta {
            last_included_index: 3,
            last_included_term: 1
        }
    );
    assert_eq!(log.last_index(), 8);
    assert_eq!(log.term_at(3), Ok(1));
    assert_eq!(log.term_at(2), Err(StorageError::Compacted(2)));
    assert_eq!(log.term_at(0), Err(StorageError::Compacted(0)));
    assert_eq!(log.read_range(3, 5), Err(StorageError::Compacted(3)));
    assert_eq!(log.read_range(4, 6), Ok(entries(4, 6, 1)));
    assert_eq!(log.delete_from(3), Err(StorageError::Compacted(3)));
    log.truncate_prefix(2, 1).unwrap();
    assert_eq!(
        log.base().last_included_index,
        3,
        "truncating below the base is a no-op"
    );

    // Past the end: empty log with that base; appends continue after it.
    log.truncate_prefix(20, 4).unwrap();
    assert_eq!(log.last_index(), 20);
    assert_eq!(log.term_at(20), Ok(4));
    assert_eq!(log.read_range(21, 21), Ok(vec![]));
    log.append(&entries(21, 23, 5)).unwrap();
    log.sync().unwrap();
    assert_eq!(log.read_range(21, 23), Ok(entries(21, 23, 5)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvraft::MemLogStore;

    #[test]
    fn mem_log_store_meets_the_log_store_contract() {
        check_log_contract(&mut MemLogStore::default());
    }
}
