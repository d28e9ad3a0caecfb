//! `kvctl bench --target etcd`: the requests of etcd's v3 JSON gateway (grpc-gateway over the
//! client port, HTTP/1.1 like kvserver's API), so the same load generator can load etcd.
//!
//! A put is `POST /v3/kv/put {"key": b64, "value": b64}`; a get is `POST /v3/kv/range
//! {"key": b64, "serializable": bool}`, linearizable (etcd's ReadIndex) unless serializable.
//! The gateway's JSON carries bytes as base64 and 64-bit integers as strings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Url;
use serde_json::{Value, json};

use crate::client::ClientError;

/// The body of a put of `value` at `key`.
pub(crate) fn put_body(key: &str, value: &str) -> Value {
    json!({ "key": B64.encode(key), "value": B64.encode(value) })
}

/// The body of a read of `key`: linearizable unless `serializable` (etcd's stale read, served
/// by whichever member is asked).
pub(crate) fn range_body(key: &str, serializable: bool) -> Value {
    json!({ "key": B64.encode(key), "serializable": serializable })
}

/// The value a range reply holds for its one key, or `None` when the key is missing (etcd
/// leaves `kvs` out then).
pub(crate) fn range_value(body: &Value) -> Result<Option<Vec<u8>>, ClientError> {
    let Some(kvs) = body.get("kvs") else {
        return Ok(None);
    };
    let first = kvs
        .as_array()
        .ok_or_else(|| ClientError::BadReply(format!("etcd range: kvs is not a list: {body}")))?
        .first();
    let Some(kv) = first else {
        return Ok(None);
    };
    // An empty value is left out of the JSON entirely (proto3 drops defaults).
    let value = kv.get("value").and_then(Value::as_str).unwrap_or_default();
    B64.decode(value)
        .map(Some)
        .map_err(|e| ClientError::BadReply(format!("etcd range: value is not base64: {e}")))
}

/// Whether a `/v3/maintenance/status` reply comes from the leader: its own member id is the
/// leader id it reports.
pub(crate) fn status_is_leader(body: &Value) -> bool {
    let member = body.get("header").and_then(|h| h.get("member_id"));
    match (member, body.get("leader")) {
        (Some(m), Some(l)) => !m.is_null() && m == l,
        _ => false,
    }
}

/// The name of a gRPC status code, for the error table (`etcd_unavailable`, ...).
fn grpc_code_name(code: u64) -> &'static str {
    match code {
        1 => "etcd_canceled",
        2 => "etcd_unknown",
        3 => "etcd_invalid_argument",
        4 => "etcd_deadline_exceeded",
        5 => "etcd_not_found",
        8 => "etcd_resource_exhausted",
        9 => "etcd_failed_precondition",
        13 => "etcd_internal",
        14 => "etcd_unavailable",
        _ => "etcd_error",
    }
}

/// A client of etcd's JSON gateway at a list of members. Any member serves puts and
/// linearizable reads (a follower forwards them to its leader), so there are no redirects to
/// follow; a member that refuses the connection is skipped for the next one.
pub struct EtcdClient {
    http: reqwest::Client,
    endpoints: Vec<Url>,
    /// Index of the endpoint requests start at.
    preferred: usize,
}

