//! The playground's dev cluster (`playground --dev-cluster`): three kvserver processes this
//! process starts and owns, with every peer link through a proxy of its own ([`link`]), so the
//! page's live mode can kill, restart, cut and heal the real thing (docs/playground.md, "Live
//! mode").
//!
//! Why the playground owns the processes: kill is a SIGKILL of its own child, restart a spawn
//! with the same arguments and data dir, and nothing of it lives in kvserver. Why proxies for
//! cut/heal rather than a hidden kvserver switch: a plain kvserver then has no dev route at all
//! to forget to turn off, and a cut is a real TCP failure the transport must live with.
//!
//! Ports from `base` (7000 by default, as scripts/cluster.sh): clients on base+1..3, peer
//! listeners on base+11..13, link i→j on base+20+3(i-1)+j (7022-7028). Base 0 picks free
//! ports (for tests): then use a fresh data dir each time, since a node's data dir remembers
//! its peers' addresses.

pub mod link;
pub mod relay;
pub mod routes;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, broadcast};

use link::Link;

/// The cluster's nodes, n1..n3.
pub const SIZE: usize = 3;

/// How the dev cluster is started.
#[derive(Clone, Debug)]
pub struct DevConfig {
    /// The kvserver binary.
    pub kvserver: PathBuf,
    /// Node `nI` keeps its data in `data_dir/nI` and logs to `data_dir/nI.log`.
    pub data_dir: PathBuf,
    /// The port plan's base (see the module doc); 0: free ports.
    pub base_port: u16,
    /// Extra arguments for every node.
    pub extra_args: Vec<String>,
}

/// What went wrong with a dev control: the HTTP status and error code come from it.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// No node or link of that name.
    #[error("{0}")]
    NotFound(String),
    /// The node is not in a state the action applies to (killing a dead node, ...).
    #[error("{0}")]
    Conflict(String),
    /// Spawning or signalling a process, binding a port.
    #[error("{0}")]
    Io(String),
}

/// One node: its fixed identity and, while it runs, its process.
#[derive(Debug)]
struct Node {
    id: String,
    addr: SocketAddr,
    peer_addr: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Starts after the first.
    restarts: u32,
}

impl Node {
    /// Whether its process runs (reaping it if it exited on its own).
    fn alive(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }
}

/// One node in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Its id.
    pub id: String,
    /// Its client API.
    pub addr: String,
    /// Its peer listener.
    pub peer_addr: String,
    /// Its process runs.
    pub alive: bool,
    /// The process id, while it runs.
    pub pid: Option<u32>,
    /// Starts after the first.
    pub restarts: u32,
}

/// One directed link in [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkInfo {
    /// The sender.
    pub from: String,
    /// The receiver.
    pub to: String,
    /// The proxy's address (what `from` sends to).
    pub addr: String,
    /// The link is cut.
    pub cut: bool,
}

/// `GET /dev/cluster`: the processes and links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// Always true.
    pub ok: bool,
    /// The nodes, n1 first.
    pub nodes: Vec<NodeInfo>,
    /// Every directed link.
    pub links: Vec<LinkInfo>,
}

/// The running dev cluster. Dropping it kills the nodes (their processes are killed on drop).
pub struct DevCluster {
    config: DevConfig,
    nodes: Mutex<Vec<Node>>,
    /// link(from → to), by node ids.
    links: BTreeMap<(String, String), Link>,
    /// Every change of a process or link, as a [`ClusterView`] (for [`relay`]).
    changes: broadcast::Sender<ClusterView>,
}

/// Binds a loopback port: `port`, or a free one for 0.
async fn bind(port: u16) -> Result<TcpListener, DevError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| DevError::Io(format!("cannot listen on 127.0.0.1:{port}: {e}")))
}

