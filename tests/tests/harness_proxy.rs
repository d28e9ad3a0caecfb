//! The link proxy against a small echo server: forwarding, cut, heal, blackhole, delay.

use std::net::SocketAddr;
use std::time::Duration;

use raftkv_tests::proxy::{LinkMode, LinkProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// Echoes every byte back on every connection.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Sends `msg` and reads the echo, within 5 s.
async fn echo(s: &mut TcpStream, msg: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(msg).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; msg.len()];
    match timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Ok(buf),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no echo within 5 s".into()),
    }
}

/// Whether the connection is closed (EOF or error) within 5 s.
async fn closes(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    loop {
        match timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn proxy_forwards_both_ways() {
    let proxy = LinkProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(echo(&mut s, b"hello").await.unwrap(), b"hello");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo(&mut s, &big).await.unwrap(), big);
    assert_eq!(proxy.accepted(), 1);
}

#[tokio::test]
async fn proxy_cut_stops_traffic_and_heal_resumes() {
    let proxy = LinkProxy::start(echo_server().await).await.unwrap();
    let mut before = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(echo(&mut before, b"one").await.unwrap(), b"one");

    proxy.cut();
    assert_eq!(proxy.state().mode, LinkMode::Cut);
    assert!(
        closes(&mut before).await,
        "an existing connection is closed by a cut"
    );
    // New connections are accepted and closed at once.
    let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = during.write_all(b"two").await;
    assert!(
        closes(&mut during).await,
        "a new connection is closed while cut"
    );

    proxy.heal();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(echo(&mut after, b"three").await.unwrap(), b"three");
}

#[tokio::test]
async fn proxy_blackhole_drops_bytes_but_keeps_connection() {
    let proxy = LinkProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(echo(&mut s, b"a").await.unwrap(), b"a");
    proxy.blackhole();
    s.write_all(b"lost").await.unwrap();
    let mut buf = [0u8; 4];
    // Nothing comes back: a bounded wait is the assertion itself here, not synchronisation.
    assert!(
        timeout(Duration::from_millis(300), s.read(&mut buf))
            .await
            .is_err()
    );
    proxy.heal();
    assert_eq!(
        echo(&mut s, b"back").await.unwrap(),
        b"back",
        "the dropped bytes never arrive"
    );
}

#[tokio::test]
async fn proxy_delay_delays_each_direction() {
    let proxy = LinkProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(echo(&mut s, b"warm").await.unwrap(), b"warm");
    let delay = Duration::from_millis(150);
    proxy.set_delay(delay);
    let started = Instant::now();
    assert_eq!(echo(&mut s, b"slow").await.unwrap(), b"slow");
    let took = started.elapsed();
    assert!(
        took >= 2 * delay,
        "a round trip crosses the delay twice, took {took:?}"
    );
    proxy.set_delay(Duration::ZERO);
    assert_eq!(proxy.state().delay, Duration::ZERO);
    assert_eq!(echo(&mut s, b"fast").await.unwrap(), b"fast");
}

#[tokio::test]
async fn proxy_to_dead_target_closes_client_connections() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = LinkProxy::start(dead).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(closes(&mut s).await);
}
