//! The simulated network: per-link latency, loss and duplication, directed cuts, and the
//! messages in flight.
//!
//! Reordering needs no switch of its own: every copy draws its own latency, so two messages on
//! one link overtake each other whenever the second draws less.
//!
//! Links between nodes can be cut (one direction at a time, so partitions may be asymmetric).
//! Links between a client and a node are never cut: the simulator's clients stand for users who
//! can still reach a node that the other nodes cannot — exactly the situation in which a stale
//! read from a deposed leader shows up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client::{ClientReply, ClientRequest};
use super::rng::{SimRng, Stream};
use crate::kvraft::Message;
use crate::raft::Millis;

/// A message's id, unique within a run, in send order.
pub type MsgId = u64;

/// One end of a simulated link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// A node, by index (0 is `n1`).
    Node(usize),
    /// A client, by index (0 is `c1`).
    Client(usize),
}

impl Endpoint {
    /// The endpoint's name: `n1`.. for nodes, `c1`.. for clients.
    pub fn name(self) -> String {
        match self {
            Endpoint::Node(i) => node_name(i),
            Endpoint::Client(i) => client_name(i),
        }
    }
}

/// The id of node `i`: "n1" for 0.
pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The index of a node id of the form `n<k>` (k >= 1): 0 for "n1".
pub fn node_index(id: &crate::types::NodeId) -> Option<usize> {
    let k: usize = id.as_str().strip_prefix('n')?.parse().ok()?;
    k.checked_sub(1)
}

/// The id of client `i`: "c1" for 0.
pub fn client_name(i: usize) -> String {
    format!("c{}", i + 1)
}

/// How one directed link behaves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// The least one-way latency, in ms (at least 1: a reply never arrives in the same ms).
    pub latency_min: Millis,
    /// The greatest one-way latency, in ms.
    pub latency_max: Millis,
    /// The probability a message is lost.
    pub loss: f64,
    /// The probability a message is delivered twice (each copy with its own latency).
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency_min: 1,
            latency_max: 10,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// What a message carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A Raft message between nodes.
    Raft(Message),
    /// A client's request to a node.
    Request(ClientRequest),
    /// A node's reply to a client.
    Reply(ClientReply),
}

impl Payload {
    /// A short name of the message type.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Raft(m) => m.kind(),
            Payload::Request(_) => "client_request",
            Payload::Reply(_) => "client_reply",
        }
    }

    /// A one-line human summary, for traces and the playground.
    pub fn summary(&self) -> String {
        match self {
            Payload::Raft(m) => raft_summary(m),
            Payload::Request(r) => r.summary(),
            Payload::Reply(r) => r.summary(),
        }
    }
}

/// A one-line summary of a Raft message (its kind is shown separately).
pub fn raft_summary(m: &Message) -> String {
    match m {
        Message::RequestVote(v) => format!(
            "t{} cand={} last={}/{}",
            v.term, v.candidate_id, v.last_log_index, v.last_log_term
        ),
        Message::RequestVoteResponse(r) => format!(
            "t{} {}",
            r.term,
            if r.vote_granted { "granted" } else { "denied" }
        ),
        Message::AppendEntries(a) => match (a.entries.first(), a.entries.last()) {
            (Some(first), Some(last)) => format!(
                "t{} prev={}/{} entries={}..{} commit={}",
                a.term, a.prev_log_index, a.prev_log_term, first.index, last.index, a.leader_commit
            ),
            _ => format!(
                "t{} prev={}/{} heartbeat commit={}",
                a.term, a.prev_log_index, a.prev_log_term, a.leader_commit
            ),
        },
        Message::AppendEntriesResponse(r) if r.success => {
            format!("t{} ok match={}", r.term, r.match_index)
        }
        Message::AppendEntriesResponse(r) => format!(
            "t{} reject conflict={}/{}",
            r.term,
            r.conflict_index.map_or("-".to_string(), |i| i.to_string()),
            r.conflict_term.map_or("-".to_string(), |t| t.to_string())
        ),
        Message::InstallSnapshot(s) => {
            // "chunk 3/7": which of the snapshot's chunks it is, counted in chunks of its own
            // size (every chunk but the last has the full size; the last says so).
            let len = s.data.len() as u64;
            let size = s.total_size();
            let place = if s.done {
                format!("last chunk, {len} of {size} bytes")
            } else {
                let len = len.max(1);
                format!("chunk {}/{}", s.offset / len + 1, size.div_ceil(len))
            };
            format!(
                "t{} upto={}/{} {place}",
                s.term, s.last_included_index, s.last_included_term
            )
        }
        Message::InstallSnapshotResponse(r) if r.done => {
            format!("t{} upto={} installed", r.term, r.last_included_index)
        }
        Message::InstallSnapshotResponse(r) => {
            format!(
                "t{} upto={} have {}",
                r.term, r.last_included_index, r.offset
            )
        }
        Message::TimeoutNow(t) => format!("t{} from={}", t.term, t.leader_id),
    }
}

