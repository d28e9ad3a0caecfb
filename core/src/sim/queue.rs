//! The discrete-event queue: actions ordered by (time, sequence number), so events at the same
//! millisecond run in the order they were scheduled, on every platform.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::fault::Fault;
use super::network::MsgId;
use crate::raft::Millis;

/// Something scheduled to happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A message arrives (unless it was dropped meanwhile).
    Deliver(MsgId),
    /// A node's timer fires, if `generation` is still the node's current one.
    NodeTimer {
        /// The node's index.
        node: usize,
        /// Stale timers (rescheduled since) are skipped.
        generation: u64,
    },
    /// A client's timer fires, if `generation` is still the client's current one.
    ClientTimer {
        /// The client's index.
        client: usize,
        /// Stale timers are skipped.
        generation: u64,
    },
    /// A node's oldest write in flight becomes durable, if `generation` is still the node's
    /// current life.
    WriteDone {
        /// The node's index.
        node: usize,
        /// Writes of an earlier life (before a kill) are skipped.
        generation: u64,
    },
    /// A fault is injected (or healed).
    Fault(Fault),
    /// A membership change or transfer the nemesis is after is tried (again), if it is still
    /// pending.
    Churn {
        /// The pending change's id.
        intent: u64,
    },
}

/// A scheduled action.
#[derive(Clone, Debug)]
pub struct Scheduled {
    /// When.
    pub time: Millis,
    /// Tie-breaker: the order of scheduling.
    pub seq: u64,
    /// What.
    pub action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// A min-queue of scheduled actions.
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `action` at `time`.
    pub fn push(&mut self, time: Millis, action: Action) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Scheduled { time, seq, action }));
    }

    /// Takes the earliest action.
    pub fn pop(&mut self) -> Option<Scheduled> {
        self.heap.pop().map(|Reverse(s)| s)
    }

    /// When the earliest action is due.
    pub fn peek_time(&self) -> Option<Millis> {
        self.heap.peek().map(|Reverse(s)| s.time)
    }

    /// How many actions are queued (stale timers included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The queued faults, earliest first.
    pub fn faults(&self) -> Vec<(Millis, Fault)> {
        let mut v: Vec<&Scheduled> = self
            .heap
            .iter()
            .map(|Reverse(s)| s)
            .filter(|s| matches!(s.action, Action::Fault(_)))
            .collect();
        v.sort();
        v.into_iter()
            .filter_map(|s| match &s.action {
                Action::Fault(f) => Some((s.time, f.clone())),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn orders_by_time_then_by_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(5, Action::Deliver(1));
        q.push(3, Action::Deliver(2));
        q.push(5, Action::Deliver(3));
        q.push(3, Action::Deliver(4));
        q.push(4, Action::Fault(Fault::HealAll));
        assert_eq!(q.peek_time(), Some(3));
        assert_eq!(q.faults(), vec![(4, Fault::HealAll)]);
        let order: Vec<(Millis, Action)> = std::iter::from_fn(|| q.pop())
            .map(|s| (s.time, s.action))
            .collect();
        assert_eq!(
            order,
            vec![
                (3, Action::Deliver(2)),
                (3, Action::Deliver(4)),
                (4, Action::Fault(Fault::HealAll)),
                (5, Action::Deliver(1)),
                (5, Action::Deliver(3)),
            ]
        );
        assert!(q.is_empty());
    }
}
