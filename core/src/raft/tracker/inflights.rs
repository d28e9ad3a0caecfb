//! The messages in flight to one follower in replicate mode: a window capped by count and by
//! bytes, so a leader streaming to a slow follower stops before it floods the link (etcd-io/raft
//! `tracker/inflights.go`).

use std::collections::VecDeque;

use crate::raft::Index;

/// AppendEntries sent and not yet acknowledged, oldest first.
#[derive(Clone, Debug)]
pub struct Inflights {
    /// (last index the message carried, its entries' bytes), in sending order.
    /// Invariant: indices strictly increase along the queue.
    sent: VecDeque<(Index, u64)>,
    /// The sum of the bytes in `sent`.
    bytes: u64,
    /// The most messages in flight. Invariant: at least 1.
    max_count: usize,
    /// The most bytes in flight; 0 means no byte cap. A single message larger than the cap
    /// may still be in flight alone.
    max_bytes: u64,
}

impl Inflights {
    /// An empty window of at most `max_count` messages (at least 1) and `max_bytes` bytes
    /// (0: no byte cap).
    pub fn new(max_count: usize, max_bytes: u64) -> Self {
        Inflights {
            sent: VecDeque::new(),
            bytes: 0,
            max_count: max_count.max(1),
            max_bytes,
        }
    }

    /// Records a message whose last entry is `last` and whose entries take `bytes`.
    pub fn add(&mut self, last: Index, bytes: u64) {
        debug_assert!(self.max_count >= 1);
        debug_assert!(
            self.sent.back().is_none_or(|(i, _)| *i < last),
            "inflight indices must increase: {last} after {:?}",
            self.sent.back()
        );
        self.sent.push_back((last, bytes));
        self.bytes += bytes;
    }

    /// Forgets every message whose last index is at or below `index` (acknowledged).
    pub fn free_to(&mut self, index: Index) {
        while let Some(&(i, b)) = self.sent.front() {
            if i > index {
                break;
            }
            self.sent.pop_front();
            self.bytes -= b;
        }
    }

    /// Forgets everything (the follower changed state).
    pub fn reset(&mut self) {
        self.sent.clear();
        self.bytes = 0;
    }

    /// Whether no more may be sent now.
    pub fn full(&self) -> bool {
        self.sent.len() >= self.max_count || (self.max_bytes > 0 && self.bytes >= self.max_bytes)
    }

    /// How many messages are in flight.
    pub fn count(&self) -> usize {
        self.sent.len()
    }

    /// How many bytes of entries are in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflights_fill_by_count_and_free_on_acknowledgement() {
        let mut f = Inflights::new(3, 0);
        for i in [10, 20, 30] {
            assert!(!f.full());
            f.add(i, 100);
        }
        assert!(f.full());
        f.free_to(19);
        assert_eq!((f.count(), f.bytes()), (2, 200));
        assert!(!f.full());
        f.free_to(30);
        assert_eq!((f.count(), f.bytes()), (0, 0));
    }

    #[test]
    fn inflights_fill_by_bytes_but_one_large_message_may_fly_alone() {
        let mut f = Inflights::new(100, 1000);
        f.add(1, 600);
        assert!(!f.full());
        f.add(2, 600);
        assert!(f.full(), "1,200 bytes in flight against a 1,000-byte cap");
        f.reset();
        f.add(3, 5000);
        assert!(f.full());
        f.free_to(3);
        assert!(!f.full());
    }
}