/// A message on its way.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight {
    /// Its id.
    pub id: MsgId,
    /// The sender.
    pub from: Endpoint,
    /// The receiver.
    pub to: Endpoint,
    /// When it was sent.
    pub sent_at: Millis,
    /// When it arrives (unless dropped first).
    pub deliver_at: Millis,
    /// The content.
    pub payload: Payload,
    /// Whether this is the network's extra copy of another message.
    pub duplicate_of: Option<MsgId>,
}

/// A message in flight as the playground draws it: plain data, serializable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightView {
    /// Its id.
    pub id: MsgId,
    /// The sender's name.
    pub from: String,
    /// The receiver's name.
    pub to: String,
    /// The message type, e.g. `append_entries`.
    pub kind: String,
    /// When it was sent.
    pub sent_at: Millis,
    /// When it arrives.
    pub deliver_at: Millis,
    /// A one-line summary, e.g. `t3 prev=4/3 entries=5..6 commit=4`.
    pub summary: String,
}

impl InFlight {
    /// The serializable view of this message.
    pub fn view(&self) -> InFlightView {
        InFlightView {
            id: self.id,
            from: self.from.name(),
            to: self.to.name(),
            kind: self.payload.kind().to_string(),
            sent_at: self.sent_at,
            deliver_at: self.deliver_at,
            summary: self.payload.summary(),
        }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The link was cut when it was sent or when it would have arrived.
    Partitioned,
    /// The network lost it (the link's loss probability).
    Lost,
    /// The receiver was down when it arrived.
    NodeDown,
    /// It was in flight to a node that was killed.
    Killed,
    /// Its receiver does not exist in the simulation (a configuration named a node nobody
    /// started).
    UnknownNode,
    /// A message filter set by hand matched it (see [`MsgFilter`]).
    Filtered,
}

impl DropReason {
    /// The reason's name in traces.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Partitioned => "partitioned",
            DropReason::Lost => "lost",
            DropReason::NodeDown => "node_down",
            DropReason::Killed => "killed",
            DropReason::UnknownNode => "unknown_node",
            DropReason::Filtered => "filtered",
        }
    }
}

/// The network's verdict on one send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Not delivered.
    Drop(DropReason),
    /// Delivered after `latency` ms, and a second copy after `duplicate` ms if set.
    Deliver {
        /// The latency of the message.
        latency: Millis,
        /// The latency of a duplicate copy, if the network makes one.
        duplicate: Option<Millis>,
    },
}

/// Every kind of node-to-node message, as [`Payload::kind`] names it.
pub const RAFT_KINDS: [&str; 9] = [
    "pre_vote",
    "pre_vote_response",
    "request_vote",
    "request_vote_response",
    "append_entries",
    "append_entries_response",
    "install_snapshot",
    "install_snapshot_response",
    "timeout_now",
];

/// Drops every node-to-node message of one kind, from one node or any, to one node or any:
/// "drop every RequestVote from n2". Client messages are never filtered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MsgFilter {
    /// The message kind, one of [`RAFT_KINDS`].
    pub kind: String,
    /// The sender's index, or any node.
    pub from: Option<usize>,
    /// The receiver's index, or any node.
    pub to: Option<usize>,
}

impl MsgFilter {
    /// Whether this filter drops a message of `kind` from `from` to `to`.
    pub fn matches(&self, from: Endpoint, to: Endpoint, kind: &str) -> bool {
        let (Endpoint::Node(a), Endpoint::Node(b)) = (from, to) else {
            return false;
        };
        self.kind == kind && self.from.is_none_or(|f| f == a) && self.to.is_none_or(|t| t == b)
    }
}

