//! One directed peer link of the dev cluster: a TCP proxy that forwards, or is cut.
//!
//! Node A reaches node B's peer listener through `link(A→B)`: A's `--peers` names the link's
//! port for B. Raft replies travel as B's own requests through `link(B→A)`, so cutting both
//! proxies of a pair cuts the pair as a network partition would. A cut closes every open
//! connection at once and every new one as soon as it is accepted: the sender sees a reset, as
//! with an unreachable peer. The nodes run unchanged: nothing in kvserver knows of the proxy.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running link; stops (closing its connections) when dropped.
#[derive(Debug)]
pub struct Link {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Link {
    /// Forwards what `listener` accepts to `target`.
    pub fn start(listener: TcpListener, target: SocketAddr) -> io::Result<Link> {
        let addr = listener.local_addr()?;
        let (cut, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, target, rx));
        Ok(Link { addr, cut, task })
    }

    /// The address the link listens on (what the sender's `--peers` names).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Cuts the link (`true`) or lets traffic through again (`false`).
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        // The connections' tasks see the sender go and close.
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, cut: watch::Receiver<bool>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors or the like: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if *cut.borrow() {
            drop(inbound);
            continue;
        }
        tokio::spawn(forward(inbound, target, cut.clone()));
    }
}

/// Forwards one connection both ways until a side closes, the link is cut or dropped.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    // Target down (the node was killed): the sender sees its connection closed.
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        // Cut, or the link is gone (the sender dropped): either way, close.
        _ = cut.wait_for(|c| *c) => {}
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server on a free port.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream) -> io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_until_cut_and_again_once_healed() {
        let target = echo().await;
        let link = Link::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), target).unwrap();
        let mut open = TcpStream::connect(link.addr()).await.unwrap();
        assert_eq!(round_trip(&mut open).await.unwrap(), b"ping");

        link.set_cut(true);
        assert!(link.is_cut());
        // The open connection is closed (bounded, so a link that stays open fails the test
        // rather than hanging it), and a new one is closed as soon as it is accepted.
        let mut buf = [0u8; 4];
        let closed = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "{closed:?}");
        let mut fresh = TcpStream::connect(link.addr()).await.unwrap();
        assert!(round_trip(&mut fresh).await.is_err());

        link.set_cut(false);
        let mut healed = TcpStream::connect(link.addr()).await.unwrap();
        assert_eq!(round_trip(&mut healed).await.unwrap(), b"ping");
    }
}
