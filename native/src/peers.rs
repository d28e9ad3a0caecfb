//! Who is where: the address of every member, shared by the transport (which asks before every
//! send), the driver (leader hints in redirects) and `/status`.
//!
//! The table starts from the stored configuration ([`crate::cluster_file`]) and follows the
//! cluster's configuration: when one takes effect here, its members are kept (an address the
//! configuration carries wins over what the table knew), and members that left are dropped, so
//! nothing is sent to them any more. A node that joins learns the existing members' addresses
//! from the nodes named by `--join` ([`crate::join`]). Every change is saved to the data dir, so
//! a restarted node reaches the members it knew without `--peers` or `--join`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{PoisonError, RwLock};

use raftkv_core::NodeId;
use raftkv_core::raft::Membership;

use crate::cluster_file::ClusterStore;
use crate::config::Peer;

/// The address of every member as this node knows it. Cheap to read; share it as an `Arc`.
///
/// Two addresses per member: its peer address (where Raft reaches it: what configurations,
/// `--peers` and the data dir carry) and its client address (where clients and redirects go).
/// A node with a peer listener of its own learns the others' client addresses from their
/// handshakes ([`PeerTable::learn_client_addr`]); they are not saved, since peers say them
/// again on every connection.
#[derive(Debug, Default)]
pub struct PeerTable {
    me: NodeId,
    inner: RwLock<Inner>,
    /// Client addresses as peers told them, this node's own included.
    client_addrs: RwLock<BTreeMap<NodeId, String>>,
    /// Whether peer and client addresses differ (this node has a peer listener); when they do
    /// not, a member's client address is its peer address.
    split: bool,
    /// Where changes are saved (none in tests over in-memory stores).
    store: Option<ClusterStore>,
}

#[derive(Debug, Default)]
struct Inner {
    addrs: BTreeMap<NodeId, String>,
    /// The members of the configuration in force here, once one took effect (a joining node
    /// has none yet and keeps every address it learns).
    members: Option<BTreeSet<NodeId>>,
}

impl PeerTable {
    /// A table of `addrs` for node `me`, saving its changes to `store` if given.
    pub fn new(me: NodeId, addrs: BTreeMap<NodeId, String>, store: Option<ClusterStore>) -> Self {
        PeerTable {
            me,
            inner: RwLock::new(Inner {
                addrs,
                members: None,
            }),
            store,
            client_addrs: RwLock::new(BTreeMap::new()),
            split: false,
        }
    }

    /// The same table for a node whose peers listen apart from their clients, serving clients
    /// itself at `client_addr`.
    pub fn with_client_addr(mut self, client_addr: String) -> Self {
        self.split = true;
        let me = self.me.clone();
        self.learn_client_addr(&me, &client_addr);
        self
    }

    /// Where `id` serves clients, if known.
    pub fn client_addr(&self, id: &NodeId) -> Option<String> {
        let learnt = self
            .client_addrs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        learnt.or_else(|| if self.split { None } else { self.get(id) })
    }

