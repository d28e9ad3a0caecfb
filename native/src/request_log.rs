//! One log line per client request, with a request id echoed to the client, at a level that
//! says whether an operator must act.
//!
//! Every request gets an id in `x-request-id`: the client's own if it sent one (so a client can
//! follow its request through a proxy and into this log), else `<node>-<start>-<n>` (the
//! process's start time in hex, then a counter: unique across restarts). The response carries
//! the same header. The request's span holds the node, method, path and id, so every line
//! logged while serving it (a 403 from the tokens, a slow write) carries them too; with
//! `--log-format json` they are fields a log pipeline can filter on.
//!
//! Levels: a 5xx other than 503 is ERROR (the node failed at something it should do: an
//! operator must look). A 503 is the API's expected refusal (no leader during an election,
//! a follower's read that cannot be confirmed, an overloaded leader): a client retries it, and
//! a failover produces hundreds, so it is DEBUG like every other answer. A node that stopped
//! after a storage failure also answers 503, but the driver logs that failure itself at ERROR.
//! So at the default `info` a failover logs its role and leader changes, not its refusals;
//! `RUST_LOG=raftkv_native::request_log=debug` shows every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use raftkv_core::NodeId;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the log reads at a response: the node's current term.
pub type TermSource = Arc<dyn Fn() -> u64 + Send + Sync>;

/// `router` with request ids and one log line per request (see the module doc).
pub fn wrap(router: Router, node: &NodeId, term: TermSource) -> Router {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ids = NodeIds {
        prefix: Arc::from(format!("{node}-{started:x}")),
        next: Arc::new(AtomicU64::new(1)),
    };
    let trace = TraceLayer::new_for_http()
        .make_span_with(RequestSpan {
            node: Arc::from(node.as_str()),
        })
        // One line per request, written when its answer is known; `on_failure` would log
        // every 5xx (503s included) at ERROR a second time.
        .on_request(())
        .on_response(ResponseLine { term })
        .on_failure(());
    // Outermost first: the id is set before the span reads it, and copied to the response
    // after the trace layer saw it.
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, ids))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(trace),
    )
}

/// Makes `<node>-<start>-<n>` ids.
#[derive(Clone)]
struct NodeIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl MakeRequestId for NodeIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// The span of one request: node, method, path and id.
#[derive(Clone)]
struct RequestSpan {
    node: Arc<str>,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "request",
            node = %self.node,
            method = %req.method(),
            path = %req.uri().path(),
            request_id = %id,
        )
    }
}

/// The line written at a response, at the level its status deserves.
#[derive(Clone)]
struct ResponseLine {
    term: TermSource,
}

/// Whether an answer means the node failed at its job (ERROR), rather than a refusal the
/// client expects and retries.
fn is_failure(status: StatusCode) -> bool {
    status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE
}

impl<B> OnResponse<B> for ResponseLine {
    fn on_response(self, resp: &Response<B>, latency: Duration, _: &Span) {
        let status = resp.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1e3;
        let term = (self.term)();
        if is_failure(resp.status()) {
            tracing::error!(status, latency_ms, term, "request failed");
        } else {
            tracing::debug!(status, latency_ms, term, "request answered");
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let routes = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
        wrap(routes, &NodeId::from("n7"), Arc::new(|| 3))
    }

    async fn id_of(req: Request<Body>) -> String {
        let resp = app().oneshot(req).await.unwrap();
        resp.headers()
            .get(&REQUEST_ID)
            .expect("every response carries an id")
            .to_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_response_echoes_the_clients_request_id() {
        let req = Request::get("/ok")
            .header(&REQUEST_ID, "client-chosen-42")
            .body(Body::empty())
            .unwrap();
        assert_eq!(id_of(req).await, "client-chosen-42");
    }

    #[tokio::test]
    async fn a_request_without_an_id_gets_one_naming_the_node_and_distinct_from_the_last() {
        let get = || Request::get("/busy").body(Body::empty()).unwrap();
        let app = app();
        let (a, b) = (
            app.clone().oneshot(get()).await.unwrap(),
            app.oneshot(get()).await.unwrap(),
        );
        let id = |r: &Response<Body>| r.headers()[&REQUEST_ID].to_str().unwrap().to_string();
        assert!(id(&a).starts_with("n7-"), "{}", id(&a));
        assert_ne!(id(&a), id(&b));
    }

    #[test]
    fn only_server_errors_other_than_503_are_failures() {
        assert!(is_failure(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(is_failure(StatusCode::GATEWAY_TIMEOUT));
        assert!(!is_failure(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!is_failure(StatusCode::FORBIDDEN));
        assert!(!is_failure(StatusCode::OK));
    }
}