impl std::fmt::Display for MsgFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = |e: Option<usize>| e.map_or("*".to_string(), node_name);
        write!(f, "{} {}->{}", self.kind, end(self.from), end(self.to))
    }
}

/// Links, cuts and messages in flight.
#[derive(Clone, Debug)]
pub struct Network {
    nodes: usize,
    /// Directed node links, row-major: `links[from * nodes + to]`.
    links: Vec<LinkConfig>,
    /// Directed cuts, same layout as `links`.
    cut: Vec<bool>,
    /// How client↔node links behave (both directions).
    client_link: LinkConfig,
    rng: SimRng,
    in_flight: BTreeMap<MsgId, InFlight>,
    next_id: MsgId,
    /// Message filters set by hand, in the order set.
    filters: Vec<MsgFilter>,
}

impl Network {
    /// A network of `nodes` nodes whose node links all behave as `node_link` and whose client
    /// links behave as `client_link`, drawing from `seed`'s network stream.
    pub fn new(nodes: usize, node_link: LinkConfig, client_link: LinkConfig, seed: u64) -> Self {
        Network {
            nodes,
            links: vec![node_link; nodes * nodes],
            cut: vec![false; nodes * nodes],
            client_link,
            rng: SimRng::new(seed, Stream::Network),
            in_flight: BTreeMap::new(),
            next_id: 1,
            filters: Vec::new(),
        }
    }

    /// Adds a node (index `nodes()`, before the call) whose links behave as `link`; links of
    /// the others keep their settings and cuts.
    pub fn add_node(&mut self, link: LinkConfig) {
        let (old, new) = (self.nodes, self.nodes + 1);
        let mut links = vec![link; new * new];
        let mut cut = vec![false; new * new];
        for a in 0..old {
            for b in 0..old {
                links[a * new + b] = self.links[a * old + b];
                cut[a * new + b] = self.cut[a * old + b];
            }
        }
        self.links = links;
        self.cut = cut;
        self.nodes = new;
    }

    fn slot(&self, from: usize, to: usize) -> Option<usize> {
        (from < self.nodes && to < self.nodes).then_some(from * self.nodes + to)
    }

    /// Cuts the directed link `from -> to` (messages already on it are dropped when they arrive).
    pub fn cut(&mut self, from: usize, to: usize) {
        if let Some(s) = self.slot(from, to) {
            self.cut[s] = from != to;
        }
    }

