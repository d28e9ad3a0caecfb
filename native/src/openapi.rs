//! The HTTP API's contract: an OpenAPI 3.1 document derived from the handlers' own request,
//! query and response types (utoipa's `ToSchema`, `IntoParams` and `#[utoipa::path]` on each
//! handler), served at `GET /openapi.json` and kept in the repository as docs/openapi.json.
//!
//! The copy in docs/ is checked by a unit test (`openapi_json_in_docs_is_current`): when a
//! handler's types change, regenerate it with
//! `RAFTKV_BLESS=1 cargo test -p raftkv-native --lib openapi`. The integration test
//! tests/tests/openapi_schemathesis.rs runs schemathesis against a live node with the served
//! document.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, ServerBuilder};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::api::write_error;
use crate::config::Peer;

/// The route the document is served at.
pub const PATH: &str = "/openapi.json";

/// Every route of the client and admin API, with the types their handlers use.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "raftkv",
        description = "The HTTP API of a raftkv node: the key-value client API, the cluster \
            admin API (membership, leadership transfer), health, readiness and metrics. Every \
            failure is a JSON `ErrorBody` with a machine-readable `err_code`. With client auth \
            on (docs/client-auth.md) requests carry `Authorization: Bearer <token>`.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        crate::api::healthz,
        crate::api::status,
        crate::api::get_key,
        crate::api::put_key,
        crate::api::delete_key,
        crate::api::range,
        crate::api::cas,
        crate::api::mget,
        crate::api::mput,
        crate::api::mdelete,
        crate::api::snapshot,
        crate::api::op_result,
        crate::api::transfer_leader,
        crate::membership_api::get_cluster,
        crate::membership_api::add_learner,
        crate::membership_api::promote,
        crate::membership_api::remove,
        crate::membership_api::replace,
        crate::readiness::readyz,
        crate::metrics::scrape,
        crate::debug_events::events,
        openapi_json,
    ),
    tags(
        (name = "kv", description = "Reads and writes of keys"),
        (name = "cluster", description = "Membership and leadership"),
        (name = "node", description = "This node: health, readiness, status (also as a stream of events), metrics, snapshot, this document"),
    )
)]
struct ApiDoc;

/// The API's OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The crate's version, not a date or a commit: docs/openapi.json changes only with the API.
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.servers = Some(vec![
        ServerBuilder::new()
            .url("http://127.0.0.1:7001")
            .description(Some("A node of the local cluster (scripts/cluster.sh)"))
            .build(),
    ]);
    doc
}

/// [`document`] as pretty JSON with a trailing newline, as docs/openapi.json holds it.
pub fn pretty_json() -> Result<String, serde_json::Error> {
    // utoipa spells the unsigned formats kebab-case (`u-int64`); the usual name is `uint64`.
    document()
        .to_pretty_json()
        .map(|s| s.replace("\"format\": \"u-int", "\"format\": \"uint") + "\n")
}

/// The document, rendered once.
static RENDERED: LazyLock<Result<String, String>> =
    LazyLock::new(|| pretty_json().map_err(|e| e.to_string()));

/// `GET /openapi.json`.
pub fn router() -> Router {
    Router::new().route(PATH, get(openapi_json))
}

/// This document: the API's OpenAPI 3.1 contract.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "node",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)
    )
)]
async fn openapi_json() -> Response {
    match &*RENDERED {
        Ok(json) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json.clone(),
        )
            .into_response(),
        Err(e) => write_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot render the OpenAPI document: {e}"),
        ),
    }
}

/// Each documented path template with its methods, upper-case.
static ROUTES: LazyLock<Vec<(String, Vec<String>)>> = LazyLock::new(|| {
    document()
        .paths
        .paths
        .iter()
        .map(|(template, item)| {
            let item = serde_json::to_value(item).unwrap_or_default();
            let methods = item
                .as_object()
                .map(|ops| {
                    ops.keys()
                        .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
                        .map(|m| m.to_uppercase())
                        .collect()
                })
                .unwrap_or_default();
            (template.clone(), methods)
        })
        .collect()
});

