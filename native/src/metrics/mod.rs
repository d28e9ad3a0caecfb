//! `GET /metrics`: what the node is doing, in the Prometheus text format (version 0.0.4). Every
//! name is listed, with its type, labels and etcd equivalent, in docs/metrics.md.
//!
//! The client is `prometheus-client`, the Prometheus org's own Rust crate, rather than
//! `metrics` with `metrics-exporter-prometheus`, because:
//! - its [`Registry`] is a plain value: one per server, none in the process. `metrics` records
//!   through a process-global recorder, and the tests run several servers in one process
//!   (`stack_tests`), whose numbers must not mix;
//! - a [`Collector`](prometheus_client::collector::Collector) reads values when scraped, so
//!   the Raft state the driver already publishes (its watch channel), the transport's atomic
//!   counters and the files' sizes cost the hot paths nothing at all;
//! - it has no HTTP server or push gateway to switch off, and no dependency beyond
//!   `parking_lot` and two number formatters (its protobuf features stay off).
//!
//! What records what: [`Instruments`] are the live counters and histograms handed to whoever
//! records (the driver, the log store, the HTTP layer); each records with an atomic add or,
//! for a histogram, a short uncontended lock that is never held across an await. [`Sources`]
//! are what the scrape reads. [`Metrics`] puts both in one registry and renders it.

pub mod disk;
pub mod http;
pub mod peers;
pub mod raft;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::write_error;
use crate::transport::SendCounters;
use crate::transport::stream::listener::ListenerStats;

pub use http::HttpInstruments;
pub use raft::{RaftInstruments, ViewFn};

/// The instruments the hot paths record into. Cheap to clone (every field shares its value).
#[derive(Clone, Debug)]
pub struct Instruments {
    /// The driver's.
    pub raft: RaftInstruments,
    /// The Raft log's fdatasync durations (the log store's).
    pub fsync_seconds: Histogram,
    /// The client API's requests (its middleware's).
    pub http: HttpInstruments,
}

impl Default for Instruments {
    fn default() -> Self {
        Instruments {
            raft: RaftInstruments::default(),
            fsync_seconds: disk_histogram(),
            http: HttpInstruments::default(),
        }
    }
}

/// A histogram for disk and driver durations: 1 ms to about 8 s, as etcd's
/// `etcd_disk_wal_fsync_duration_seconds`.
pub(crate) fn disk_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// What the scrape reads, besides the instruments.
pub struct Sources {
    /// The driver's latest published view.
    pub view: ViewFn,
    /// The transport's per-peer send counters.
    pub sent: SendCounters,
    /// The stream listener's counters (`None` with the HTTP peer protocol or no listener).
    pub listener: Option<Arc<ListenerStats>>,
    /// The data dir, whose files' sizes are reported.
    pub data_dir: PathBuf,
}

/// One server's registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry of `inst` and of what `src` holds.
    pub fn new(inst: &Instruments, src: Sources) -> Metrics {
        let mut registry = Registry::default();
        raft::register(&mut registry, &inst.raft, src.view);
        registry.register(
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fdatasync of the Raft log (each group commit's sync).",
            inst.fsync_seconds.clone(),
        );
        registry.register_collector(Box::new(disk::DiskCollector {
            data_dir: src.data_dir,
        }));
        registry.register_collector(Box::new(peers::PeerCollector {
            sent: src.sent,
            listener: src.listener,
        }));
        http::register(&mut registry, &inst.http);
        Metrics { registry }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `GET /metrics` over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

/// Every metric in the Prometheus text format (docs/metrics.md lists them).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    responses(
        (status = 200, description = "The metrics, Prometheus text format 0.0.4", content_type = "text/plain", body = String)
    )
)]
async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    // The disk collector stats files: off the async workers.
    let rendered = tokio::task::spawn_blocking(move || metrics.render()).await;
    match rendered {
        Ok(Ok(text)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Ok(Err(e)) => write_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot encode the metrics: {e}"),
        ),
        Err(e) => write_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("the metrics scrape failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests;