    /// Restores the directed link `from -> to`.
    pub fn heal(&mut self, from: usize, to: usize) {
        if let Some(s) = self.slot(from, to) {
            self.cut[s] = false;
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&mut self, a: usize, b: usize) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Cuts every link into and out of `node`.
    pub fn isolate(&mut self, node: usize) {
        for other in 0..self.nodes {
            self.cut_both(node, other);
        }
    }

    /// Splits the nodes into groups: links between different groups are cut, links inside a
    /// group are restored. Nodes in no group form one more group together.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        let group_of = |n: usize| groups.iter().position(|g| g.contains(&n));
        for a in 0..self.nodes {
            for b in 0..self.nodes {
                if group_of(a) == group_of(b) {
                    self.heal(a, b);
                } else {
                    self.cut(a, b);
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal_all(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = false);
    }

    /// Whether the directed link between two endpoints is cut (client links never are).
    pub fn is_cut(&self, from: Endpoint, to: Endpoint) -> bool {
        match (from, to) {
            (Endpoint::Node(a), Endpoint::Node(b)) => self.slot(a, b).is_some_and(|s| self.cut[s]),
            _ => false,
        }
    }

    /// Every cut directed link, as (from, to) node indices, in order.
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let n = self.nodes;
        (0..n * n)
            .filter(|s| self.cut[*s])
            .map(|s| (s / n, s % n))
            .collect()
    }

    /// Starts dropping the messages `f` matches (nothing if it is set already).
    pub fn add_filter(&mut self, f: MsgFilter) {
        if !self.filters.contains(&f) {
            self.filters.push(f);
        }
    }

    /// Stops filter `f` (nothing if it is not set).
    pub fn remove_filter(&mut self, f: &MsgFilter) {
        self.filters.retain(|x| x != f);
    }

    /// The filters set, in the order set.
    pub fn filters(&self) -> &[MsgFilter] {
        &self.filters
    }

    /// Whether a filter drops a message of `kind` from `from` to `to`.
    pub fn filtered(&self, from: Endpoint, to: Endpoint, kind: &str) -> bool {
        self.filters.iter().any(|f| f.matches(from, to, kind))
    }

    /// The behaviour of the directed link between two endpoints.
    pub fn link(&self, from: Endpoint, to: Endpoint) -> LinkConfig {
        match (from, to) {
            (Endpoint::Node(a), Endpoint::Node(b)) => {
                self.slot(a, b).map_or(self.client_link, |s| self.links[s])
            }
            _ => self.client_link,
        }
    }

    /// Sets the behaviour of the directed node link `from -> to`.
    pub fn set_link(&mut self, from: usize, to: usize, cfg: LinkConfig) {
        if let Some(s) = self.slot(from, to) {
            self.links[s] = cfg;
        }
    }

    /// Sets the behaviour of every node link.
    pub fn set_all_links(&mut self, cfg: LinkConfig) {
        self.links.iter_mut().for_each(|l| *l = cfg);
    }

    /// Changes every node link with `f`.
    pub fn update_all_links(&mut self, mut f: impl FnMut(&mut LinkConfig)) {
        self.links.iter_mut().for_each(&mut f);
    }

    /// Sets the behaviour of client links.
    pub fn set_client_link(&mut self, cfg: LinkConfig) {
        self.client_link = cfg;
    }

    /// Decides the fate of one message from `from` to `to`. Always makes the same number of
    /// draws, so changing a link's loss or latency does not shift the draws of later messages.
    pub fn route(&mut self, from: Endpoint, to: Endpoint) -> Route {
        let link = self.link(from, to);
        let lost = self.rng.chance(link.loss);
        let dup = self.rng.chance(link.duplicate);
        let lat_min = link.latency_min.max(1);
        let lat_max = link.latency_max.max(lat_min);
        let latency = self.rng.range(lat_min, lat_max);
        let dup_latency = self.rng.range(lat_min, lat_max);
        if self.is_cut(from, to) {
            Route::Drop(DropReason::Partitioned)
        } else if lost {
            Route::Drop(DropReason::Lost)
        } else {
            Route::Deliver {
                latency,
                duplicate: dup.then_some(dup_latency),
            }
        }
    }

    /// A fresh message id.
    pub fn next_id(&mut self) -> MsgId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Puts a message in flight.
    pub fn launch(&mut self, msg: InFlight) {
        self.in_flight.insert(msg.id, msg);
    }

    /// Takes a message out of flight (to deliver or drop it).
    pub fn land(&mut self, id: MsgId) -> Option<InFlight> {
        self.in_flight.remove(&id)
    }

    /// The message `id`, if it is in flight.
    pub fn get(&self, id: MsgId) -> Option<&InFlight> {
        self.in_flight.get(&id)
    }

    /// Pushes the delivery of message `id` back by `by` ms; returns its new delivery time, or
    /// `None` if it is not in flight. (The caller schedules the new delivery.)
    pub fn delay(&mut self, id: MsgId, by: Millis) -> Option<Millis> {
        let m = self.in_flight.get_mut(&id)?;
        m.deliver_at = m.deliver_at.saturating_add(by);
        Some(m.deliver_at)
    }

    /// Removes every message in flight to `to`, in id order.
    pub fn drop_to(&mut self, to: Endpoint) -> Vec<InFlight> {
        let ids: Vec<MsgId> = self
            .in_flight
            .values()
            .filter(|m| m.to == to)
            .map(|m| m.id)
            .collect();
        ids.into_iter()
            .filter_map(|id| self.in_flight.remove(&id))
            .collect()
    }

    /// The messages in flight, in id order.
    pub fn in_flight(&self) -> impl Iterator<Item = &InFlight> {
        self.in_flight.values()
    }

    /// How many messages are in flight.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn net(n: usize) -> Network {
        Network::new(n, LinkConfig::default(), LinkConfig::default(), 5)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn one_way_cut_blocks_one_direction_only() {
        let mut net = net(3);
        net.cut(0, 1);
        assert_eq!(
            net.route(Endpoint::Node(0), Endpoint::Node(1)),
            Route::Drop(DropReason::Partitioned)
        );
        assert!(matches!(
            net.route(Endpoint::Node(1), Endpoint::Node(0)),
            Route::Deliver { .. }
        ));
        assert_eq!(net.cuts(), vec![(0, 1)]);
        net.heal(0, 1);
        assert!(net.cuts().is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn isolate_and_partition_cut_the_right_links() {
        let mut net = net(3);
        net.isolate(2);
        assert_eq!(net.cuts(), vec![(0, 2), (1, 2), (2, 0), (2, 1)]);
        // Clients still reach an isolated node.
        assert!(!net.is_cut(Endpoint::Client(0), Endpoint::Node(2)));
        net.partition(&[vec![0], vec![1, 2]]);
        assert_eq!(net.cuts(), vec![(0, 1), (0, 2), (1, 0), (2, 0)]);
        net.heal_all();
        assert!(net.cuts().is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn latency_loss_and_duplication_follow_the_link() {
        let mut net = net(2);
        net.set_link(
            0,
            1,
            LinkConfig {
                latency_min: 20,
                latency_max: 30,
                loss: 0.0,
                duplicate: 1.0,
            },
        );
        for _ in 0..100 {
            match net.route(Endpoint::Node(0), Endpoint::Node(1)) {
                Route::Deliver {
                    latency,
                    duplicate: Some(d),
                } => {
                    assert!((20..=30).contains(&latency));
                    assert!((20..=30).contains(&d));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        net.set_all_links(LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        });
        assert_eq!(
            net.route(Endpoint::Node(1), Endpoint::Node(0)),
            Route::Drop(DropReason::Lost)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn random_latency_reorders_messages() {
        let mut net = net(2);
        let lat: Vec<Millis> = (0..50)
            .map(|_| match net.route(Endpoint::Node(0), Endpoint::Node(1)) {
                Route::Deliver { latency, .. } => latency,
                Route::Drop(r) => panic!("dropped: {r:?}"),
            })
            .collect();
        // Message i+1 sent 1 ms after message i overtakes it when it draws 2+ ms less.
        assert!(lat.windows(2).any(|w| w[1] + 1 < w[0]), "{lat:?}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn route_draw_count_does_not_depend_on_loss() {
        // Two networks with the same seed: one drops a message on a lossy link; afterwards their
        // draws on another link must agree.
        let mut a = net(2);
        let mut b = net(2);
        b.set_link(
            0,
            1,
            LinkConfig {
                loss: 1.0,
                ..LinkConfig::default()
            },
        );
        let _ = a.route(Endpoint::Node(0), Endpoint::Node(1));
        assert_eq!(
            b.route(Endpoint::Node(0), Endpoint::Node(1)),
            Route::Drop(DropReason::Lost)
        );
        assert_eq!(
            a.route(Endpoint::Node(1), Endpoint::Node(0)),
            b.route(Endpoint::Node(1), Endpoint::Node(0))
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn in_flight_messages_are_inspectable_and_dropped_on_kill() {
        let mut net = net(2);
        for to in [1, 0, 1] {
            let id = net.next_id();
            net.launch(InFlight {
                id,
                from: Endpoint::Node(1 - to),
                to: Endpoint::Node(to),
                sent_at: 0,
                deliver_at: 5,
                payload: Payload::Raft(Message::RequestVoteResponse(
                    crate::raft::RequestVoteResponse {
                        term: 2,
                        vote_granted: true,
                        pre_vote: false,
                        commit: (0, 0),
                    },
                )),
                duplicate_of: None,
            });
        }
        let views: Vec<InFlightView> = net.in_flight().map(InFlight::view).collect();
        assert_eq!(views.len(), 3);
        assert_eq!(views[0].from, "n1");
        assert_eq!(views[0].to, "n2");
        assert_eq!(views[0].kind, "request_vote_response");
        assert_eq!(views[0].summary, "t2 granted");
        let dropped = net.drop_to(Endpoint::Node(1));
        assert_eq!(dropped.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(net.in_flight_len(), 1);
        assert!(net.land(2).is_some());
        assert!(net.land(2).is_none());
    }
}
