//! The node's inbox of peer messages: bounded in messages and in bytes.
//!
//! A count alone does not bound memory: a follower busy installing a large snapshot (its
//! driver blocked for seconds) kept receiving its leader's retried AppendEntries, each
//! carrying hundreds of KB of entries, and 4,096 of them could queue (a 1,000,000-key
//! transfer measured +275 MiB at the receiver, almost all of it decoded appends waiting in
//! here). So every message also holds a share of a byte budget, sized by its wire body, until
//! the driver takes it; a message that does not fit is refused like one into a full queue
//! (503: Raft resends what matters once the node catches up).

use raftkv_core::kvraft::Message;
use raftkv_core::types::NodeId;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::budget::ByteBudget;
use super::{InboxError, RaftInbox};

/// One message in the inbox: who sent it, and its share of the byte budget, given back when
/// the delivery is dropped (when the driver takes the message out).
#[derive(Debug)]
pub struct Delivery {
    from: NodeId,
    msg: Message,
    _budget: OwnedSemaphorePermit,
}

impl Delivery {
    /// The sender and the message; the message's bytes leave the budget.
    pub fn into_parts(self) -> (NodeId, Message) {
        (self.from, self.msg)
    }
}

/// The sending side of an inbox (the HTTP routes hold it).
#[derive(Debug, Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Delivery>,
    budget: ByteBudget,
}

/// An inbox of at most `messages` messages and `bytes` bytes of wire bodies, and its
/// receiving side (the driver's).
pub fn inbox(messages: usize, bytes: usize) -> (Inbox, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let inbox = Inbox {
        tx,
        budget: ByteBudget::new(bytes),
    };
    (inbox, rx)
}

impl RaftInbox for Inbox {
    fn has_room(&self, size: usize) -> bool {
        self.budget.has_room(size) && self.tx.capacity() > 0
    }

    fn deliver(&self, from: NodeId, msg: Message, size: usize) -> Result<(), InboxError> {
        let budget = self.budget.try_take(size).ok_or(InboxError::Full)?;
        self.tx
            .try_send(Delivery {
                from,
                msg,
                _budget: budget,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => InboxError::Full,
                TrySendError::Closed(_) => InboxError::Closed,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::raft::TimeoutNow;

    fn msg() -> Message {
        Message::TimeoutNow(TimeoutNow {
            term: 1,
            leader_id: NodeId::from("n1"),
        })
    }

    #[test]
    fn a_message_past_the_byte_budget_is_refused_until_the_driver_takes_one_out() {
        let (tx, mut rx) = inbox(100, 1000);
        let from = NodeId::from("n1");
        tx.deliver(from.clone(), msg(), 600).unwrap();
        assert!(!tx.has_room(600) && tx.has_room(400));
        assert_eq!(tx.deliver(from.clone(), msg(), 600), Err(InboxError::Full));
        tx.deliver(from.clone(), msg(), 400).unwrap();
        let (sender, _) = rx.try_recv().unwrap().into_parts();
        assert_eq!(sender, from);
        tx.deliver(from.clone(), msg(), 600).unwrap();
    }

    #[test]
    fn a_message_larger_than_the_whole_budget_gets_in_alone() {
        let (tx, mut rx) = inbox(100, 1000);
        let from = NodeId::from("n1");
        tx.deliver(from.clone(), msg(), 5000).unwrap();
        assert_eq!(tx.deliver(from.clone(), msg(), 1), Err(InboxError::Full));
        drop(rx.try_recv().unwrap());
        tx.deliver(from.clone(), msg(), 5000).unwrap();
    }

    #[test]
    fn the_message_count_still_bounds_small_messages() {
        let (tx, _rx) = inbox(2, 1 << 20);
        let from = NodeId::from("n1");
        tx.deliver(from.clone(), msg(), 10).unwrap();
        tx.deliver(from.clone(), msg(), 10).unwrap();
        assert_eq!(tx.deliver(from, msg(), 10), Err(InboxError::Full));
    }

    #[test]
    fn a_closed_inbox_says_closed() {
        let (tx, rx) = inbox(2, 1000);
        drop(rx);
        assert_eq!(
            tx.deliver(NodeId::from("n1"), msg(), 10),
            Err(InboxError::Closed)
        );
    }
}
