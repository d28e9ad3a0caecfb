//! `noop-kv`: kvserver's client API with the store taken out, as a floor for benchmarks.
//!
//! `PUT /kv/{key}` parses its body exactly as kvserver does (the same [`PutBody`] and
//! extractors from [`crate::api`], the same client-identity check), inserts the value in a map
//! behind a lock and answers kvserver's shape, `{"ok":true,"index":N}`; `GET /kv/{key}` parses
//! the same query and answers `{"ok":true,"value":..}` or 404 `not_found` from the map. No
//! Raft, no replication, no disk, no dedupe table: what is left is HTTP, JSON and the tokio
//! runtime, so `kvctl bench` against it measures the load generator and the web stack alone,
//! and kvserver's distance from it is the cost of being a replicated, durable store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use raftkv_core::{ApplyResult, OpType};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api::{ApiError, JsonBody, Key, PutBody, ReadParams, reply, write_json};

/// The map and the index the next put answers.
#[derive(Default)]
struct Store {
    map: HashMap<String, String>,
    /// Counts puts, so a put's answer carries an `index` as kvserver's does.
    index: u64,
}

type Shared = State<Arc<Mutex<Store>>>;

/// The no-op server's routes: `GET /healthz`, `PUT /kv/{key}`, `GET /kv/{key}`. Bodies over
/// kvserver's default `--max-body-bytes` are refused with 413, as kvserver refuses them.
pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/kv/{*key}", get(get_key).put(put_key))
        .layer(DefaultBodyLimit::max(crate::config::DEFAULT_MAX_BODY_BYTES))
        // kvserver has this layer too; keeping it keeps the comparison about the store alone.
        .layer(TraceLayer::new_for_http())
        .with_state(Arc::new(Mutex::new(Store::default())))
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

async fn healthz() -> Response {
    write_json(StatusCode::OK, &json!({"ok": true}))
}

/// kvserver's `put_key` up to the point where it proposes the command to Raft; from there, a
/// map insert.
async fn put_key(
    State(store): Shared,
    Key(key): Key,
    JsonBody(b): JsonBody<PutBody>,
) -> Result<Response, ApiError> {
    // kvserver's client-identity check; the command it builds would go to Raft, so it is
    // dropped here.
    crate::api::command(OpType::Put, b.client_id, b.seq)?;
    // A panic elsewhere cannot leave the map half-written (an insert is one call), so a
    // poisoned lock is still good to use.
    let index = {
        let mut s = store.lock().unwrap_or_else(PoisonError::into_inner);
        s.index += 1;
        s.map.insert(key, b.value);
        s.index
    };
    Ok(reply(ApplyResult {
        index: Some(index),
        ..ApplyResult::ok()
    }))
}

/// kvserver's `get_key`, answered from the map whatever the consistency asked for.
async fn get_key(
    State(store): Shared,
    Key(key): Key,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    crate::api::read_options(params)?;
    let value = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .map
        .get(&key)
        .cloned();
    Ok(reply(match value {
        Some(v) => ApplyResult {
            value: Some(v),
            ..ApplyResult::ok()
        },
        None => ApplyResult::error("not_found", format!("key {key:?} not found")),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use raftkv_core::ReadPolicy;

    use super::*;
    use crate::client::{Client, ClientError};

    /// Through a real socket and kvctl's own client, the one `kvctl bench` uses.
    #[tokio::test]
    async fn noop_put_then_get_round_trips() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(serve(listener));
        let mut c = Client::new(vec![addr], "t".into(), 1, Duration::from_secs(5)).unwrap();

        let missing = c.get("k/1", Some(ReadPolicy::ReadIndex)).await;
        assert!(
            matches!(&missing, Err(ClientError::Server { status: 404, code, .. }) if code == "not_found"),
            "{missing:?}"
        );
        let put = c.put("k/1", "hello").await.unwrap();
        assert_eq!(put.body, json!({"ok": true, "index": 1}));
        let got = c.get("k/1", Some(ReadPolicy::ReadIndex)).await.unwrap();
        assert_eq!(got.body, json!({"ok": true, "value": "hello"}));
        assert_eq!(c.put("k/1", "again").await.unwrap().index(), Some(2));
        let got = c.get("k/1", Some(ReadPolicy::Stale)).await.unwrap();
        assert_eq!(got.value(), Some("again"));
        server.abort();
    }

    /// The body check is kvserver's: a seq of 0 or an empty client id is a 400.
    #[tokio::test]
    async fn noop_refuses_what_kvserver_refuses() {
        use tower::ServiceExt;
        for body in [
            r#"{"client_id":"c","seq":0,"value":"v"}"#,
            r#"{"client_id":"","seq":1,"value":"v"}"#,
            r#"{"client_id":"c","seq":1}"#,
            "nonsense",
        ] {
            let req = axum::http::Request::put("/kv/a")
                .body(axum::body::Body::from(body))
                .unwrap();
            let resp = router().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
