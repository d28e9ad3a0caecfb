//! The admin API of cluster membership: `/cluster` and the changes under it. Thin handlers:
//! parse and check the body, ask the driver ([`RaftNode::change_membership`]), answer JSON.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /cluster[?local=true]` | – | the configuration ([`ClusterView`]) |
//! | `POST /cluster/learners` | `{"id","addr"}` | adds a learner |
//! | `POST /cluster/promote` | `{"id"}` | makes a caught-up learner a voter |
//! | `POST /cluster/remove` | `{"id"}` | removes a voter (the leader too) or a learner |
//! | `POST /cluster/replace` | `{"remove","add":{"id","addr"}}` | swaps a voter for a new one (joint) |
//!
//! `GET /cluster` at a follower that knows the leader is a 307 to the leader's `/cluster`,
//! whose answer has every member's match index and lag; with `?local=true`, or while no
//! leader is known, a node answers what it knows itself (`"from_leader": false`, no progress).
//!
//! A change at a follower is a 307 to the leader, like a write (503 `not_leader` while no
//! leader is known, after waiting a little for one). The leader answers 200 once the change
//! took effect there, with the configuration then in force; a replacement, which goes through
//! a joint configuration, is answered once the leader has left it (or with the joint one, if
//! that takes longer than a write's timeout). Refusals: 409 `change_in_progress`,
//! `already_member`, `last_voter`, `not_caught_up`; 404 `unknown_node`; 400 `invalid_change`
//! and `bad_request`; 503 `transferring`, `no_quorum`, `unknown_outcome`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use raftkv_core::NodeId;
use raftkv_core::raft::{ConfChange, ConfChangeError, Index, Role, Term};
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError, ErrorBody, JsonBody, write_error, write_json};
use crate::driver::{ClusterInfo, RaftNode};
use crate::node_port::{NodeError, RaftHandle};

/// The longest member id accepted.
const MAX_ID_LEN: usize = 255;

struct MemberApi {
    node: RaftNode,
    /// How long a change waits for a leader to be known (as a write does).
    leader_wait: Duration,
}

type Api = State<Arc<MemberApi>>;

/// The membership routes over `node`; merge them into the node's router.
pub fn router(node: RaftNode, leader_wait: Duration) -> Router {
    Router::new()
        .route("/cluster", get(get_cluster))
        .route("/cluster/learners", post(add_learner))
        .route("/cluster/promote", post(promote))
        .route("/cluster/remove", post(remove))
        .route("/cluster/replace", post(replace))
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(Arc::new(MemberApi { node, leader_wait }))
}

/// The body of `GET /cluster` and of every accepted change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// Always true.
    pub ok: bool,
    /// The node that answered.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader_id: Option<NodeId>,
    /// The leader's address.
    pub leader_addr: Option<String>,
    /// Who votes (the incoming half while joint).
    pub voters: Vec<NodeId>,
    /// The outgoing voters while a joint configuration is in force; empty otherwise.
    pub outgoing: Vec<NodeId>,
    /// Members that receive the log without voting.
    pub learners: Vec<NodeId>,
    /// Whether a joint configuration is in force.
    pub joint: bool,
    /// A configuration entry the leader appended that has not taken effect yet.
    pub pending_change: Option<Index>,
    /// The answering node's last log index.
    pub last_index: Index,
    /// Its commit index.
    pub commit_index: Index,
    /// Whether the answer comes from the leader (and `members` carry match index and lag).
    pub from_leader: bool,
    /// Every member, in id order.
    pub members: Vec<MemberView>,
    /// For an accepted change: the index of its configuration entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Index>,
}

/// One member in a [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    /// The member.
    pub id: NodeId,
    /// Its address, if known.
    pub addr: Option<String>,
    /// `voter`, `learner`, or `leaving` (a voter of the outgoing half only, while joint).
    pub role: String,
    /// The highest index the leader knows it stores (leader's answers only).
    pub match_index: Option<Index>,
    /// How many entries it is behind the leader's log (leader's answers only).
    pub lag: Option<Index>,
    /// How the leader feeds it: probe, replicate or snapshot; `leader` for the leader itself
    /// (leader's answers only).
    pub state: Option<String>,
}

