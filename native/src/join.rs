//! How a node started with `--join` learns where the members are: it asks the nodes it was
//! given (`GET /cluster?local=true`) for their address tables, until one answers with a
//! configuration, and adds what it did not know to its own table ([`PeerTable::learn`]).
//!
//! Until then it cannot answer the leader that adds it (the leader retries; nothing is lost),
//! so the asking goes on, with a growing pause, for as long as the node runs. Members added
//! later reach it through the configuration entries themselves, which carry their addresses.
//!
//! The members' client API may want TLS and a token ([`JoinAccess`]): with `--cert` this node
//! serves TLS, so its cluster does and a bare `host:port` means https; it trusts `--cacert`,
//! shows its `--cert` as client certificate, and sends the token of `--join-token-file`
//! (`GET /cluster` is an admin route). A refused token is logged once as a warning.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use raftkv_core::NodeId;
use serde_json::Value;

use crate::credentials::Credentials;
use crate::peers::PeerTable;

/// The first pause between two rounds over the `--join` addresses; it doubles up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two rounds.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// How a joining node reaches the members' client API: over https or http, and with what
/// credentials (`--cacert`, its `--cert`/`--key` as client certificate, `--join-token-file`).
#[derive(Clone, Debug, Default)]
pub struct JoinAccess {
    /// An address without a scheme means https (this node serves TLS, so its cluster does).
    pub https: bool,
    /// The CA trusted, the certificate shown and the token sent.
    pub creds: Credentials,
}

/// Starts asking `endpoints` for the members' addresses, on the current runtime. The task ends
/// once one answered, or when the table is dropped (the server stopped).
pub fn spawn(
    endpoints: Vec<String>,
    table: &Arc<PeerTable>,
    access: JoinAccess,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(discover(endpoints, Arc::downgrade(table), access))
}

async fn discover(endpoints: Vec<String>, table: Weak<PeerTable>, access: JoinAccess) {
    let http = match access
        .creds
        .http_builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client to join the cluster");
            return;
        }
    };
    let mut pause = FIRST_PAUSE;
    // A refused token does not fix itself: say so once, loudly, rather than every round.
    let mut told_refused = false;
    loop {
        for ep in &endpoints {
            let addrs = match ask(&http, &access, ep).await {
                Ok(addrs) => addrs,
                Err(Asked::Refused(e)) => {
                    if !told_refused {
                        tracing::warn!(endpoint = %ep, error = %e, "join: the member refused this node's token (--join-token-file needs an admin token)");
                        told_refused = true;
                    }
                    continue;
                }
                Err(Asked::Failed(e)) => {
                    tracing::debug!(endpoint = %ep, error = %e, "join: no member list yet");
                    continue;
                }
            };
            let Some(table) = table.upgrade() else { return };
            let learnt = addrs.len();
            // The table saves itself (an fsync): off the async workers.
            let added = tokio::task::spawn_blocking(move || table.learn(addrs))
                .await
                .unwrap_or(0);
            tracing::info!(endpoint = %ep, members = learnt, added, "join: learnt the members' addresses");
            return;
        }
        if table.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Why a member gave no address table.
enum Asked {
    /// It refused this node's token (401 or 403).
    Refused(String),
    /// Anything else: unreachable, no configuration yet, an odd answer.
    Failed(String),
}

/// The address table of the node at `endpoint`, if it has a configuration.
async fn ask(
    http: &reqwest::Client,
    access: &JoinAccess,
    endpoint: &str,
) -> Result<BTreeMap<NodeId, String>, Asked> {
    let base = if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_string()
    } else if access.https {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    let resp = access
        .creds
        .authorize(http.get(format!("{base}/cluster?local=true")))
        .send()
        .await
        .map_err(|e| Asked::Failed(access.creds.describe(&e)))?;
    let status = resp.status();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        let body = resp.text().await.unwrap_or_default();
        return Err(Asked::Refused(format!("HTTP {status}: {body}")));
    }
    if !status.is_success() {
        return Err(Asked::Failed(format!("HTTP {status}")));
    }
    let body: Value = resp
        .json()
        .await
        .map_err(|e| Asked::Failed(e.to_string()))?;
    let addrs = members_of(&body);
    if addrs.is_empty() {
        return Err(Asked::Failed("it knows no member yet".into()));
    }
    Ok(addrs)
}

/// The `(id, addr)` of each member in a `GET /cluster` body that has both.
fn members_of(body: &Value) -> BTreeMap<NodeId, String> {
    body.get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let id = m.get("id")?.as_str().filter(|s| !s.is_empty())?;
            let addr = m.get("addr")?.as_str().filter(|s| !s.is_empty())?;
            Some((NodeId::from(id), addr.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_with_an_id_and_an_address_are_taken_and_anything_else_is_skipped() {
        let body = json!({"members": [
            {"id": "n1", "addr": "h:1", "role": "voter"},
            {"id": "n2", "addr": null},
            {"id": "", "addr": "h:3"},
            {"addr": "h:4"},
            "garbage",
        ]});
        let got = members_of(&body);
        assert_eq!(got.len(), 1);
        assert_eq!(got[&NodeId::from("n1")], "h:1");
        assert!(members_of(&json!({"ok": false})).is_empty());
        assert!(members_of(&json!([1, 2])).is_empty());
    }
}
