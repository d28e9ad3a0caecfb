//! Results of async-mode writes, kept for a while so a client can fetch them by op id.
//!
//! Every method takes the current time as an argument instead of reading a clock, so expiry is
//! tested by passing a later instant rather than by sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use raftkv_core::{ApplyResult, OpId, OpResult};

/// The default time a finished result stays fetchable.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Slot {
    /// Accepted; not applied yet. Pending ops do not expire: their write task always completes.
    Pending,
    Done {
        result: ApplyResult,
        expires_at: Instant,
    },
}

/// Async-op results with a TTL counted from when each op finished.
#[derive(Debug)]
pub struct OpCache {
    ttl: Duration,
    slots: HashMap<OpId, Slot>,
    /// Finished ops in completion order. The TTL is the same for all, so this is also expiry
    /// order and purging only ever pops from the front.
    expiry: VecDeque<(Instant, OpId)>,
}

impl OpCache {
    /// An empty cache whose finished results live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        OpCache {
            ttl,
            slots: HashMap::new(),
            expiry: VecDeque::new(),
        }
    }

    /// Records that `id` was accepted and is not finished yet.
    pub fn insert_pending(&mut self, id: OpId, now: Instant) {
        self.purge(now);
        self.slots.insert(id, Slot::Pending);
    }

    /// Stores the result of `id`; it expires `ttl` after `now`.
    pub fn complete(&mut self, id: OpId, result: ApplyResult, now: Instant) {
        self.purge(now);
        let expires_at = now + self.ttl;
        self.expiry.push_back((expires_at, id.clone()));
        self.slots.insert(id, Slot::Done { result, expires_at });
    }

    /// The state of `id` at `now`, or `None` if it is unknown or its result has expired.
    pub fn get(&self, id: &OpId, now: Instant) -> Option<OpResult> {
        match self.slots.get(id)? {
            Slot::Pending => Some(OpResult {
                op_id: id.clone(),
                ready: false,
                result: None,
            }),
            Slot::Done { expires_at, .. } if now >= *expires_at => None,
            Slot::Done { result, .. } => Some(OpResult {
                op_id: id.clone(),
                ready: true,
                result: Some(result.clone()),
            }),
        }
    }

    /// How many ops are remembered (pending or finished and not yet purged).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no op is remembered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Forgets every result that has expired at `now`.
    pub fn purge(&mut self, now: Instant) {
        while let Some((at, _)) = self.expiry.front() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.expiry.pop_front() {
                self.slots.remove(&id);
            }
        }
    }
}

impl Default for OpCache {
    fn default() -> Self {
        OpCache::new(DEFAULT_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> OpId {
        OpId(s.to_string())
    }

    #[test]
    fn pending_then_ready_then_expired() {
        let t0 = Instant::now();
        let mut c = OpCache::new(Duration::from_secs(60));
        assert_eq!(c.get(&id("a"), t0), None);

        c.insert_pending(id("a"), t0);
        let r = c.get(&id("a"), t0).unwrap();
        assert!(!r.ready);
        assert_eq!(r.result, None);
        // A pending op outlives any TTL.
        assert!(c.get(&id("a"), t0 + Duration::from_secs(3600)).is_some());

        let done = t0 + Duration::from_secs(5);
        c.complete(id("a"), ApplyResult::deleted(1), done);
        let r = c.get(&id("a"), done + Duration::from_secs(59)).unwrap();
        assert!(r.ready);
        assert_eq!(r.result, Some(ApplyResult::deleted(1)));
        assert_eq!(c.get(&id("a"), done + Duration::from_secs(60)), None);
    }

    #[test]
    fn purge_forgets_only_expired_results() {
        let t0 = Instant::now();
        let mut c = OpCache::new(Duration::from_secs(10));
        c.complete(id("old"), ApplyResult::ok(), t0);
        c.insert_pending(id("pending"), t0);
        c.complete(id("new"), ApplyResult::ok(), t0 + Duration::from_secs(5));
        assert_eq!(c.len(), 3);

        c.purge(t0 + Duration::from_secs(10));
        assert_eq!(c.len(), 2);
        assert!(c.get(&id("new"), t0 + Duration::from_secs(10)).is_some());
        assert!(
            c.get(&id("pending"), t0 + Duration::from_secs(10))
                .is_some()
        );

        // Inserting purges too, so an idle cache does not grow without bound.
        c.insert_pending(id("x"), t0 + Duration::from_secs(15));
        assert_eq!(c.get(&id("new"), t0 + Duration::from_secs(15)), None);
        assert_eq!(c.len(), 2);
    }
}