/// `base + offset`, or 0 (a free port) when `base` is 0.
fn port(base: u16, offset: u16) -> Result<u16, DevError> {
    match base {
        0 => Ok(0),
        b => b
            .checked_add(offset)
            .ok_or_else(|| DevError::Io(format!("--dev-base-port {b} leaves no room"))),
    }
}

/// A free loopback address for a node to bind (or `base + offset`): with base 0 the port is
/// bound once to learn a free one, then released for the node.
async fn node_addr(base: u16, offset: u16) -> Result<SocketAddr, DevError> {
    let p = port(base, offset)?;
    if p != 0 {
        return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    let l = bind(0).await?;
    l.local_addr().map_err(|e| DevError::Io(e.to_string()))
}

impl DevCluster {
    /// Binds the links, then starts every node.
    pub async fn start(config: DevConfig) -> Result<DevCluster, DevError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            DevError::Io(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let base = config.base_port;
        let ids: Vec<String> = (1..=SIZE).map(|i| format!("n{i}")).collect();
        let mut addrs = Vec::new();
        for i in 1..=SIZE as u16 {
            addrs.push((node_addr(base, i).await?, node_addr(base, 10 + i).await?));
        }
        let mut links = BTreeMap::new();
        for (i, from) in ids.iter().enumerate() {
            for (j, to) in ids.iter().enumerate() {
                if i == j {
                    continue;
                }
                let offset = 20 + 3 * i as u16 + j as u16 + 1;
                let listener = bind(port(base, offset)?).await?;
                let link = Link::start(listener, addrs[j].1)
                    .map_err(|e| DevError::Io(format!("link {from}->{to}: {e}")))?;
                links.insert((from.clone(), to.clone()), link);
            }
        }
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (addr, peer_addr) = addrs[i];
            // Itself at its own peer address, every other node at the link towards it.
            let peers = ids
                .iter()
                .enumerate()
                .map(|(j, other)| match links.get(&(id.clone(), other.clone())) {
                    Some(link) => format!("{other}={}", link.addr()),
                    None => format!("{other}={}", addrs[j].1),
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut args: Vec<String> = [
                "--id",
                id,
                "--addr",
                &addr.to_string(),
                "--peer-addr",
                &peer_addr.to_string(),
                "--data-dir",
                &config.data_dir.join(id).display().to_string(),
                "--peers",
                &peers,
            ]
            .map(String::from)
            .to_vec();
            args.extend(config.extra_args.iter().cloned());
            nodes.push(Node {
                id: id.clone(),
                addr,
                peer_addr,
                args,
                log: config.data_dir.join(format!("{id}.log")),
                child: None,
                restarts: 0,
            });
        }
        let (changes, _) = broadcast::channel(64);
        let cluster = DevCluster {
            config,
            nodes: Mutex::new(nodes),
            links,
            changes,
        };
        {
            let mut nodes = cluster.nodes.lock().await;
            for node in nodes.iter_mut() {
                cluster.spawn(node)?;
            }
        }
        Ok(cluster)
    }

    /// Starts `node`'s process, its output appended to its log.
    fn spawn(&self, node: &mut Node) -> Result<(), DevError> {
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&node.log)
                .map_err(|e| DevError::Io(format!("{}: {e}", node.log.display())))
        };
        let (out, err) = (open_log()?, open_log()?);
        let child = Command::new(&self.config.kvserver)
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // The playground going away takes its nodes with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                DevError::Io(format!(
                    "cannot start {} for {}: {e}",
                    self.config.kvserver.display(),
                    node.id
                ))
            })?;
        tracing::info!(node = %node.id, pid = ?child.id(), addr = %node.addr, "dev cluster: started");
        node.child = Some(child);
        Ok(())
    }

    /// The processes and links now.
    pub async fn view(&self) -> ClusterView {
        let mut nodes = self.nodes.lock().await;
        self.view_of(&mut nodes)
    }

    fn view_of(&self, nodes: &mut [Node]) -> ClusterView {
        ClusterView {
            ok: true,
            nodes: nodes
                .iter_mut()
                .map(|n| NodeInfo {
                    alive: n.alive(),
                    pid: n.child.as_ref().and_then(|c| c.id()),
                    id: n.id.clone(),
                    addr: n.addr.to_string(),
                    peer_addr: n.peer_addr.to_string(),
                    restarts: n.restarts,
                })
                .collect(),
            links: self
                .links
                .iter()
                .map(|((from, to), l)| LinkInfo {
                    from: from.clone(),
                    to: to.clone(),
                    addr: l.addr().to_string(),
                    cut: l.is_cut(),
                })
                .collect(),
        }
    }

    /// Every node's id and client address, n1 first.
    pub async fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        let nodes = self.nodes.lock().await;
        nodes.iter().map(|n| (n.id.clone(), n.addr)).collect()
    }

    /// Subscribes to every change [`kill`](Self::kill), [`restart`](Self::restart) and
    /// [`set_cut`](Self::set_cut) make.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterView> {
        self.changes.subscribe()
    }

    /// The view after a change, sent to every subscriber too.
    fn announce(&self, nodes: &mut [Node]) -> ClusterView {
        let view = self.view_of(nodes);
        // Nobody listening is fine.
        let _ = self.changes.send(view.clone());
        view
    }

    /// SIGKILLs node `id` (a crash: no hand-over, whatever was not fsynced is lost) and
    /// waits for it to exit.
    pub async fn kill(&self, id: &str) -> Result<ClusterView, DevError> {
        let mut nodes = self.nodes.lock().await;
        let node = find(&mut nodes, id)?;
        if !node.alive() {
            return Err(DevError::Conflict(format!("{id} is not running")));
        }
        if let Some(mut child) = node.child.take() {
            child
                .kill()
                .await
                .map_err(|e| DevError::Io(format!("cannot kill {id}: {e}")))?;
        }
        tracing::info!(node = %id, "dev cluster: killed");
        Ok(self.announce(&mut nodes))
    }

    /// Starts node `id` again, with the same arguments and data dir.
    pub async fn restart(&self, id: &str) -> Result<ClusterView, DevError> {
        let mut nodes = self.nodes.lock().await;
        let node = find(&mut nodes, id)?;
        if node.alive() {
            return Err(DevError::Conflict(format!("{id} is running already")));
        }
        node.restarts += 1;
        self.spawn(node)?;
        Ok(self.announce(&mut nodes))
    }

    /// Cuts (or heals) both directions between nodes `a` and `b`.
    pub async fn set_cut(&self, a: &str, b: &str, cut: bool) -> Result<ClusterView, DevError> {
        let ab = self.links.get(&(a.to_string(), b.to_string()));
        let ba = self.links.get(&(b.to_string(), a.to_string()));
        let (Some(ab), Some(ba)) = (ab, ba) else {
            return Err(DevError::NotFound(format!(
                "no link between {a} and {b} in the dev cluster"
            )));
        };
        ab.set_cut(cut);
        ba.set_cut(cut);
        tracing::info!(%a, %b, cut, "dev cluster: link");
        let mut nodes = self.nodes.lock().await;
        Ok(self.announce(&mut nodes))
    }

    /// Kills every node and waits for them to exit.
    pub async fn stop(&self) {
        let mut nodes = self.nodes.lock().await;
        for node in nodes.iter_mut() {
            if let Some(mut child) = node.child.take()
                && let Err(e) = child.kill().await
            {
                tracing::warn!(node = %node.id, error = %e, "dev cluster: cannot kill");
            }
        }
    }
}

/// Node `id` of `nodes`.
fn find<'a>(nodes: &'a mut [Node], id: &str) -> Result<&'a mut Node, DevError> {
    nodes
        .iter_mut()
        .find(|n| n.id == id)
        .ok_or_else(|| DevError::NotFound(format!("no node {id} in the dev cluster")))
}
