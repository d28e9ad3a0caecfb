//! Lease reads: a leader that a quorum acknowledged recently knows nobody else can lead yet,
//! and answers a read from its own state without a confirmation round.

use super::node::Node;
use super::{Index, Millis};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// The read index of a lease read at `now`, if this leader holds a valid lease: the host
    /// answers once `last_applied() >= index`. `None` when there is no lease (not leading, no
    /// entry of this term committed, a transfer pending, the lease expired): read with
    /// [`read_index`](Self::read_index) instead.
    pub fn read_lease(&self, now: Millis) -> Option<Index> {
        let _ = now;
        None
    }

    /// Until when (this node's clock) the lease lasts, if it holds one.
    pub fn lease_until(&self) -> Option<Millis> {
        None
    }
}