impl ClusterView {
    /// The view of `info`; `index` is the entry of the change being answered, if any.
    pub fn new(info: ClusterInfo, index: Option<Index>) -> Self {
        let m = &info.membership;
        let members = m
            .members()
            .into_iter()
            .map(|id| {
                let role = if m.voters.contains(&id) {
                    "voter"
                } else if m.outgoing.contains(&id) {
                    "leaving"
                } else {
                    "learner"
                };
                let progress = info.progress.iter().find(|p| p.id == id);
                // The leader's own progress state says nothing: it does not feed itself.
                let state = progress.map(|p| match id == info.id {
                    true => "leader".to_string(),
                    false => p.state.clone(),
                });
                MemberView {
                    addr: info.addrs.get(&id).cloned(),
                    role: role.to_string(),
                    match_index: progress.map(|p| p.match_index),
                    lag: progress.map(|p| info.last_index.saturating_sub(p.match_index)),
                    state,
                    id,
                }
            })
            .collect();
        ClusterView {
            ok: true,
            leader_addr: info
                .leader_id
                .as_ref()
                .and_then(|l| info.addrs.get(l).cloned()),
            from_leader: info.role == Role::Leader,
            voters: m.voters.iter().cloned().collect(),
            outgoing: m.outgoing.iter().cloned().collect(),
            learners: m.learners.iter().cloned().collect(),
            joint: m.is_joint(),
            members,
            id: info.id,
            role: info.role,
            term: info.term,
            leader_id: info.leader_id,
            pending_change: info.pending_change,
            last_index: info.last_index,
            commit_index: info.commit_index,
            index,
        }
    }
}

/// The status a refusal travels with.
pub fn status_for_refusal(e: &ConfChangeError) -> StatusCode {
    match e {
        ConfChangeError::InProgress { .. }
        | ConfChangeError::AlreadyMember { .. }
        | ConfChangeError::LastVoter
        | ConfChangeError::NotCaughtUp { .. } => StatusCode::CONFLICT,
        ConfChangeError::UnknownNode { .. } => StatusCode::NOT_FOUND,
        ConfChangeError::Invalid(_) => StatusCode::BAD_REQUEST,
        ConfChangeError::NotLeader { .. }
        | ConfChangeError::Transferring
        | ConfChangeError::NoQuorum => StatusCode::SERVICE_UNAVAILABLE,
        ConfChangeError::Fatal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn bad_request(msg: impl AsRef<str>) -> Response {
    write_error(StatusCode::BAD_REQUEST, "bad_request", msg.as_ref())
}

/// A member id from a request: non-empty, at most [`MAX_ID_LEN`] bytes, without whitespace,
/// control characters, `,` or `=` (which `--peers` uses as separators).
fn member_id(field: &str, raw: &str) -> Result<NodeId, String> {
    let why = if raw.is_empty() {
        "must not be empty".to_string()
    } else if raw.len() > MAX_ID_LEN {
        format!("longer than {MAX_ID_LEN} bytes")
    } else if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '=')
    {
        "must not contain whitespace, control characters, ',' or '='".to_string()
    } else {
        return Ok(NodeId::from(raw));
    };
    Err(format!("{field}: {why}"))
}

/// A member address from a request: `host:port` or `http://host:port`, nothing more.
fn member_addr(field: &str, raw: &str) -> Result<String, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let plain = reqwest::Url::parse(&with_scheme).is_ok_and(|url| {
        url.host_str().is_some_and(|h| !h.is_empty())
            && url.port_or_known_default().is_some()
            && matches!(url.scheme(), "http" | "https")
            && url.path() == "/"
            && !with_scheme.ends_with('/')
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && (raw.contains("://") || has_port(raw))
    });
    if !plain || raw.chars().any(char::is_whitespace) {
        return Err(format!(
            "{field}: expected host:port (or http://host:port), got {raw:?}"
        ));
    }
    Ok(raw.to_string())
}

/// Whether `host:port` ends with a port (the URL parser drops a default port such as 80).
fn has_port(raw: &str) -> bool {
    raw.rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The query of `GET /cluster`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClusterParams {
    /// Answer what this node knows itself rather than redirect to the leader.
    #[serde(default)]
    local: bool,
}

/// The cluster's configuration (from the leader, with every member's progress, unless
/// `local=true` or no leader is known).
#[utoipa::path(
    get,
    path = "/cluster",
    tag = "cluster",
    params(ClusterParams),
    responses(
        (status = 200, description = "The configuration", body = ClusterView),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: a malformed query", body = ErrorBody),
        (status = 503, description = "`unavailable`: the node stopped", body = ErrorBody)
    )
)]
async fn get_cluster(
    State(api): Api,
    uri: Uri,
    params: Result<Query<ClusterParams>, QueryRejection>,
) -> Response {
    let local = match params {
        Ok(Query(p)) => p.local,
        Err(e) => return bad_request(e.body_text()),
    };
    if !local && !api.node.is_leader() {
        let hint = api.node.leader_hint();
        if hint.leader_addr.is_some() {
            return ApiError::from_node(NodeError::NotLeader(hint), &uri).into_response();
        }
    }
    match api.node.cluster_info().await {
        Ok(info) => write_json(StatusCode::OK, &ClusterView::new(info, None)),
        Err(e) => ApiError::from_node(e, &uri).into_response(),
    }
}

