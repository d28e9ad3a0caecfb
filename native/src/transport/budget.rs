//! A byte budget for a queue: a message holds a share of it, sized by its bytes, from the
//! moment it is queued until it is taken out, so the queue's memory is bounded by what its
//! messages carry and not only by how many there are. The inbox ([`super::inbox`]) and each
//! peer's send queue ([`super::client`]) use one.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    /// The budget's size. Invariant: `0 < max <= Semaphore::MAX_PERMITS`.
    max: u32,
}

impl ByteBudget {
    /// A budget of `bytes` (at least 1, at most what a semaphore counts).
    pub fn new(bytes: usize) -> Self {
        let max = u32::try_from(bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        debug_assert!(max > 0);
        ByteBudget {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// The share a message of `size` bytes takes: one larger than the whole budget still
    /// gets in, alone, taking all of it.
    fn share(&self, size: usize) -> u32 {
        u32::try_from(size).unwrap_or(u32::MAX).clamp(1, self.max)
    }

    /// Whether a message of `size` bytes would fit now.
    pub fn has_room(&self, size: usize) -> bool {
        self.permits.available_permits() >= self.share(size) as usize
    }

    /// Takes the share of a message of `size` bytes, given back when the permit is dropped;
    /// `None` when it does not fit now.
    pub fn try_take(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits)
            .try_acquire_many_owned(self.share(size))
            .ok()
    }
}
