//! `GET /debug/events`: this node's Raft status as a stream of server-sent events, for the
//! playground's live mode (docs/playground.md, "Live mode") and anyone watching a node.
//!
//! Each event (`event: status`) carries a [`NodeEvent`] as JSON: role, term, leader, vote,
//! commit, applied, last log index, snapshot index and, while the node leads, every member's
//! next/match index. The first event is sent at once; after that one is sent only when
//! something in it changed, checked every [`POLL`]. A comment line every [`KEEP_ALIVE`] keeps
//! idle connections (and proxies between) from timing out, and `retry:` asks an `EventSource`
//! to reconnect quickly after the node restarts.
//!
//! Read-only and always served: it needs what `/status` needs (`read` with client auth on,
//! client_auth.rs). A browser's `EventSource` cannot send an `Authorization` header, so a page
//! can only watch an open node (the local cluster of scripts/run.sh).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use raftkv_core::NodeId;
use raftkv_core::raft::{Index, MemberProgress, Role, Term};
use serde::Serialize;
use utoipa::ToSchema;

use crate::driver::{NodeView, RaftNode};

/// The route.
pub const PATH: &str = "/debug/events";
/// How often the node's status is compared with the last one sent.
pub const POLL: Duration = Duration::from_millis(100);
/// How often an idle stream carries a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long an `EventSource` waits before reconnecting (the `retry:` field).
pub const RETRY: Duration = Duration::from_millis(500);

/// One event of the stream: the node's status when it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct NodeEvent {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in that term.
    pub leader_id: Option<NodeId>,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
    /// The highest index it knows to be committed.
    pub commit_index: Index,
    /// The highest index it applied to its state machine.
    pub last_applied: Index,
    /// The last index in its log.
    pub last_log_index: Index,
    /// The term of that entry.
    pub last_log_term: Term,
    /// The last index its snapshot covers (0: none).
    pub snapshot_index: Index,
    /// The voters of its configuration.
    pub voters: Vec<NodeId>,
    /// The node stopped after a storage failure: it serves nothing any more.
    pub stopped: bool,
    /// While it leads: how far it knows each member's log to match its own (itself
    /// included); empty otherwise.
    pub progress: Vec<PeerProgress>,
}

/// A leader's view of one member's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PeerProgress {
    /// The member.
    pub id: NodeId,
    /// The highest index known to be stored there.
    pub match_index: Index,
    /// The next index the leader sends it.
    pub next_index: Index,
    /// `probe`, `replicate` or `snapshot`.
    pub state: String,
}

impl NodeEvent {
    /// The event for `view`, with the leader's `progress` (ignored unless it leads).
    pub fn new(view: &NodeView, progress: &[MemberProgress]) -> Self {
        let s = &view.status;
        let leads = s.role == Role::Leader && !view.stopped;
        NodeEvent {
            id: s.id.clone(),
            role: s.role,
            term: s.term,
            leader_id: s.leader_id.clone(),
            voted_for: s.voted_for.clone(),
            commit_index: s.commit_index,
            last_applied: s.last_applied,
            last_log_index: s.last_log_index,
            last_log_term: s.last_log_term,
            snapshot_index: s.snapshot_index,
            voters: s.membership.voters.iter().cloned().collect(),
            stopped: view.stopped,
            progress: match leads {
                true => progress
                    .iter()
                    .map(|p| PeerProgress {
                        id: p.id.clone(),
                        match_index: p.match_index,
                        next_index: p.next_index,
                        state: p.state.clone(),
                    })
                    .collect(),
                false => Vec::new(),
            },
        }
    }
}

/// `GET /debug/events` for `node`.
pub fn router(node: RaftNode) -> Router {
    Router::new().route(PATH, get(events)).with_state(node)
}

/// The node's status now. A leader's progress comes from its driver; if that fails (the node
/// is stopping), the event goes without it rather than not at all.
async fn current(node: &RaftNode) -> NodeEvent {
    let view = node.view();
    let progress = match view.status.role == Role::Leader && !view.stopped {
        true => node
            .cluster_info()
            .await
            .map(|i| i.progress)
            .unwrap_or_default(),
        false => Vec::new(),
    };
    NodeEvent::new(&view, &progress)
}

/// The stream of [`NodeEvent`]s of `node`: the first at once, then each change.
pub fn stream(node: RaftNode) -> impl Stream<Item = NodeEvent> {
    stream::unfold((node, None::<NodeEvent>), |(node, last)| async move {
        if last.is_some() {
            // Polled: core publishes a view after every driver turn (many per heartbeat), far
            // more often than a person can watch.
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = current(&node).await;
                if last.as_ref() != Some(&now) {
                    return Some((now.clone(), (node, Some(now))));
                }
            }
        }
        let now = current(&node).await;
        Some((now.clone(), (node, Some(now))))
    })
}

/// The node's status as server-sent events (`event: status`, the data a [`NodeEvent`]), sent
/// at once and then on every change.
#[utoipa::path(
    get,
    path = "/debug/events",
    tag = "node",
    responses(
        (status = 200, description = "A `text/event-stream`: an `event: status` whose data is a NodeEvent, at once and on every change of the node's status; a keep-alive comment while idle", content_type = "text/event-stream", body = NodeEvent)
    )
)]
async fn events(
    State(node): State<RaftNode>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    use futures_util::StreamExt;
    let events = stream(node).map(|e| {
        // A NodeEvent has no map with non-string keys: it always encodes.
        let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".into());
        Ok(Event::default().event("status").retry(RETRY).data(data))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