/// A member to add: its id and peer address.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewMember {
    /// The new member's id: non-empty, at most 255 bytes, without whitespace, control
    /// characters, `,` or `=`.
    #[schema(min_length = 1, max_length = 255)]
    id: String,
    /// Its peer address, `host:port` or `http://host:port`.
    #[schema(min_length = 1)]
    addr: String,
}

/// The member a change is about.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MemberId {
    /// Its id.
    #[schema(min_length = 1, max_length = 255)]
    id: String,
}

/// A voter to swap for a new member (through a joint configuration).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Replacement {
    /// The voter to remove.
    #[schema(min_length = 1, max_length = 255)]
    remove: String,
    /// The member to add as a voter in its place.
    add: NewMember,
}

/// Adds a learner: a member that receives the log without voting.
#[utoipa::path(
    post,
    path = "/cluster/learners",
    tag = "cluster",
    request_body = NewMember,
    responses(
        (status = 200, description = "Added: the configuration now in force", body = ClusterView),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request` (malformed) or `invalid_change`", body = ErrorBody),
        (status = 404, description = "`unknown_node`: no such member", body = ErrorBody),
        (status = 409, description = "Refused: `change_in_progress`, `already_member`, `last_voter`, `not_caught_up`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `transferring`, `no_quorum`, `unknown_outcome`, `unavailable`", body = ErrorBody)
    )
)]
async fn add_learner(State(api): Api, uri: Uri, JsonBody(b): JsonBody<NewMember>) -> Response {
    let checked = member_id("id", &b.id)
        .and_then(|id| Ok(ConfChange::add_learner(id, member_addr("addr", &b.addr)?)));
    checked_change(&api, &uri, checked).await
}

/// Makes a caught-up learner a voter.
#[utoipa::path(
    post,
    path = "/cluster/promote",
    tag = "cluster",
    request_body = MemberId,
    responses(
        (status = 200, description = "Promoted: the configuration now in force", body = ClusterView),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request` (malformed) or `invalid_change`", body = ErrorBody),
        (status = 404, description = "`unknown_node`: no such member", body = ErrorBody),
        (status = 409, description = "Refused: `change_in_progress`, `already_member`, `last_voter`, `not_caught_up`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `transferring`, `no_quorum`, `unknown_outcome`, `unavailable`", body = ErrorBody)
    )
)]
async fn promote(State(api): Api, uri: Uri, JsonBody(b): JsonBody<MemberId>) -> Response {
    let checked = member_id("id", &b.id).map(ConfChange::promote);
    checked_change(&api, &uri, checked).await
}

/// Removes a voter (the leader too) or a learner.
#[utoipa::path(
    post,
    path = "/cluster/remove",
    tag = "cluster",
    request_body = MemberId,
    responses(
        (status = 200, description = "Removed: the configuration now in force", body = ClusterView),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request` (malformed) or `invalid_change`", body = ErrorBody),
        (status = 404, description = "`unknown_node`: no such member", body = ErrorBody),
        (status = 409, description = "Refused: `change_in_progress`, `already_member`, `last_voter`, `not_caught_up`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `transferring`, `no_quorum`, `unknown_outcome`, `unavailable`", body = ErrorBody)
    )
)]
async fn remove(State(api): Api, uri: Uri, JsonBody(b): JsonBody<MemberId>) -> Response {
    let checked = member_id("id", &b.id).map(ConfChange::remove);
    checked_change(&api, &uri, checked).await
}

/// Swaps a voter for a new member, through a joint configuration.
#[utoipa::path(
    post,
    path = "/cluster/replace",
    tag = "cluster",
    request_body = Replacement,
    responses(
        (status = 200, description = "Replaced: the configuration now in force (the joint one if leaving it takes longer than a write's timeout)", body = ClusterView),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request` (malformed) or `invalid_change`", body = ErrorBody),
        (status = 404, description = "`unknown_node`: no such member", body = ErrorBody),
        (status = 409, description = "Refused: `change_in_progress`, `already_member`, `last_voter`, `not_caught_up`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `transferring`, `no_quorum`, `unknown_outcome`, `unavailable`", body = ErrorBody)
    )
)]
async fn replace(State(api): Api, uri: Uri, JsonBody(b): JsonBody<Replacement>) -> Response {
    let checked = member_id("remove", &b.remove).and_then(|old| {
        let new = member_id("add.id", &b.add.id)?;
        Ok(ConfChange::replace(
            old,
            new,
            member_addr("add.addr", &b.add.addr)?,
        ))
    });
    checked_change(&api, &uri, checked).await
}