impl EtcdClient {
    /// A client of `endpoints` (host:port or URLs), with `timeout` per request.
    pub fn new(endpoints: &[String], timeout: std::time::Duration) -> Result<Self, ClientError> {
        let endpoints = endpoints
            .iter()
            .map(|e| e.trim().trim_end_matches('/'))
            .filter(|e| !e.is_empty())
            .map(|e| {
                let base = if e.contains("://") {
                    e.to_string()
                } else {
                    format!("http://{e}")
                };
                Url::parse(&base)
                    .map_err(|err| ClientError::Usage(format!("bad endpoint {e:?}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(ClientError::Usage("no endpoints given".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build HTTP client: {e}")))?;
        Ok(EtcdClient {
            http,
            endpoints,
            preferred: 0,
        })
    }

    /// Start requests at endpoint `i` (taken modulo the number of endpoints).
    pub fn prefer(&mut self, i: usize) {
        self.preferred = i % self.endpoints.len();
    }

    /// The position of the member that leads, if one of the endpoints says it does.
    pub async fn find_leader(&self) -> Option<usize> {
        for (i, base) in self.endpoints.iter().enumerate() {
            let Ok(url) = base.join("/v3/maintenance/status") else {
                continue;
            };
            let Ok(resp) = self.http.post(url).body("{}").send().await else {
                continue;
            };
            if let Ok(body) = resp.json::<Value>().await
                && status_is_leader(&body)
            {
                return Some(i);
            }
        }
        None
    }

    /// `POST /v3/kv/put`.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        self.post("/v3/kv/put", &put_body(key, value))
            .await
            .map(drop)
    }

    /// `POST /v3/kv/range` of one key: its value, or `None` when it is missing.
    pub async fn get(
        &mut self,
        key: &str,
        serializable: bool,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let body = self
            .post("/v3/kv/range", &range_body(key, serializable))
            .await?;
        range_value(&body)
    }

    /// Posts `body` to `path` at the preferred endpoint, moving on to the next when one
    /// refuses the connection (the request never reached it, so sending it elsewhere is safe).
    /// Any other transport error ends the request: it may have been applied.
    async fn post(&mut self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = body.to_string().into_bytes();
        let n = self.endpoints.len();
        let mut last = ClientError::Unreachable(String::new());
        for i in 0..n {
            let idx = (self.preferred + i) % n;
            let url = self.endpoints[idx]
                .join(path)
                .map_err(|e| ClientError::Usage(format!("bad path {path}: {e}")))?;
            let sent = self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) if e.is_connect() => {
                    last = ClientError::Unreachable(format!("{url}: {e}"));
                    continue;
                }
                Err(e) => return Err(ClientError::Unreachable(format!("{url}: {e}"))),
            };
            self.preferred = idx;
            return read_reply(resp).await;
        }
        Err(last)
    }
}

/// A 2xx reply's JSON, or the gateway's error (`{"error"|"message", "code"}`) as a
/// [`ClientError::Server`] whose code names the gRPC status.
async fn read_reply(resp: reqwest::Response) -> Result<Value, ClientError> {
    let (status, raw, body) = crate::client::json_body(resp).await?;
    if status.is_success() {
        return Ok(body);
    }
    let msg = ["message", "error"]
        .iter()
        .find_map(|f| body.get(*f).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let code = body.get("code").and_then(Value::as_u64).unwrap_or(0);
    Err(ClientError::Server {
        status: status.as_u16(),
        code: grpc_code_name(code).to_string(),
        msg,
        body: raw,
        retry_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_etcd_request_bodies_are_the_gateways_base64_json() {
        assert_eq!(
            put_body("bench-7", "xyz"),
            json!({"key": "YmVuY2gtNw==", "value": "eHl6"})
        );
        assert_eq!(
            range_body("bench-7", false),
            json!({"key": "YmVuY2gtNw==", "serializable": false})
        );
        assert_eq!(
            range_body("k", true),
            json!({"key": "aw==", "serializable": true})
        );
        // The wire form is what etcd parses: a JSON object with string fields.
        let wire = put_body("a/b c", "").to_string();
        assert_eq!(wire, r#"{"key":"YS9iIGM=","value":""}"#);
    }

    #[test]
    fn bench_etcd_range_replies_decode() {
        let hit = json!({"header": {"revision": "5"}, "kvs": [{"key": "aw==", "value": "eHl6",
            "create_revision": "2", "mod_revision": "5", "version": "4"}], "count": "1"});
        assert_eq!(range_value(&hit).unwrap(), Some(b"xyz".to_vec()));
        let miss = json!({"header": {"revision": "5"}});
        assert_eq!(range_value(&miss).unwrap(), None);
        let empty_value = json!({"kvs": [{"key": "aw=="}], "count": "1"});
        assert_eq!(range_value(&empty_value).unwrap(), Some(Vec::new()));
        assert!(range_value(&json!({"kvs": [{"value": "!!"}]})).is_err());
        assert!(range_value(&json!({"kvs": 3})).is_err());
    }

    #[test]
    fn bench_etcd_status_names_the_leader() {
        let leader = json!({"header": {"member_id": "123"}, "leader": "123"});
        let follower = json!({"header": {"member_id": "456"}, "leader": "123"});
        assert!(status_is_leader(&leader));
        assert!(!status_is_leader(&follower));
        assert!(!status_is_leader(&json!({"error": "no"})));
        assert_eq!(grpc_code_name(14), "etcd_unavailable");
    }
}
