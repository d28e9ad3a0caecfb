//! A cluster of real `kvserver` processes on loopback ports, each with its own temp data dir,
//! optionally wired through one [`LinkProxy`] per directed link.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::client::{Access, KvClient};
use crate::proxy::LinkProxy;
use crate::wait::poll_until;

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Number of nodes, named n1..nN. One node runs without `--peers`.
    pub size: usize,
    /// Route every node-to-node link through its own proxy (ignored for one node).
    pub proxies: bool,
    /// Extra kvserver arguments for every node (e.g. `--snapshot-threshold 10`); `{id}` in
    /// one is replaced by the node's id.
    pub extra_args: Vec<String>,
    /// How long a started node may take to answer `/healthz`.
    pub start_timeout: Duration,
    /// How [`Cluster::client`] reaches the nodes (TLS, token): what the extra arguments ask
    /// for, e.g. `--cert` and `--tokens-file`.
    pub access: Access,
    /// Environment variables every node's process gets (e.g. `RUST_LOG`), over the harness's
    /// default `RUST_LOG=info`.
    pub env: Vec<(String, String)>,
    /// The kvserver binary every node runs, e.g. [`crate::bin::kvserver_failpoints`]'s;
    /// `None`: [`crate::bin::kvserver`].
    pub bin: Option<PathBuf>,
    /// Node `i`'s data dir, where given (e.g. on a mounted `raftkv-lossyfs`); the others, and
    /// all by default, get one under the cluster's temp dir. Nodes added later are not covered.
    pub data_dirs: Vec<PathBuf>,
}

impl ClusterConfig {
    /// `size` nodes, proxies on, no extra arguments.
    pub fn new(size: usize) -> Self {
        ClusterConfig {
            size,
            proxies: true,
            extra_args: Vec::new(),
            start_timeout: Duration::from_secs(20),
            access: Access::default(),
            env: Vec::new(),
            bin: None,
            data_dirs: Vec::new(),
        }
    }
}

/// One node: its fixed identity and, while it runs, its process.
#[derive(Debug)]
struct NodeProc {
    id: String,
    /// The client address the node binds; stays the same across restarts.
    addr: SocketAddr,
    /// The peer address the node binds (`--peer-addr`); the same across restarts.
    peer_addr: SocketAddr,
    data_dir: PathBuf,
    /// stdout and stderr of every run, appended.
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// How the last run ended when it ended on its own (not by [`Cluster::kill`] or
    /// [`Cluster::stop`]); kept for error messages.
    exited: Option<ExitStatus>,
    /// The port reservations from [`reserve_addr`], held until the first spawn so that
    /// nothing else in this process (a proxy, another node) is handed the node's ports.
    reserved: Vec<TcpListener>,
}

impl NodeProc {
    /// Node `id` at `addr` (peers at `peer_addr`) with its data dir and log under `root`,
    /// started with `--id`, `--addr`, `--peer-addr`, `--data-dir` and then `args`.
    fn new(root: &Path, id: &str, (addr, peer_addr): Addrs, args: Vec<String>) -> Self {
        let data_dir = root.join(id);
        let mut all = vec![
            "--id".to_string(),
            id.to_string(),
            "--addr".to_string(),
            addr.to_string(),
            "--peer-addr".to_string(),
            peer_addr.to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
        ];
        // `{id}` in an argument is the node's id: per-node files such as certificates.
        all.extend(args.into_iter().map(|a| a.replace("{id}", id)));
        NodeProc {
            id: id.to_string(),
            addr,
            peer_addr,
            data_dir,
            log: root.join(format!("{id}.log")),
            args: all,
            child: None,
            exited: None,
            reserved: Vec::new(),
        }
    }

    /// Moves the node's data dir to `dir` (its `--data-dir` too).
    fn set_data_dir(&mut self, dir: &Path) {
        self.data_dir = dir.to_path_buf();
        if let Some(pos) = self.args.iter().position(|a| a == "--data-dir") {
            self.args[pos + 1] = dir.display().to_string();
        }
        debug_assert!(self.args.contains(&dir.display().to_string()));
    }
}