    /// `id` said it serves clients at `addr` (in an authenticated handshake).
    pub fn learn_client_addr(&self, id: &NodeId, addr: &str) {
        self.client_addrs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), addr.to_string());
    }

    /// The address of `id`, if known.
    pub fn get(&self, id: &NodeId) -> Option<String> {
        self.read(|t| t.addrs.get(id).cloned())
    }

    /// Every known address.
    pub fn addrs(&self) -> BTreeMap<NodeId, String> {
        self.read(|t| t.addrs.clone())
    }

    /// Every known member with its peer address, in id order.
    pub fn peers(&self) -> Vec<Peer> {
        self.read(|t| {
            t.addrs
                .iter()
                .map(|(id, addr)| Peer {
                    id: id.clone(),
                    addr: addr.clone(),
                })
                .collect()
        })
    }

    /// A configuration took effect here: keep its members (and this node), with the address
    /// the configuration gives each or else the one known so far, and forget the others.
    /// Returns whether the table changed.
    pub fn apply_membership(&self, m: &Membership) -> bool {
        if m.is_empty() {
            return false;
        }
        let members = m.members();
        let changed = self.write(|t| {
            let mut next = BTreeMap::new();
            for id in members.iter().chain(std::iter::once(&self.me)) {
                if let Some(addr) = m.addrs.get(id).or_else(|| t.addrs.get(id)) {
                    next.insert(id.clone(), addr.clone());
                }
            }
            t.members = Some(members.clone());
            (next != t.addrs).then(|| t.addrs = next)
        });
        changed.is_some()
    }

    /// Addresses learnt from another node (a joining node asking the cluster): adds those of
    /// members it did not know, never overriding one it knows. Returns how many were added.
    pub fn learn(&self, addrs: BTreeMap<NodeId, String>) -> usize {
        self.write(|t| {
            let mut added = 0;
            for (id, addr) in addrs {
                let member = t.members.as_ref().is_none_or(|m| m.contains(&id));
                if id != self.me && member && !t.addrs.contains_key(&id) {
                    t.addrs.insert(id, addr);
                    added += 1;
                }
            }
            (added > 0).then_some(added)
        })
        .unwrap_or(0)
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` under the write lock; when it reports a change, saves the table (still under
    /// the lock, so saves happen in the order of the changes).
    fn write<T>(&self, f: impl FnOnce(&mut Inner) -> Option<T>) -> Option<T> {
        let mut t = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let changed = f(&mut t)?;
        if let Some(store) = &self.store
            && let Err(e) = store.save_addrs(&t.addrs)
        {
            // Addresses are advice, not Raft state: the node runs on, and learns them again
            // from the log or --join after a restart.
            tracing::warn!(error = %e, "cannot save member addresses");
        }
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::from(s)
    }

    fn table(pairs: &[(&str, &str)]) -> PeerTable {
        let addrs = pairs.iter().map(|(i, a)| (id(i), a.to_string())).collect();
        PeerTable::new(id("n1"), addrs, None)
    }

    #[test]
    fn a_configuration_adds_new_members_keeps_known_addresses_and_drops_the_removed() {
        let t = table(&[("n1", "a1"), ("n2", "a2"), ("n3", "a3")]);
        let mut m = Membership::with_voters([id("n1"), id("n2")]);
        m.learners.insert(id("n4"));
        m.addrs.insert(id("n4"), "a4".into());
        assert!(t.apply_membership(&m));
        let want: BTreeMap<_, _> = [("n1", "a1"), ("n2", "a2"), ("n4", "a4")]
            .iter()
            .map(|(i, a)| (id(i), a.to_string()))
            .collect();
        assert_eq!(t.addrs(), want);
        assert_eq!(t.get(&id("n3")), None);
        // The same configuration again changes nothing.
        assert!(!t.apply_membership(&m));
        // An address the configuration carries wins.
        m.addrs.insert(id("n2"), "b2".into());
        assert!(t.apply_membership(&m));
        assert_eq!(t.get(&id("n2")).as_deref(), Some("b2"));
    }

    #[test]
    fn a_removed_node_keeps_its_own_address_and_an_empty_configuration_changes_nothing() {
        let t = table(&[("n1", "a1"), ("n2", "a2"), ("n3", "a3")]);
        assert!(!t.apply_membership(&Membership::default()));
        assert_eq!(t.peers().len(), 3);
        assert!(t.apply_membership(&Membership::with_voters([id("n2")])));
        assert_eq!(t.get(&id("n1")).as_deref(), Some("a1"));
        assert_eq!(t.get(&id("n3")), None);
        assert_eq!(t.peers().len(), 2);
    }

    #[test]
    fn learnt_addresses_fill_gaps_only_and_only_for_members() {
        let t = table(&[("n1", "a1")]);
        let learnt =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(i, a)| (id(i), a.to_string())).collect();
        // Joining: no configuration yet, every address is kept, ours is never replaced.
        assert_eq!(
            t.learn(learnt(&[("n1", "x"), ("n2", "a2"), ("n3", "a3")])),
            2
        );
        assert_eq!(t.get(&id("n1")).as_deref(), Some("a1"));
        assert_eq!(t.learn(learnt(&[("n2", "other")])), 0);
        assert_eq!(t.get(&id("n2")).as_deref(), Some("a2"));
        // Once a configuration is in force, non-members are not learnt.
        t.apply_membership(&Membership::with_voters([id("n1"), id("n2"), id("n5")]));
        assert_eq!(t.learn(learnt(&[("n3", "a3"), ("n5", "a5")])), 1);
        assert_eq!(t.get(&id("n3")), None);
    }
}
