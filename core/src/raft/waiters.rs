//! Who waits for which proposal or read: the bookkeeping every host keeps between accepting a
//! request and answering it, shared so the simulator and kvserver's driver do it the same way.
//! `P` is what answers a proposal (a client in the simulator, a reply channel in kvserver),
//! `R` what answers a read.

use std::collections::BTreeMap;

use super::{Event, Index, Proposal, ReadId, Term};

/// How a proposal ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Applied; the state machine answered this.
    Applied(T),
    /// Replaced by another leader's entry: it never took effect at its index (a retry with the
    /// same client identity is safe).
    Lost,
    /// Covered by a snapshot before it was applied here: whether it took effect is unknown.
    Unknown,
}

/// Proposals and reads waiting for their outcome.
#[derive(Debug)]
pub struct Waiters<P, R> {
    proposals: BTreeMap<(Index, Term), Vec<P>>,
    /// Reads by id, with their read index once the node confirmed them.
    reads: BTreeMap<ReadId, (R, Option<Index>)>,
}

impl<P, R> Default for Waiters<P, R> {
    fn default() -> Self {
        Waiters {
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }
}

impl<P, R> Waiters<P, R> {
    /// `w` waits for proposal `p`.
    pub fn proposed(&mut self, p: Proposal, w: P) {
        self.proposals.entry((p.index, p.term)).or_default().push(w);
    }

    /// `w` waits for read `id`.
    pub fn reading(&mut self, id: ReadId, w: R) {
        self.reads.insert(id, (w, None));
    }

    /// Proposals settled by `ev`, with how they ended. A confirmed read only learns its index
    /// here: it is answered by [`reads_applied`](Self::reads_applied).
    pub fn proposals_settled<T: Clone>(&mut self, ev: &Event<T>) -> Vec<(P, Outcome<T>)> {
        let (key, outcome) = match ev {
            Event::ProposalApplied {
                index,
                term,
                result,
            } => ((*index, *term), Outcome::Applied(result.clone())),
            Event::ProposalLost { index, term } => ((*index, *term), Outcome::Lost),
            Event::ProposalUnknown { index, term } => ((*index, *term), Outcome::Unknown),
            Event::ReadReady { id, index } => {
                if let Some(r) = self.reads.get_mut(id) {
                    r.1 = Some(*index);
                }
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let ws = self.proposals.remove(&key).unwrap_or_default();
        ws.into_iter().map(|w| (w, outcome.clone())).collect()
    }

    /// The read `ev` failed, if it is a `ReadFailed` for a waiting read.
    pub fn read_failed<T>(&mut self, ev: &Event<T>) -> Option<R> {
        match ev {
            Event::ReadFailed { id } => self.reads.remove(id).map(|(w, _)| w),
            _ => None,
        }
    }

    /// The confirmed reads whose read index is applied (`applied`): serve them now.
    pub fn reads_applied(&mut self, applied: Index) -> Vec<R> {
        let ready: Vec<ReadId> = self
            .reads
            .iter()
            .filter(|(_, (_, i))| i.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        ready
            .into_iter()
            .filter_map(|id| self.reads.remove(&id).map(|(w, _)| w))
            .collect()
    }

    /// Every read waiter (a node that stepped down or is gone: they cannot be confirmed here).
    pub fn drain_reads(&mut self) -> Vec<R> {
        std::mem::take(&mut self.reads)
            .into_values()
            .map(|(w, _)| w)
            .collect()
    }

    /// Every proposal waiter (a leader that stepped down or is gone: their outcome is unknown).
    pub fn drain_proposals(&mut self) -> Vec<P> {
        std::mem::take(&mut self.proposals)
            .into_values()
            .flatten()
            .collect()
    }

    /// Whether no read waits.
    pub fn no_reads(&self) -> bool {
        self.reads.is_empty()
    }
}