/// Running kvserver processes. Dropping it kills them (SIGKILL) and deletes the data dirs.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    nodes: Vec<NodeProc>,
    /// proxy(from → to), keyed by node positions.
    links: BTreeMap<(usize, usize), LinkProxy>,
    start_timeout: Duration,
    /// The extra arguments every node gets, nodes added later included.
    extra_args: Vec<String>,
    /// How clients reach the nodes.
    access: Access,
    /// Every node's extra environment.
    env: Vec<(String, String)>,
    /// Holds every data dir and log; declared last so it is deleted after the processes die.
    root: TempDir,
}

/// A node's client and peer addresses.
type Addrs = (SocketAddr, SocketAddr);

/// A node's two free loopback ports (see [`reserve_addr`]).
fn reserve_addrs() -> Result<(Addrs, Vec<TcpListener>), String> {
    let (a, la) = reserve_addr()?;
    let (p, lp) = reserve_addr()?;
    Ok(((a, p), vec![la, lp]))
}

/// A free loopback port, bound until the node is spawned. Between the release and the node's own
/// bind another process may still take it; [`Cluster::start`] retries when that happens.
fn reserve_addr() -> Result<(SocketAddr, TcpListener), String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| Ok((l.local_addr()?, l)))
        .map_err(|e| format!("finding a free port: {e}"))
}

/// How many times [`Cluster::start`] tries fresh ports when a node lost its port to a race.
const START_ATTEMPTS: usize = 3;

/// Whether a node's log says it could not bind its address.
fn lost_port_race(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("address in use")
}

