//! A fault-injecting TCP proxy for one directed link.
//!
//! Node A reaches node B through `proxy(A→B)`: A's `--peers` entry for B is the proxy's
//! address, and the proxy forwards to B. Raft replies travel as separate requests from B to A
//! (through `proxy(B→A)`), so cutting one proxy cuts exactly one direction.
//!
//! Faults, changeable at any time:
//! - [`LinkProxy::cut`]: existing connections are closed and new ones are closed as soon as
//!   they are accepted (the sender sees a reset / EOF at once);
//! - [`LinkProxy::blackhole`]: connections stay open but every byte is dropped (the sender
//!   sees its requests time out, like lost packets);
//! - [`LinkProxy::set_delay`]: each chunk is held for the delay before it is forwarded (both
//!   directions, order kept);
//! - [`LinkProxy::set_loss`]: each chunk is lost with this probability, and with it the
//!   connection (TCP never loses bytes inside a stream: a lost chunk is a dropped connection,
//!   whatever it carried is gone and the sender reconnects);
//! - [`LinkProxy::heal`]: back to forwarding (delay and loss kept; reset them separately).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the link does with traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward everything.
    #[default]
    Open,
    /// Close every connection.
    Cut,
    /// Keep connections, drop every byte.
    Blackhole,
}

/// The link's fault settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// What happens to traffic.
    pub mode: LinkMode,
    /// Added to every forwarded chunk.
    pub delay: Duration,
    /// Chance in a million that a chunk is lost, with its connection.
    pub loss_ppm: u32,
}

/// A running proxy; stops (closing its connections) when dropped.
#[derive(Debug)]
pub struct LinkProxy {
    addr: SocketAddr,
    target: SocketAddr,
    state: watch::Sender<LinkState>,
    /// Connections accepted so far (for tests that want to see traffic).
    accepted: Arc<AtomicU64>,
    /// Bytes forwarded from the connecting side to the target (requests: for a peer link,
    /// the messages of the link's sender), so a test can see how much a transfer cost.
    forwarded: Arc<AtomicU64>,
    accept_task: JoinHandle<()>,
}

impl LinkProxy {
    /// Starts a proxy on a free loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<LinkProxy> {
        Self::start_on("127.0.0.1:0".parse().map_err(io::Error::other)?, target).await
    }

    /// Starts a proxy listening on `listen` (port 0: any free port) forwarding to `target`.
    pub async fn start_on(listen: SocketAddr, target: SocketAddr) -> io::Result<LinkProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkState::default());
        let accepted = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            target,
            rx,
            accepted.clone(),
            forwarded.clone(),
        ));
        Ok(LinkProxy {
            addr,
            target,
            state,
            accepted,
            forwarded,
            accept_task,
        })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where traffic goes.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The current fault settings.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Bytes forwarded so far from the connecting side to the target.
    pub fn forwarded_bytes(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Closes every connection, now and until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.state.send_modify(|s| s.mode = LinkMode::Cut);
    }

    /// Drops every byte (connections stay open) until [`heal`](Self::heal).
    pub fn blackhole(&self) {
        self.state.send_modify(|s| s.mode = LinkMode::Blackhole);
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.state.send_modify(|s| s.mode = LinkMode::Open);
    }

    /// Loses each chunk, and its connection, with probability `p` (0: none).
    pub fn set_loss(&self, p: f64) {
        let ppm = (p.clamp(0.0, 1.0) * 1e6) as u32;
        self.state.send_modify(|s| s.loss_ppm = ppm);
    }

    /// Holds every chunk for `delay` before forwarding it (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.state.send_modify(|s| s.delay = delay);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        // Connection tasks see the state sender go away and close.
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    state: watch::Receiver<LinkState>,
    accepted: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        if state.borrow().mode == LinkMode::Cut {
            drop(inbound);
            continue;
        }
        tokio::spawn(serve_connection(
            inbound,
            target,
            state.clone(),
            forwarded.clone(),
        ));
    }
}

/// Forwards one connection both ways until either side closes or the link is cut.
async fn serve_connection(
    inbound: TcpStream,
    target: SocketAddr,
    state: watch::Receiver<LinkState>,
    forwarded: Arc<AtomicU64>,
) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        // Target down: the client sees its connection closed, as it would without a proxy.
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let both = async {
        tokio::join!(
            pump(in_read, out_write, state.clone(), Some(forwarded)),
            pump(out_read, in_write, state.clone(), None)
        )
    };
    tokio::select! {
        _ = both => {}
        () = until_cut(state.clone()) => {}
    }
    // Dropping the halves closes both sockets.
}

/// Resolves when the link is cut or the proxy is gone.
async fn until_cut(mut state: watch::Receiver<LinkState>) {
    loop {
        if state.borrow_and_update().mode == LinkMode::Cut {
            return;
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Copies one direction, applying the link's faults to every chunk.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: watch::Receiver<LinkState>,
    counted: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        let delay = state.borrow().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let loss = state.borrow().loss_ppm;
        if loss > 0 && draw_ppm() < loss {
            return;
        }
        match state.borrow().mode {
            LinkMode::Open => {}
            LinkMode::Blackhole => continue,
            LinkMode::Cut => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(c) = &counted {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// A draw in 0..1,000,000 for loss: a splitmix64 sequence shared by every proxy (which chunk a
/// loss hits depends on timing anyway, so the draws need no seed).
fn draw_ppm() -> u32 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut z = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % 1_000_000) as u32
}
