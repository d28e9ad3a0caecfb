//! The dev routes the playground serves with `--dev-cluster` (and only then: without it they
//! are unknown paths, 404, like any missing file):
//!
//! | route | what |
//! |---|---|
//! | `GET /dev/cluster` | the nodes (addresses, alive, pid) and links ([`super::ClusterView`]) |
//! | `GET /dev/events` | server-sent events: `cluster` (that view, on every change), `status` (a node's `/debug/events`), `down` (a node's stream ended) |
//! | `POST /dev/nodes/{id}/kill`, `.../restart` | SIGKILL the node; start it again |
//! | `POST /dev/links/{a}/{b}/cut`, `.../heal` | cut or heal both directions between two nodes |
//! | any `/dev/api/{path}` | the client API request `/{path}`, sent to a node and following its redirects to the leader |
//!
//! `/dev/api` sends to the node the `x-raftkv-node` header names first, else to the one that
//! answered last, and on to the next while a node cannot be reached; the answer (status, body,
//! content type) is the node's, with `x-raftkv-node` naming the node that gave it. Errors of
//! the routes themselves are the API's JSON error shape.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast;

use super::relay::{Message, Relay};
use super::{DevCluster, DevError};
use crate::api::{write_error, write_json};

/// The header naming the node a `/dev/api` request goes to first, and the one that answered.
pub const NODE_HEADER: &str = "x-raftkv-node";
/// How long a forwarded request may take (a write waits up to 5 s for its outcome).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(8);
/// The largest request body forwarded.
const MAX_BODY: usize = 1 << 20;

/// What the routes share.
#[derive(Clone)]
struct Dev {
    cluster: Arc<DevCluster>,
    relay: Arc<Relay>,
    client: reqwest::Client,
    /// The node that answered the last forwarded request (its position).
    last: Arc<AtomicUsize>,
}

/// The dev routes over `cluster`.
pub async fn router(cluster: Arc<DevCluster>) -> Router {
    let relay = Relay::start(Arc::clone(&cluster)).await;
    // Follows the 307s to the leader itself (reqwest re-sends a 307's body).
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(FORWARD_TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let dev = Dev {
        cluster,
        relay,
        client,
        last: Arc::new(AtomicUsize::new(0)),
    };
    Router::new()
        .route("/dev/cluster", get(cluster_view))
        .route("/dev/events", get(events))
        .route("/dev/nodes/{id}/{action}", post(node_action))
        .route("/dev/links/{a}/{b}/{action}", post(link_action))
        .route("/dev/api/{*path}", any(forward))
        .with_state(dev)
}

impl IntoResponse for DevError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            DevError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            DevError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            DevError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        write_error(status, code, &self.to_string())
    }
}

async fn cluster_view(State(dev): State<Dev>) -> Response {
    write_json(StatusCode::OK, &dev.cluster.view().await)
}

async fn node_action(
    State(dev): State<Dev>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, DevError> {
    let view = match action.as_str() {
        "kill" => dev.cluster.kill(&id).await?,
        "restart" => dev.cluster.restart(&id).await?,
        _ => return Err(unknown_action(&action, "kill or restart")),
    };
    Ok(write_json(StatusCode::OK, &view))
}

async fn link_action(
    State(dev): State<Dev>,
    Path((a, b, action)): Path<(String, String, String)>,
) -> Result<Response, DevError> {
    let cut = match action.as_str() {
        "cut" => true,
        "heal" => false,
        _ => return Err(unknown_action(&action, "cut or heal")),
    };
    Ok(write_json(
        StatusCode::OK,
        &dev.cluster.set_cut(&a, &b, cut).await?,
    ))
}

fn unknown_action(action: &str, known: &str) -> DevError {
    DevError::NotFound(format!("no action {action:?} here: {known}"))
}

/// The merged stream: a snapshot first, then every message; after falling behind, a fresh
/// snapshot.
async fn events(State(dev): State<Dev>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (first, rx) = dev.relay.subscribe().await;
    let relay = Arc::clone(&dev.relay);
    let messages = stream::unfold(
        (first.into_iter(), rx, relay),
        |(mut queued, mut rx, relay)| async move {
            loop {
                if let Some(m) = queued.next() {
                    return Some((m, (queued, rx, relay)));
                }
                match rx.recv().await {
                    Ok(m) => return Some((m, (queued, rx, relay))),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        queued = relay.snapshot().await.into_iter();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    let events = futures_util::StreamExt::map(messages, |m: Message| {
        let (name, data) = m.event();
        Ok(Event::default().event(name).data(data))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// Sends the client request to the cluster (see the module doc).
async fn forward(
    State(dev): State<Dev>,
    Path(path): Path<String>,
    req: Request,
) -> Result<Response, DevError> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return Ok(write_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_request",
                &format!("the request body is unreadable or too large: {e}"),
            ));
        }
    };
    let endpoints = dev.cluster.endpoints().await;
    let first = parts
        .headers
        .get(NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|want| endpoints.iter().position(|(id, _)| id == want))
        .unwrap_or_else(|| dev.last.load(Ordering::Relaxed) % endpoints.len().max(1));
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut tried = Vec::new();
    for k in 0..endpoints.len() {
        let (id, addr) = &endpoints[(first + k) % endpoints.len()];
        let url = format!("http://{addr}/{path}{query}");
        match send(
            &dev.client,
            &parts.method,
            &parts.headers,
            &url,
            body.clone(),
        )
        .await
        {
            Ok(resp) => {
                // The node that answered, after the redirects: the one whose port the final
                // URL names.
                let port = resp.url().port();
                let at = endpoints
                    .iter()
                    .position(|(_, a)| Some(a.port()) == port)
                    .unwrap_or((first + k) % endpoints.len());
                dev.last.store(at, Ordering::Relaxed);
                return Ok(relay_response(resp, &endpoints[at].0).await);
            }
            Err(e) => tried.push(format!("{id}: {e}")),
        }
    }
    Ok(write_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        &format!("no node of the dev cluster answered ({})", tried.join("; ")),
    ))
}

async fn send(
    client: &reqwest::Client,
    method: &Method,
    headers: &HeaderMap,
    url: &str,
    body: Bytes,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client.request(method.clone(), url).body(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.send().await
}

/// The node's answer as the playground's, naming the node in [`NODE_HEADER`].
async fn relay_response(resp: reqwest::Response, node: &str) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return write_error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                &format!("{node} stopped answering: {e}"),
            );
        }
    };
    let mut out = (status, body).into_response();
    if let Some(ct) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Ok(v) = HeaderValue::from_str(node) {
        out.headers_mut().insert(NODE_HEADER, v);
    }
    out
}