impl Cluster {
    /// Builds (once per process) and starts `config.size` nodes, and waits until each answers
    /// `/healthz`. Must run inside a tokio runtime (the proxies are tasks). A node that could not
    /// bind its port because another process took it first makes a new cluster on new ports.
    pub async fn start(config: ClusterConfig) -> Result<Cluster, String> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&config).await {
                Err(e) if lost_port_race(&e) && attempt < START_ATTEMPTS => {
                    eprintln!("cluster start lost a port race (attempt {attempt}); retrying: {e}");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn start_once(config: &ClusterConfig) -> Result<Cluster, String> {
        if config.size == 0 {
            return Err("a cluster needs at least one node".into());
        }
        let bin = match &config.bin {
            Some(bin) => bin.clone(),
            None => crate::bin::kvserver()?,
        };
        let root = tempfile::Builder::new()
            .prefix("raftkv-cluster-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let ids: Vec<String> = (1..=config.size).map(|i| format!("n{i}")).collect();
        let (addrs, mut reservations): (Vec<Addrs>, Vec<Vec<TcpListener>>) = ids
            .iter()
            .map(|_| reserve_addrs())
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let peer_addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.1).collect();

        let mut links = BTreeMap::new();
        if config.size > 1 && config.proxies {
            for from in 0..config.size {
                for (to, &target) in peer_addrs.iter().enumerate() {
                    if from != to {
                        let proxy = LinkProxy::start(target)
                            .await
                            .map_err(|e| format!("starting proxy {from}->{to}: {e}"))?;
                        links.insert((from, to), proxy);
                    }
                }
            }
        }

        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let mut args = Vec::new();
            if config.size > 1 {
                args.push("--peers".to_string());
                args.push(peers_arg(i, &ids, &peer_addrs, |from, to| {
                    links.get(&(from, to)).map(LinkProxy::addr)
                }));
            }
            args.extend(config.extra_args.iter().cloned());
            let mut node = NodeProc::new(root.path(), id, addrs[i], args);
            if let Some(dir) = config.data_dirs.get(i) {
                node.set_data_dir(dir);
            }
            nodes.push(node);
        }
        for (node, reservation) in nodes.iter_mut().zip(reservations.drain(..)) {
            node.reserved = reservation;
        }

        let mut cluster = Cluster {
            bin,
            nodes,
            links,
            start_timeout: config.start_timeout,
            extra_args: config.extra_args.clone(),
            env: config.env.clone(),
            access: config.access.clone(),
            root,
        };
        for i in 0..config.size {
            cluster.spawn(i)?;
        }
        for i in 0..config.size {
            cluster.wait_healthy(i).await?;
        }
        Ok(cluster)
    }

    /// Starts a new node `n{size+1}` that joins the running cluster (`--join` with every
    /// node's address, no `--peers`, the cluster's extra arguments) and waits until it answers
    /// `/healthz`; returns its position. Its links are not proxied. It is not a member until
    /// the leader adds it.
    pub async fn add_node(&mut self) -> Result<usize, String> {
        let i = self.nodes.len();
        let id = format!("n{}", i + 1);
        let (addrs, reservation) = reserve_addrs()?;
        let join: Vec<String> = self.nodes.iter().map(|n| n.addr.to_string()).collect();
        let mut args = vec!["--join".to_string(), join.join(",")];
        args.extend(self.extra_args.iter().cloned());
        let mut node = NodeProc::new(self.root.path(), &id, addrs, args);
        node.reserved = reservation;
        self.nodes.push(node);
        self.spawn(i)?;
        self.wait_healthy(i).await?;
        Ok(i)
    }

    /// Sets node `i`'s `flag` to `value` for its next start (replacing the flag's value, or
    /// adding the flag), or removes the flag and its value with `None`.
    pub fn set_arg(&mut self, i: usize, flag: &str, value: Option<&str>) {
        let args = &mut self.nodes[i].args;
        if let Some(pos) = args.iter().position(|a| a == flag) {
            args.drain(pos..(pos + 2).min(args.len()));
        }
        if let Some(v) = value {
            args.push(flag.to_string());
            args.push(v.to_string());
        }
    }

    /// The arguments node `i` starts with.
    pub fn args(&self, i: usize) -> &[String] {
        &self.node(i).args
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, i: usize) -> &NodeProc {
        &self.nodes[i]
    }

    /// The id of node `i` (`n{i+1}`).
    pub fn id(&self, i: usize) -> &str {
        &self.node(i).id
    }

    /// The address node `i` serves clients on.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.node(i).addr
    }

    /// The address node `i` serves peers on (what `--peers` and `kvctl member add` name).
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        self.node(i).peer_addr
    }

    /// Node `i`'s data dir.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.node(i).data_dir
    }

    /// The directory holding every data dir and log.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The output of every run of node `i` so far, for failure messages.
    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(&self.node(i).log).unwrap_or_default()
    }

    /// A new client of node `i`, reaching it as the cluster's [`ClusterConfig::access`] says.
    pub fn client(&self, i: usize) -> KvClient {
        self.client_with(i, &self.access)
    }

    /// How [`Cluster::client`] reaches the nodes.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// A new client of node `i` reaching it as `access` says.
    pub fn client_with(&self, i: usize, access: &Access) -> KvClient {
        KvClient::with_access(&self.addr(i).to_string(), access)
    }

    /// Node `i`'s client API as kvctl takes it: `https://host:port` with TLS, else `host:port`.
    pub fn endpoint(&self, i: usize) -> String {
        if self.access.https {
            format!("https://{}", self.addr(i))
        } else {
            self.addr(i).to_string()
        }
    }

    /// The proxy carrying node `from`'s messages to node `to`, if links are proxied.
    pub fn link(&self, from: usize, to: usize) -> Option<&LinkProxy> {
        self.links.get(&(from, to))
    }

    /// Cuts every link into and out of node `i`.
    pub fn isolate(&self, i: usize) {
        for ((from, to), proxy) in &self.links {
            if *from == i || *to == i {
                proxy.cut();
            }
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_between(&self, a: usize, b: usize) {
        for key in [(a, b), (b, a)] {
            if let Some(p) = self.links.get(&key) {
                p.cut();
            }
        }
    }

    /// Heals every link and removes every delay and loss.
    pub fn heal_all(&self) {
        for proxy in self.links.values() {
            proxy.heal();
            proxy.set_delay(Duration::ZERO);
            proxy.set_loss(0.0);
        }
    }

    /// Every proxied link: ((from, to), proxy).
    pub fn links(&self) -> impl Iterator<Item = ((usize, usize), &LinkProxy)> {
        self.links.iter().map(|(k, p)| (*k, p))
    }

    /// Whether node `i`'s process is alive (reaps it if it exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                node.exited = Some(status);
                node.child = None;
                false
            }
            Some(Err(_)) => {
                node.child = None;
                false
            }
            None => false,
        }
    }

    /// Why node `i` is not running, with the end of its log: for error messages.
    fn not_running(&self, i: usize) -> String {
        let exited = match self.nodes[i].exited {
            Some(status) => format!("it exited on its own ({status})"),
            None => "it was stopped or killed".into(),
        };
        let log = self.log_of(i);
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{} is not running: {exited}; the end of its log:\n{}",
            self.id(i),
            tail.join("\n")
        )
    }

    /// Starts node `i`'s process (output appended to its log).
    fn spawn(&mut self, i: usize) -> Result<(), String> {
        if self.is_running(i) {
            return Err(format!("{} is already running", self.id(i)));
        }
        let node = &self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        // The reservation ends now, right before the node binds the port itself.
        self.nodes[i].reserved.clear();
        self.nodes[i].exited = None;
        let node = &self.nodes[i];
        let mut cmd = Command::new(&self.bin);
        cmd.args(&node.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {} ({}): {e}", node.id, self.bin.display()))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// Waits until node `i` answers `/healthz` and `/status` with its own id (so that another
    /// process on its port does not count); fails early if its process exits.
    pub async fn wait_healthy(&mut self, i: usize) -> Result<(), String> {
        let client = self.client(i);
        let what = format!("{} to answer /healthz", self.id(i));
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        loop {
            if client.healthy().await
                && let Ok(s) = client.status().await
                && s["id"] == self.id(i)
                && self.is_running(i)
            {
                return Ok(());
            }
            if !self.is_running(i) {
                return Err(format!(
                    "{} exited during startup; its log:\n{}",
                    self.id(i),
                    self.log_of(i)
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "timed out waiting for {what}; its log:\n{}",
                    self.log_of(i)
                ));
            }
            tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
        }
    }

    /// Stops node `i` gracefully (SIGTERM) and waits for it to exit; kills it (SIGKILL) and
    /// fails if it has not exited within `timeout`.
    pub async fn stop(&mut self, i: usize, timeout: Duration) -> Result<ExitStatus, String> {
        self.terminate(i)?;
        self.wait_exit(i, timeout).await
    }

    /// Sends node `i` SIGTERM and returns at once (see [`Cluster::wait_exit`]).
    pub fn terminate(&mut self, i: usize) -> Result<(), String> {
        if !self.is_running(i) {
            return Err(self.not_running(i));
        }
        let Some(child) = self.nodes[i].child.as_ref() else {
            return Err(self.not_running(i));
        };
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed: {sent}"));
        }
        Ok(())
    }

    /// Waits for node `i`'s process to exit (after [`Cluster::terminate`]); kills it (SIGKILL)
    /// and fails if it has not exited within `timeout`.
    pub async fn wait_exit(&mut self, i: usize, timeout: Duration) -> Result<ExitStatus, String> {
        let id = self.id(i).to_string();
        let Some(child) = self.nodes[i].child.as_mut() else {
            return Err(self.not_running(i));
        };
        let res = poll_until(&format!("{id} to exit after SIGTERM"), timeout, || {
            let r = child.try_wait().map_err(|e| e.to_string());
            async move { r }
        })
        .await;
        match res {
            Ok(status) => {
                self.nodes[i].child = None;
                Ok(status)
            }
            Err(e) => {
                self.kill(i)?;
                Err(e)
            }
        }
    }

    /// Kills node `i` at once (SIGKILL, like a power cut for the process) and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<(), String> {
        let id = self.id(i).to_string();
        if !self.is_running(i) {
            return Err(self.not_running(i));
        }
        let Some(mut child) = self.nodes[i].child.take() else {
            return Err(self.not_running(i));
        };
        child.kill().map_err(|e| format!("kill -9 {id}: {e}"))?;
        child.wait().map_err(|e| format!("reaping {id}: {e}"))?;
        Ok(())
    }

    /// Pauses node `i`'s process (SIGSTOP): it keeps its sockets but answers nothing until
    /// [`Cluster::resume`], like a process stuck in a long GC pause or a frozen VM.
    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, "-STOP")
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, "-CONT")
    }

    /// Sends `signal` (as `kill` takes it: `-STOP`) to node `i`'s process.
    fn signal(&mut self, i: usize, signal: &str) -> Result<(), String> {
        if !self.is_running(i) {
            return Err(self.not_running(i));
        }
        let pid = self.nodes[i]
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| self.not_running(i))?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .map_err(|e| format!("kill {signal} {pid}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill {signal} {pid} ({}): {status}", self.id(i)))
        }
    }

    /// Starts a stopped node again with the same id, port, data dir and arguments, and waits
    /// until it answers `/healthz`.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.spawn(i)?;
        self.wait_healthy(i).await
    }

    /// The `/status` of every running node (node position, status JSON); nodes that do not
    /// answer are left out.
    pub async fn statuses(&mut self) -> Vec<(usize, Value)> {
        let mut out = Vec::new();
        for i in 0..self.size() {
            if self.is_running(i)
                && let Ok(s) = self.client(i).status().await
            {
                out.push((i, s));
            }
        }
        out
    }

    /// Waits until some running node reports `role: "leader"` and every running node that
    /// names a leader in that term or later names it; returns the leader's position.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<usize, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let statuses = self.statuses().await;
            let last = match agreed_leader(&statuses) {
                Ok(i) => return Ok(i),
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no leader after {timeout:?}: {last}"));
            }
            tokio::time::sleep(crate::wait::POLL_INTERVAL).await;
        }
    }
}