/// A change whose input checked out goes to the leader; one that did not is a 400.
async fn checked_change(
    api: &MemberApi,
    uri: &Uri,
    checked: Result<ConfChange, String>,
) -> Response {
    match checked {
        Ok(c) => change(api, uri, c).await,
        Err(why) => bad_request(why),
    }
}

/// Proposes `change` at the leader and answers with the configuration it led to.
async fn change(api: &MemberApi, uri: &Uri, change: ConfChange) -> Response {
    let node = &api.node;
    // During an election, wait a little for a leader rather than bounce the request.
    if !node.is_leader() && node.leader_hint().leader_id.is_none() {
        let _ = node.wait_for_leader(api.leader_wait).await;
    }
    let index = match node.change_membership(change).await {
        Ok(Ok(index)) => index,
        Ok(Err(refused)) => {
            return write_error(
                status_for_refusal(&refused),
                refused.code(),
                &refused.to_string(),
            );
        }
        Err(e) => return ApiError::from_node(e, uri).into_response(),
    };
    // A joint configuration is left by the leader on its own: answer with where it leads.
    node.wait_for(node.propose_timeout(), |v| !v.status.membership.is_joint())
        .await;
    match node.cluster_info().await {
        Ok(info) => write_json(StatusCode::OK, &ClusterView::new(info, Some(index))),
        Err(e) => ApiError::from_node(e, uri).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use raftkv_core::kvraft::Stores;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::driver::DriverThread;
    use crate::stack_tests::single_node_with;

    /// A lone leader `n1` over in-memory stores with the membership routes, learners promoted
    /// only when fully caught up.
    async fn lone_leader() -> (Router, RaftNode, DriverThread) {
        let (node, thread, _dkv) = single_node_with(Stores::in_memory(), |raft| {
            raft.max_promote_lag = 0;
        });
        let leader = node
            .wait_for(Duration::from_secs(10), |v| {
                v.status.role == Role::Leader && v.status.commit_index >= 1
            })
            .await;
        assert!(leader, "the lone node did not elect itself");
        (
            router(node.clone(), Duration::from_millis(50)),
            node,
            thread,
        )
    }

    async fn call(app: &Router, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {bytes:?}"));
        (status, body)
    }

    #[tokio::test]
    async fn cluster_lists_the_configuration_with_the_leaders_progress() {
        let (app, _node, thread) = lone_leader().await;
        let (status, body) = call(&app, "GET", "/cluster", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["voters"], json!(["n1"]));
        assert_eq!(body["leader_id"], "n1");
        assert_eq!(body["leader_addr"], "127.0.0.1:1");
        assert_eq!(
            (&body["joint"], &body["from_leader"]),
            (&json!(false), &json!(true))
        );
        let me = &body["members"][0];
        assert_eq!(
            (&me["id"], &me["role"], &me["lag"]),
            (&json!("n1"), &json!("voter"), &json!(0))
        );
        assert_eq!(
            (&me["addr"], &me["state"]),
            (&json!("127.0.0.1:1"), &json!("leader"))
        );
        thread.stop().await;
    }

    #[tokio::test]
    async fn changes_answer_the_new_configuration_or_a_typed_refusal() {
        let (app, node, thread) = lone_leader().await;
        let (status, body) = call(
            &app,
            "POST",
            "/cluster/learners",
            r#"{"id":"n2","addr":"127.0.0.1:2"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["learners"], json!(["n2"]));
        assert!(body["index"].as_u64().is_some_and(|i| i >= 2), "{body}");
        let n2 = &body["members"][1];
        assert_eq!((&n2["id"], &n2["role"]), (&json!("n2"), &json!("learner")));
        assert_eq!(n2["addr"], "127.0.0.1:2");
        // The address table (transport, leader hints, /status) knows the new member.
        assert_eq!(
            node.peers().get(&NodeId::from("n2")).as_deref(),
            Some("127.0.0.1:2")
        );

        let cases = [
            // n2 has nothing of the log (nobody listens at its address).
            ("/cluster/promote", r#"{"id":"n2"}"#, 409, "not_caught_up"),
            (
                "/cluster/learners",
                r#"{"id":"n2","addr":"h:2"}"#,
                409,
                "already_member",
            ),
            ("/cluster/promote", r#"{"id":"n9"}"#, 404, "unknown_node"),
            ("/cluster/remove", r#"{"id":"n9"}"#, 404, "unknown_node"),
            ("/cluster/remove", r#"{"id":"n1"}"#, 409, "last_voter"),
            // Its new half ({n3}) has never answered: it could commit nothing.
            (
                "/cluster/replace",
                r#"{"remove":"n1","add":{"id":"n3","addr":"h:3"}}"#,
                503,
                "no_quorum",
            ),
            (
                "/cluster/replace",
                r#"{"remove":"n1","add":{"id":"n1","addr":"h:3"}}"#,
                409,
                "already_member",
            ),
            // One node in two steps.
            (
                "/cluster/replace",
                r#"{"remove":"n7","add":{"id":"n7","addr":"h:7"}}"#,
                400,
                "invalid_change",
            ),
        ];
        for (path, body, want, code) in cases {
            let (status, got) = call(&app, "POST", path, body).await;
            assert_eq!(
                (status.as_u16(), &got["err_code"]),
                (want, &json!(code)),
                "{path} {body}: {got}"
            );
            assert_eq!(got["ok"], false);
            assert!(
                got["err_msg"].as_str().is_some_and(|m| !m.is_empty()),
                "{got}"
            );
        }
        // Removing the learner works; the table forgets it.
        let (status, body) = call(&app, "POST", "/cluster/remove", r#"{"id":"n2"}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["learners"], json!([]));
        assert_eq!(node.peers().get(&NodeId::from("n2")), None);
        thread.stop().await;
    }

    #[tokio::test]
    async fn bad_input_is_a_400_in_json_and_never_reaches_the_node() {
        let (app, node, thread) = lone_leader().await;
        let before = node.view().status.last_log_index;
        let cases = [
            ("/cluster/learners", "not json"),
            ("/cluster/learners", r#"{"id":"n2"}"#),
            ("/cluster/learners", r#"{"id":"","addr":"h:2"}"#),
            ("/cluster/learners", r#"{"id":"n 2","addr":"h:2"}"#),
            ("/cluster/learners", r#"{"id":"n2=x","addr":"h:2"}"#),
            ("/cluster/learners", r#"{"id":"n2","addr":""}"#),
            ("/cluster/learners", r#"{"id":"n2","addr":"h"}"#),
            ("/cluster/learners", r#"{"id":"n2","addr":"h:2/path"}"#),
            ("/cluster/learners", r#"{"id":"n2","addr":"h:99999"}"#),
            ("/cluster/learners", r#"{"id":"n2","addr":"ftp://h:2"}"#),
            ("/cluster/learners", r#"{"id":7,"addr":"h:2"}"#),
            ("/cluster/promote", r#"{}"#),
            ("/cluster/remove", r#"{"id":null}"#),
            ("/cluster/replace", r#"{"remove":"n1"}"#),
            (
                "/cluster/replace",
                r#"{"remove":"n1","add":{"id":"n3","addr":"h:3?x=1"}}"#,
            ),
        ];
        for (path, body) in cases {
            let (status, got) = call(&app, "POST", path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {got}");
            assert_eq!(got["err_code"], "bad_request", "{path} {body}");
        }
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID_LEN + 1));
        let (status, _) = call(&app, "POST", "/cluster/promote", &long).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, got) = call(&app, "GET", "/cluster?local=maybe", "").await;
        assert_eq!(
            (status, &got["err_code"]),
            (StatusCode::BAD_REQUEST, &json!("bad_request"))
        );
        let (status, got) = call(&app, "DELETE", "/cluster", "").await;
        assert_eq!(
            (status, &got["err_code"]),
            (StatusCode::METHOD_NOT_ALLOWED, &json!("method_not_allowed"))
        );
        assert_eq!(
            node.view().status.last_log_index,
            before,
            "a bad request reached the log"
        );
        thread.stop().await;
    }

    #[test]
    fn addresses_are_host_and_port_and_nothing_else() {
        for ok in [
            "127.0.0.1:7004",
            "node4.example:80",
            "http://h:1",
            "https://h",
            "[::1]:7",
        ] {
            assert!(member_addr("addr", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "h",
            "h:",
            ":7",
            "h:7/",
            "http://h:1/x",
            "u@h:1",
            "h:1#f",
            "h :1",
        ] {
            assert!(member_addr("addr", bad).is_err(), "{bad}");
        }
    }
}
