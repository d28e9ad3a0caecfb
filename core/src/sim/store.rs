//! The simulator's log store: an in-memory log that also journals every change, so the
//! invariant checker can look at exactly the entries that changed instead of rescanning logs.

use std::sync::{Arc, Mutex};

use crate::raft::{Index, LogEntry, LogStore, MemLogStore, SnapshotMeta, StorageError, Term};

/// One change to a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogChange {
    /// Entries were appended after an entry of term `prev_term`.
    Appended {
        /// The term of the entry just before the first appended one (0 at index 0).
        prev_term: Term,
        /// The entries.
        entries: Vec<LogEntry>,
    },
    /// Every entry at or after `index` was removed.
    DeletedFrom {
        /// The first removed index.
        index: Index,
    },
    /// The prefix up to `upto` was compacted.
    Compacted {
        /// The new base index.
        upto: Index,
        /// Its term.
        term: Term,
    },
}

/// A handle on a log's journal, shared between the store (which writes it) and the simulator
/// (which drains it). The node is single-threaded; the mutex only satisfies `LogStore: Send`.
#[derive(Clone, Debug, Default)]
pub struct LogJournal(Arc<Mutex<Vec<LogChange>>>);

impl LogJournal {
    fn push(&self, c: LogChange) {
        // A poisoned lock only means a panic elsewhere; the journal itself is still valid.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    /// Takes every change recorded since the last call, oldest first.
    pub fn drain(&self) -> Vec<LogChange> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A [`MemLogStore`] that journals its changes. Only successful changes are journaled.
#[derive(Debug, Default)]
pub struct ObservedLog {
    inner: MemLogStore,
    journal: LogJournal,
}

impl ObservedLog {
    /// An empty log writing to `journal`.
    pub fn new(journal: LogJournal) -> Self {
        ObservedLog {
            inner: MemLogStore::default(),
            journal,
        }
    }
}

impl LogStore for ObservedLog {
    fn base(&self) -> SnapshotMeta {
        self.inner.base()
    }
    fn last_index(&self) -> Index {
        self.inner.last_index()
    }
    fn term_at(&self, index: Index) -> Result<Term, StorageError> {
        self.inner.term_at(index)
    }
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let prev_term = match entries.first() {
            Some(first) => first
                .index
                .checked_sub(1)
                .map_or(Ok(0), |p| self.inner.term_at(p))
                .unwrap_or(0),
            None => return Ok(()),
        };
        self.inner.append(entries)?;
        self.journal.push(LogChange::Appended {
            prev_term,
            entries: entries.to_vec(),
        });
        Ok(())
    }
    fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.read_range(lo, hi)
    }
    fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
        self.inner.delete_from(index)?;
        self.journal.push(LogChange::DeletedFrom { index });
        Ok(())
    }
    fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
        self.inner.truncate_prefix(upto, term)?;
        self.journal.push(LogChange::Compacted { upto, term });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn e(index: Index, term: Term) -> LogEntry {
        LogEntry {
            index,
            term,
            cmd: None,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn changes_are_journaled_in_order() {
        let j = LogJournal::default();
        let mut log = ObservedLog::new(j.clone());
        log.append(&[e(1, 1), e(2, 1)]).expect("append");
        log.append(&[e(3, 2)]).expect("append");
        assert!(log.append(&[e(9, 2)]).is_err());
        log.delete_from(3).expect("delete");
        log.truncate_prefix(1, 1).expect("compact");
        assert_eq!(
            j.drain(),
            vec![
                LogChange::Appended {
                    prev_term: 0,
                    entries: vec![e(1, 1), e(2, 1)]
                },
                LogChange::Appended {
                    prev_term: 1,
                    entries: vec![e(3, 2)]
                },
                LogChange::DeletedFrom { index: 3 },
                LogChange::Compacted { upto: 1, term: 1 },
            ]
        );
        assert!(j.drain().is_empty());
        assert_eq!(log.last_index(), 2);
    }
}