/// Node `i`'s `--peers`: itself at its own address, every other node `j` at
/// `link(i, j)` (the proxy for i→j) when there is one, else at its own address.
fn peers_arg(
    i: usize,
    ids: &[String],
    addrs: &[SocketAddr],
    link: impl Fn(usize, usize) -> Option<SocketAddr>,
) -> String {
    ids.iter()
        .zip(addrs)
        .enumerate()
        .map(|(j, (id, addr))| {
            let addr = if i == j {
                *addr
            } else {
                link(i, j).unwrap_or(*addr)
            };
            format!("{id}={addr}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The leader all statuses agree on: the node claiming leadership in the highest term, with
/// no node naming another leader in that term or later.
fn agreed_leader(statuses: &[(usize, Value)]) -> Result<usize, String> {
    let term = |s: &Value| s["term"].as_u64().unwrap_or(0);
    let (leader, status) = statuses
        .iter()
        .filter(|(_, s)| s["role"] == "leader")
        .max_by_key(|(_, s)| term(s))
        .ok_or_else(|| format!("no node claims leadership: {statuses:?}"))?;
    let (leader_id, leader_term) = (&status["id"], term(status));
    for (i, s) in statuses {
        let named = &s["leader_id"];
        if term(s) >= leader_term && !named.is_null() && named != leader_id {
            return Err(format!(
                "node {i} names leader {named} while {leader_id} claims term {leader_term}"
            ));
        }
    }
    Ok(*leader)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn peers_point_through_the_proxy_of_each_directed_link() {
        let ids: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let addrs: Vec<SocketAddr> = (0..3)
            .map(|k| SocketAddr::from(([127, 0, 0, 1], 7001 + k)))
            .collect();
        // proxy(from→to) listens on 9000 + 10*from + to.
        let link = |from: usize, to: usize| {
            Some(SocketAddr::from((
                [127, 0, 0, 1],
                9000 + 10 * from as u16 + to as u16,
            )))
        };
        assert_eq!(
            peers_arg(1, &ids, &addrs, link),
            "n1=127.0.0.1:9010,n2=127.0.0.1:7002,n3=127.0.0.1:9012"
        );
        assert_eq!(
            peers_arg(0, &ids, &addrs, |_, _| None),
            "n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003"
        );
    }

    #[test]
    fn leader_is_the_highest_term_claim_that_nobody_contradicts() {
        let st = |id: &str, role: &str, term: u64, leader: Option<&str>| json!({"id": id, "role": role, "term": term, "leader_id": leader});
        let agreed = [
            (0, st("n1", "follower", 3, Some("n2"))),
            (1, st("n2", "leader", 3, Some("n2"))),
            (2, st("n3", "leader", 2, Some("n3"))), // stale leader of an older term
        ];
        assert_eq!(agreed_leader(&agreed), Ok(1));
        let contradicted = [
            (0, st("n1", "follower", 4, Some("n3"))),
            (1, st("n2", "leader", 3, Some("n2"))),
        ];
        assert!(agreed_leader(&contradicted).is_err());
        assert!(agreed_leader(&[(0, st("n1", "candidate", 5, None))]).is_err());
        assert!(agreed_leader(&[]).is_err());
    }
}
