//! Results of async-mode writes, kept for a while so a client can fetch them by op id
//! (`GET /ops/{op_id}`).
//!
//! Like the rest of core it reads no clock: every method takes the current time in milliseconds
//! (from any fixed origin the caller chooses), so expiry is tested by passing a later time rather
//! than by sleeping, and the same cache works natively and in wasm.

use std::collections::{BTreeMap, VecDeque};

use crate::{ApplyResult, OpId, OpResult};

/// The default time a finished result stays fetchable, in milliseconds.
pub const DEFAULT_TTL_MS: u64 = 60_000;

#[derive(Debug)]
enum Slot {
    /// Accepted; not applied yet. Pending ops do not expire: their write task always completes.
    Pending,
    Done {
        result: ApplyResult,
        /// In the caller's milliseconds.
        expires_at: u64,
    },
}

/// Async-op results with a TTL counted from when each op finished.
#[derive(Debug)]
pub struct OpCache {
    ttl_ms: u64,
    slots: BTreeMap<OpId, Slot>,
    /// Finished ops in completion order. The TTL is the same for all, so this is also expiry
    /// order and purging only ever pops from the front.
    /// Invariant: expiry times never decrease front to back (callers' time never goes back).
    expiry: VecDeque<(u64, OpId)>,
}

impl OpCache {
    /// An empty cache whose finished results live for `ttl_ms` milliseconds.
    pub fn new(ttl_ms: u64) -> Self {
        OpCache {
            ttl_ms,
            slots: BTreeMap::new(),
            expiry: VecDeque::new(),
        }
    }

    /// Records that `id` was accepted and is not finished yet.
    pub fn insert_pending(&mut self, id: OpId, now: u64) {
        self.purge(now);
        self.slots.insert(id, Slot::Pending);
    }

    /// Stores the result of `id`; it expires the TTL after `now`.
    pub fn complete(&mut self, id: OpId, result: ApplyResult, now: u64) {
        self.purge(now);
        let expires_at = now.saturating_add(self.ttl_ms);
        debug_assert!(
            self.expiry.back().is_none_or(|(t, _)| *t <= expires_at),
            "op cache time went back"
        );
        self.expiry.push_back((expires_at, id.clone()));
        self.slots.insert(id, Slot::Done { result, expires_at });
    }

    /// The state of `id` at `now`, or `None` if it is unknown or its result has expired.
    pub fn get(&self, id: &OpId, now: u64) -> Option<OpResult> {
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
    pub fn purge(&mut self, now: u64) {
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
        OpCache::new(DEFAULT_TTL_MS)
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn id(s: &str) -> OpId {
        OpId(s.to_string())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn pending_then_ready_then_expired() {
        let t0 = 1_000u64;
        let mut c = OpCache::new(60_000);
        assert_eq!(c.get(&id("a"), t0), None);

        c.insert_pending(id("a"), t0);
        let r = c.get(&id("a"), t0).unwrap();
        assert!(!r.ready);
        assert_eq!(r.result, None);
        // A pending op outlives any TTL.
        assert!(c.get(&id("a"), t0 + 3_600_000).is_some());

        let done = t0 + 5_000;
        c.complete(id("a"), ApplyResult::deleted(1), done);
        let r = c.get(&id("a"), done + 59_000).unwrap();
        assert!(r.ready);
        assert_eq!(r.result, Some(ApplyResult::deleted(1)));
        assert_eq!(c.get(&id("a"), done + 60_000), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn purge_forgets_only_expired_results() {
        let t0 = 1_000u64;
        let mut c = OpCache::new(10_000);
        c.complete(id("old"), ApplyResult::ok(), t0);
        c.insert_pending(id("pending"), t0);
        c.complete(id("new"), ApplyResult::ok(), t0 + 5_000);
        assert_eq!(c.len(), 3);

        c.purge(t0 + 10_000);
        assert_eq!(c.len(), 2);
        assert!(c.get(&id("new"), t0 + 10_000).is_some());
        assert!(c.get(&id("pending"), t0 + 10_000).is_some());

        // Inserting purges too, so an idle cache does not grow without bound.
        c.insert_pending(id("x"), t0 + 15_000);
        assert_eq!(c.get(&id("new"), t0 + 15_000), None);
        assert_eq!(c.len(), 2);
    }
}