/// Whether `path` is one of `template`'s: a `{param}` segment matches one non-empty segment,
/// except `{key}`, which (as the router's `{*key}`) matches the rest of the path.
fn matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some("{key}"), Some(seg)) => return !seg.is_empty() || have.next().is_some(),
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') && !h.is_empty() => {}
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// The methods the API serves at `path`, sorted, for a 405's `Allow` header: those of every
/// documented route that matches it (`/kv/cas` is also the key `cas`), and `HEAD` with `GET`.
pub fn allowed_methods(path: &str) -> Vec<String> {
    let mut methods: Vec<String> = ROUTES
        .iter()
        .filter(|(template, _)| matches(template, path))
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    if methods.iter().any(|m| m == "GET") {
        methods.push("HEAD".into());
    }
    methods.sort();
    methods.dedup();
    methods
}

// `Peer` lives in config.rs; its schema is written here, beside the document that needs it
// (a unit test checks it against the type's serialization).
impl PartialSchema for Peer {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("One cluster member: its id and peer address."))
            .property("id", String::schema())
            .required("id")
            .property(
                "addr",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("Its peer address, host:port.")),
            )
            .required("addr")
            .into()
    }
}

impl ToSchema for Peer {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Peer")
    }
}

/// A key in a list of keys (`mget`, `mdelete`): a non-empty string. Documentation only: the
/// handlers take `Vec<String>` and refuse an empty key themselves.
pub struct NonEmptyKey;

impl PartialSchema for NonEmptyKey {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .description(Some("A key: a non-empty string."))
            .into()
    }
}

impl ToSchema for NonEmptyKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NonEmptyKey")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;

    fn docs_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    #[test]
    fn openapi_json_in_docs_is_current() {
        let want = pretty_json().unwrap();
        let path = docs_path();
        if std::env::var_os("RAFTKV_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/openapi.json is stale (or missing): the handlers' types changed. Regenerate it \
             with\n\n    RAFTKV_BLESS=1 cargo test -p raftkv-native --lib openapi\n\nand commit \
             the result"
        );
    }

    /// Every route the routers serve is documented, and nothing else is.
    #[test]
    fn every_route_is_documented() {
        let doc: Value = serde_json::from_str(&pretty_json().unwrap()).unwrap();
        let mut documented: Vec<String> = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        documented.sort();
        let mut want: Vec<String> = [
            "GET /healthz",
            "GET /readyz",
            "GET /status",
            "GET /metrics",
            "GET /debug/events",
            "GET /openapi.json",
            "GET /snapshot",
            "GET /kv",
            "GET /kv/{key}",
            "PUT /kv/{key}",
            "DELETE /kv/{key}",
            "POST /kv/cas",
            "POST /kv/mget",
            "POST /kv/mput",
            "POST /kv/mdelete",
            "GET /ops/{op_id}",
            "GET /cluster",
            "POST /cluster/learners",
            "POST /cluster/promote",
            "POST /cluster/remove",
            "POST /cluster/replace",
            "POST /cluster/transfer-leader",
        ]
        .map(String::from)
        .to_vec();
        want.sort();
        assert_eq!(documented, want);
    }

    #[test]
    fn allowed_methods_are_the_documented_ones_of_every_matching_route() {
        assert_eq!(allowed_methods("/healthz"), ["GET", "HEAD"]);
        assert_eq!(allowed_methods("/cluster/promote"), ["POST"]);
        assert_eq!(allowed_methods("/kv/a/b"), ["DELETE", "GET", "HEAD", "PUT"]);
        assert_eq!(
            allowed_methods("/kv/cas"),
            ["DELETE", "GET", "HEAD", "POST", "PUT"]
        );
        assert_eq!(allowed_methods("/ops/x"), ["GET", "HEAD"]);
        assert!(allowed_methods("/ops/").is_empty());
        assert!(allowed_methods("/nope").is_empty());
    }

    #[test]
    fn the_range_limit_bound_is_the_servers() {
        let doc: Value = serde_json::from_str(&pretty_json().unwrap()).unwrap();
        let params = doc["paths"]["/kv"]["get"]["parameters"].as_array().unwrap();
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(
            limit["schema"]["maximum"],
            crate::dkv::MAX_RANGE_LIMIT as u64
        );
    }

    #[test]
    fn the_peer_schema_matches_its_serialization() {
        let peer = Peer {
            id: "n1".into(),
            addr: "127.0.0.1:7101".into(),
        };
        let json = serde_json::to_value(&peer).unwrap();
        let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["addr", "id"]);
        let schema = serde_json::to_value(Peer::schema()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["id", "addr"]));
    }
}
