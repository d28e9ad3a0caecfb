//! The client API's requests: a middleware counts each request by method, matched route and
//! status, and times it. The route is the template the router matched (`/kv/{*key}`), never
//! the raw path, so keys do not become label values (unbounded cardinality); requests no
//! route matched count under `unmatched`, and methods outside the standard ones as `OTHER`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The labels of a request count: method, route and status code.
pub type RequestLabels = [(&'static str, String); 3];
/// The labels of a request's duration: method and route.
pub type RouteLabels = [(&'static str, String); 2];

/// What the middleware records. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpInstruments {
    /// Requests answered, by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the response's head, by method and route.
    pub duration_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpInstruments {
    fn default() -> Self {
        HttpInstruments {
            requests: Family::default(),
            duration_seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// 0.1 ms to about 6.5 s: a stale read answers in well under a millisecond, a write waits
/// for a quorum's fsync, a read may wait seconds for `min_index`.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

pub(super) fn register(registry: &mut Registry, inst: &HttpInstruments) {
    registry.register(
        "raftkv_http_requests",
        "Client API requests answered, by method, matched route and status code.",
        inst.requests.clone(),
    );
    registry.register(
        "raftkv_http_request_duration_seconds",
        "Client API request latency (to the response's head), by method and matched route.",
        inst.duration_seconds.clone(),
    );
}

/// The method as a label value: the standard ones by name, anything else as `OTHER` (a
/// client may send any token as a method).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The middleware: add it with
/// `router.layer(axum::middleware::from_fn_with_state(instruments, metrics::http::track))`
/// so that it runs inside routing, where [`MatchedPath`] is known.
pub async fn track(State(inst): State<HttpInstruments>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    let took = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16().to_string();
    inst.duration_seconds
        .get_or_create(&[("method", method.to_string()), ("route", route.clone())])
        .observe(took);
    inst.requests
        .get_or_create(&[
            ("method", method.to_string()),
            ("route", route),
            ("status", status),
        ])
        .inc();
    resp
}
