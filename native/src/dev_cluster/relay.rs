//! One stream of the whole dev cluster for the page (`GET /dev/events`): every node's
//! `/debug/events`, relayed, plus what the playground itself knows (a node's stream ended, a
//! process was killed or started, a link cut or healed).
//!
//! The playground, not the page, follows the nodes' streams: it reconnects to a killed node
//! once it is back, so the page holds one same-origin `EventSource` that never has to chase
//! processes, ports or CORS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{ClusterView, DevCluster};

/// How long after a node's stream ended (or could not be opened) it is tried again.
const RECONNECT: Duration = Duration::from_millis(200);
/// How long a node's stream may stay silent (it sends a keep-alive every 10 s) before the node
/// counts as down.
const SILENT: Duration = Duration::from_secs(15);

/// One message of the merged stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A node's status event, its JSON as the node sent it.
    Status(String),
    /// Node `id`'s stream ended or cannot be opened: it is down or unreachable.
    Down(String),
    /// The processes and links changed.
    Cluster(ClusterView),
}

impl Message {
    /// The SSE event name and data.
    pub fn event(&self) -> (&'static str, String) {
        match self {
            Message::Status(json) => ("status", json.clone()),
            Message::Down(id) => ("down", serde_json::json!({ "id": id }).to_string()),
            Message::Cluster(view) => (
                "cluster",
                serde_json::to_string(view).unwrap_or_else(|_| "{}".into()),
            ),
        }
    }
}

/// The relay: the last status of every node, and the stream of what follows.
pub struct Relay {
    cluster: Arc<DevCluster>,
    /// Node id → its last status JSON (`None`: down).
    latest: Mutex<BTreeMap<String, Option<String>>>,
    tx: broadcast::Sender<Message>,
}

impl Relay {
    /// Starts following every node of `cluster` (one task per node, for the life of the
    /// process) and its process and link changes.
    pub async fn start(cluster: Arc<DevCluster>) -> Arc<Relay> {
        let (tx, _) = broadcast::channel(256);
        let relay = Arc::new(Relay {
            cluster: Arc::clone(&cluster),
            latest: Mutex::new(BTreeMap::new()),
            tx,
        });
        // Plain http, no proxy, and no overall timeout: a stream lasts as long as the node.
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        for (id, addr) in cluster.endpoints().await {
            tokio::spawn(follow(Arc::clone(&relay), client.clone(), id, addr));
        }
        let mut changes = cluster.subscribe();
        let me = Arc::clone(&relay);
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(view) => {
                        let _ = me.tx.send(Message::Cluster(view));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = me.tx.send(Message::Cluster(me.cluster.view().await));
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        relay
    }

    /// What a new subscriber starts from (the processes and links, then every node's last
    /// status), and the stream of what follows.
    pub async fn subscribe(&self) -> (Vec<Message>, broadcast::Receiver<Message>) {
        // Subscribed first: nothing sent while the snapshot is taken is missed (at worst a
        // status arrives twice, which the page takes as it is).
        let rx = self.tx.subscribe();
        (self.snapshot().await, rx)
    }

    /// The processes and links, then every node's last status.
    pub async fn snapshot(&self) -> Vec<Message> {
        let mut out = vec![Message::Cluster(self.cluster.view().await)];
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, status) in latest.iter() {
            out.push(match status {
                Some(json) => Message::Status(json.clone()),
                None => Message::Down(id.clone()),
            });
        }
        out
    }

    fn status(&self, id: &str, json: String) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.insert(id.to_string(), Some(json.clone()));
        let _ = self.tx.send(Message::Status(json));
    }

    /// Node `id` is down; said once per outage, not on every failed reconnection. Returns
    /// whether this is news.
    fn down(&self, id: &str) -> bool {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let news = latest.insert(id.to_string(), None) != Some(None);
        if news {
            let _ = self.tx.send(Message::Down(id.to_string()));
        }
        news
    }
}

/// Follows node `id`'s `/debug/events` for ever, reconnecting after [`RECONNECT`].
async fn follow(relay: Arc<Relay>, client: reqwest::Client, id: String, addr: SocketAddr) {
    let url = format!("http://{addr}{}", crate::debug_events::PATH);
    loop {
        if let Ok(mut resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            let mut buf: Vec<u8> = Vec::new();
            // A node sends a keep-alive every 10 s: silence past SILENT means it hangs (say,
            // SIGSTOPped), which the page should see as down too.
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout(SILENT, resp.chunk()).await {
                buf.extend_from_slice(&chunk);
                for event in take_events(&mut buf) {
                    if let Some(data) = data_of(&event) {
                        relay.status(&id, data);
                    }
                }
            }
        }
        if relay.down(&id) {
            // It may have exited on its own: the process view says whether it runs.
            let _ = relay.tx.send(Message::Cluster(relay.cluster.view().await));
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Removes every complete server-sent event (up to a blank line) from the front of `buf`.
pub fn take_events(buf: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let event: Vec<u8> = buf.drain(..end + 2).collect();
        out.push(String::from_utf8_lossy(&event[..end]).into_owned());
    }
    out
}

/// The data of an event's `data:` lines (joined by newlines, as SSE says), if it has any.
pub fn data_of(event: &str) -> Option<String> {
    let lines: Vec<&str> = event
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_and_keep_only_their_data() {
        let mut buf =
            b"event: status\nretry: 500\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: st".to_vec();
        let events = take_events(&mut buf);
        assert_eq!(events.len(), 2);
        assert_eq!(data_of(&events[0]).as_deref(), Some("{\"a\":1}"));
        // A comment has no data; the incomplete event waits for the rest.
        assert_eq!(data_of(&events[1]), None);
        assert_eq!(buf, b"event: st");
        buf.extend_from_slice(b"atus\ndata:x\ndata: y\n\n");
        let events = take_events(&mut buf);
        assert_eq!(data_of(&events[0]).as_deref(), Some("x\ny"));
        assert!(buf.is_empty());
    }
}
