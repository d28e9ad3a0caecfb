//! The client API over TLS and behind bearer tokens (`--cert --key [--client-ca]`,
//! `--tokens-file`): kvctl over https, clients that do not trust the server or show no
//! certificate refused, 401 / 403 by token and role with nothing written or changed, a
//! failover and a `--join` with tokens on. Real processes on loopback; every wait polls with a
//! deadline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Access, Cluster, ClusterConfig, KvClient};
use reqwest::Method;
use serde_json::json;

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

const ADMIN: &str = "admin-token-0123456789abcdef";
const WRITER: &str = "write-token-0123456789abcdef";
const READER: &str = "read-token-0123456789abcdef";

/// A CA (`ca.crt`), a certificate per node valid for `127.0.0.1`, `localhost` and the node id
/// (`{id}.crt`, `{id}.key`: the same one serves peers and clients), and a client certificate
/// for kvctl (`kvctl.crt`, `kvctl.key`), as PEM files in `dir`.
fn write_pki(dir: &Path, ids: &[&str]) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    let ca = rcgen::Issuer::new(params, ca_key);
    let issue = |name: &str, sans: Vec<String>| {
        let params = rcgen::CertificateParams::new(sans).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    for id in ids {
        issue(
            id,
            vec![id.to_string(), "localhost".into(), "127.0.0.1".into()],
        );
    }
    issue("kvctl", vec!["kvctl".into()]);
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The tokens file of the tests: one token per role.
fn write_tokens(dir: &Path) -> PathBuf {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        format!(
            "# the test cluster's tokens\n{ADMIN} ops admin\n{WRITER} app write\n{READER} dashboard read\n"
        ),
    )
    .unwrap();
    path
}

/// What kvctl printed and whether it succeeded.
struct Ran {
    ok: bool,
    /// The exit code.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// How long kvctl retries when it should succeed (a failover may be under way).
const RETRY_MS: &str = "15000";

/// Runs kvctl with `args` (after the endpoints of every node) and `env` (RAFTKV_TOKEN is
/// cleared unless given), retrying transient failures for `retry_ms`.
async fn kvctl_with(c: &Cluster, args: &[&str], env: &[(&str, &str)], retry_ms: &str) -> Ran {
    let endpoints: Vec<String> = (0..c.size()).map(|i| c.endpoint(i)).collect();
    let mut cmd = tokio::process::Command::new(raftkv_tests::bin::kvctl().unwrap());
    cmd.env_remove("RAFTKV_TOKEN")
        .args([
            "--timeout-ms",
            "5000",
            "--retry-ms",
            retry_ms,
            "--endpoints",
        ])
        .arg(endpoints.join(","))
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("kvctl runs");
    Ran {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// kvctl with `args` and `env`, retrying as a client that should succeed would.
async fn kvctl(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> Ran {
    kvctl_with(c, args, env, RETRY_MS).await
}

/// kvctl with owned `args`.
async fn run(c: &Cluster, args: Vec<String>) -> Ran {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    kvctl(c, &refs, &[]).await
}

/// kvctl with `args` must succeed; returns its output.
async fn kvctl_ok(c: &Cluster, args: &[&str]) -> String {
    let r = kvctl(c, args, &[]).await;
    assert!(r.ok, "kvctl {args:?} failed: {}{}", r.stderr, r.stdout);
    r.stdout
}

/// kvctl with `args` must fail with exit code 1, without retrying (a refused TLS connection
/// counts as an unreachable endpoint, which would be retried); returns its stderr.
async fn kvctl_fails(c: &Cluster, args: &[&str]) -> String {
    let r = kvctl_with(c, args, &[], "0").await;
    assert_eq!(r.code, Some(1), "kvctl {args:?}: {}{}", r.stderr, r.stdout);
    r.stderr
}

/// The membership as the leader (or, without one, the node) says: (voters, learners).
async fn members(client: &KvClient) -> (Vec<String>, Vec<String>) {
    let r = client.request(Method::GET, "/cluster", None).await.unwrap();
    assert_eq!(r.status, 200, "GET /cluster: {}", r.body);
    let ids = |f: &str| -> Vec<String> {
        let mut v: Vec<String> = r.body[f]
            .as_array()
            .unwrap_or_else(|| panic!("no {f} in {}", r.body))
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    (ids("voters"), ids("learners"))
}

/// The stale value of `key` at node `i`, read with the admin token.
async fn value_at(c: &Cluster, i: usize, key: &str) -> Option<String> {
    c.client(i).get(key).await.unwrap()
}

/// A 3-node cluster with peer mutual TLS, the client API over TLS requiring client
/// certificates of the same CA, and the tokens file; the harness's client shows the node
/// certificate of n1 and the admin token.
async fn start_secure(pki: &Path, tokens: &Path) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    // Links are not proxied: the peers' TLS names their ids, which the proxies do not change,
    // but nothing here needs them.
    cfg.proxies = false;
    cfg.extra_args = vec![
        "--election-timeout-ms".into(),
        "200-400".into(),
        "--heartbeat-ms".into(),
        "40".into(),
        "--peer-cert".into(),
        file(pki, "{id}.crt"),
        "--peer-key".into(),
        file(pki, "{id}.key"),
        "--peer-ca".into(),
        file(pki, "ca.crt"),
        "--cert".into(),
        file(pki, "{id}.crt"),
        "--key".into(),
        file(pki, "{id}.key"),
        "--client-ca".into(),
        file(pki, "ca.crt"),
        "--tokens-file".into(),
        tokens.display().to_string(),
        // What a joining node needs to ask the members for their addresses.
        "--cacert".into(),
        file(pki, "ca.crt"),
        "--join-token-file".into(),
        file(pki, "join-token"),
    ];
    std::fs::write(pki.join("join-token"), format!("{ADMIN}\n")).unwrap();
    let mut identity = std::fs::read(pki.join("kvctl.crt")).unwrap();
    identity.extend(std::fs::read(pki.join("kvctl.key")).unwrap());
    cfg.access = Access {
        https: true,
        ca_pem: Some(std::fs::read(pki.join("ca.crt")).unwrap()),
        identity_pem: Some(identity),
        token: Some(ADMIN.into()),
    };
    Cluster::start(cfg).await.expect("cluster starts")
}

/// TLS with client certificates and tokens, end to end: kvctl over https with the CA, a client
/// certificate and a token works (put, get, status, member list, snapshot); without the CA or
/// without a client certificate it cannot connect; without a token, or with a wrong one, every
/// route but /healthz is a 401; a read token reads but cannot write (403, nothing written); read
/// and write tokens cannot change the membership (403, unchanged); the admin token can, and a
/// node joins with `--join` and the admin token in its file; the cluster fails over and kvctl
/// follows the new leader's https redirects with its token.
#[tokio::test]
async fn a_tls_cluster_with_tokens_serves_kvctl_and_refuses_everyone_else() {
    let pki = tempfile::tempdir().unwrap();
    write_pki(pki.path(), &["n1", "n2", "n3", "n4"]);
    let tokens = write_tokens(pki.path());
    let mut c = start_secure(pki.path(), &tokens).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let (ca, cert, key) = (
        file(pki.path(), "ca.crt"),
        file(pki.path(), "kvctl.crt"),
        file(pki.path(), "kvctl.key"),
    );
    let tls = [
        "--cacert",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    let with =
        |rest: &[&str]| -> Vec<String> { tls.iter().chain(rest).map(|s| s.to_string()).collect() };

    // kvctl over https with everything: it works.
    let r = run(&c, with(&["put", "k", "v1", "--token", ADMIN])).await;
    assert!(r.ok && r.stdout == "OK\n", "{}{}", r.stderr, r.stdout);
    let r = run(&c, with(&["get", "k", "--token", READER])).await;
    assert!(r.ok && r.stdout == "v1\n", "{}{}", r.stderr, r.stdout);
    let r = run(&c, with(&["status", "--token", READER])).await;
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("leader") && r.stdout.contains("https://"),
        "{}",
        r.stdout
    );
    let list: Vec<String> = with(&["member", "list"]);
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    let r = kvctl(&c, &refs, &[("RAFTKV_TOKEN", ADMIN)]).await;
    assert!(r.ok, "member list with RAFTKV_TOKEN: {}", r.stderr);
    for id in ["n1", "n2", "n3"] {
        assert!(r.stdout.contains(id), "{}", r.stdout);
    }
    // The flag wins over the variable.
    let put_as_reader = with(&["put", "k", "v2", "--token", READER]);
    let refs: Vec<&str> = put_as_reader.iter().map(String::as_str).collect();
    let r = kvctl(&c, &refs, &[("RAFTKV_TOKEN", ADMIN)]).await;
    assert!(!r.ok, "a put with a read token worked: {}", r.stdout);
    assert!(r.stderr.starts_with("kvctl: forbidden: "), "{}", r.stderr);
    // Without any token: unauthenticated.
    let r = run(&c, with(&["get", "k"])).await;
    assert!(
        !r.ok && r.stderr.starts_with("kvctl: unauthenticated: "),
        "{}",
        r.stderr
    );
    // The backup route is an admin's: the write token cannot, the admin token can.
    let snap = pki.path().join("snap.bin").display().to_string();
    let r = run(&c, with(&["snapshot", "save", &snap, "--token", WRITER])).await;
    assert!(
        !r.ok && r.stderr.starts_with("kvctl: forbidden: "),
        "{}",
        r.stderr
    );
    let r = run(&c, with(&["snapshot", "save", &snap, "--token", ADMIN])).await;
    assert!(
        r.ok && r.stdout.starts_with("saved "),
        "{}{}",
        r.stderr,
        r.stdout
    );

    // Without the CA: the server is not trusted.
    let err = kvctl_fails(
        &c,
        &["--cert", &cert, "--key", &key, "--token", ADMIN, "get", "k"],
    )
    .await;
    assert!(
        err.starts_with("kvctl: no endpoint reachable") && err.contains("--cacert"),
        "{err}"
    );
    // With the CA but no client certificate: the server refuses the handshake.
    let err = kvctl_fails(&c, &["--cacert", &ca, "--token", ADMIN, "get", "k"]).await;
    assert!(err.starts_with("kvctl: no endpoint reachable"), "{err}");
    // Plain http to a TLS port gets nothing either.
    let plain = KvClient::new(&c.addr(leader).to_string());
    assert!(plain.request(Method::GET, "/healthz", None).await.is_err());

    // Tokens, through the harness's client (CA and client certificate).
    let as_token = |t: Option<&str>| c.client_with(leader, &c.access().with_token(t));
    let nobody = as_token(None);
    for (method, path) in [
        (Method::GET, "/kv/k"),
        (Method::PUT, "/kv/k"),
        (Method::GET, "/status"),
        // The status as a stream: refused like /status, before any event is sent.
        (Method::GET, "/debug/events"),
        (Method::GET, "/cluster"),
        (Method::GET, "/snapshot"),
        (Method::GET, "/no-such-route"),
    ] {
        let r = nobody
            .request(method.clone(), path, Some(json!({})))
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert_eq!(r.body["ok"], false);
        assert_eq!(r.body["err_code"], "unauthenticated", "{}", r.body);
        assert!(r.body["err_msg"].as_str().is_some_and(|m| !m.is_empty()));
        let challenge = r
            .headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap());
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer")),
            "{challenge:?}"
        );
    }
    let r = as_token(Some("not-a-token-of-this-cluster"))
        .put("k", "wrong")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["err_code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert!(nobody.healthy().await, "/healthz needs no token");
    // A load balancer's readiness probe carries no token either; a scrape of /metrics does.
    let probe = nobody.request(Method::GET, "/readyz", None).await.unwrap();
    assert!(
        probe.status == 200 || probe.status == 503,
        "/readyz needs no token: {} {}",
        probe.status,
        probe.body
    );
    let scrape = |token| async move {
        as_token(token)
            .request(Method::GET, "/metrics", None)
            .await
            .unwrap()
            .status
    };
    assert_eq!(scrape(None).await, 401, "/metrics without a token");
    assert_eq!(
        scrape(Some(READER)).await,
        200,
        "/metrics with a read token"
    );
    let r = as_token(Some(READER))
        .request(Method::GET, "/no-such-route", None)
        .await
        .unwrap();
    assert_eq!(
        r.status, 404,
        "an unknown route, once authenticated: {}",
        r.body
    );

    // A read token reads, and cannot write: 403, nothing written.
    let reader = as_token(Some(READER));
    assert_eq!(reader.get("k").await.unwrap().as_deref(), Some("v1"));
    for (method, path, body) in [
        (Method::PUT, "/kv/k", json!({"value": "by-reader"})),
        (Method::PUT, "/kv/fresh", json!({"value": "by-reader"})),
        (Method::DELETE, "/kv/k", json!({})),
        (
            Method::POST,
            "/kv/mput",
            json!({"entries": [{"key": "fresh", "value": "x"}]}),
        ),
    ] {
        let r = reader
            .write_with_seq(method.clone(), path, 1, body)
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.body["err_code"], "forbidden", "{}", r.body);
    }
    // Read back with the write token, through a linearizable read at the leader: unchanged.
    let writer = as_token(Some(WRITER));
    let r = writer.request(Method::GET, "/kv/k", None).await.unwrap();
    assert_eq!((r.status, r.body["value"].as_str()), (200, Some("v1")));
    let r = writer
        .request(Method::GET, "/kv/fresh", None)
        .await
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    // The write token writes.
    assert!(writer.put("w", "by-writer").await.unwrap().ok());

    // Read and write tokens cannot change the membership: 403, unchanged.
    let admin_client = as_token(Some(ADMIN));
    let before = members(&admin_client).await;
    assert_eq!(before.0, ["n1", "n2", "n3"]);
    let victim = c.id((leader + 1) % 3).to_string();
    for t in [READER, WRITER] {
        let client = as_token(Some(t));
        for (path, body) in [
            ("/cluster/remove", json!({"id": victim})),
            (
                "/cluster/learners",
                json!({"id": "n9", "addr": "127.0.0.1:9"}),
            ),
            ("/cluster/transfer-leader", json!({})),
        ] {
            let r = client
                .request(Method::POST, path, Some(body))
                .await
                .unwrap();
            assert_eq!(
                (r.status, r.body["err_code"].as_str()),
                (403, Some("forbidden")),
                "{path}: {}",
                r.body
            );
        }
        let r = client.request(Method::GET, "/cluster", None).await.unwrap();
        assert_eq!(r.status, 403, "GET /cluster with {t}");
    }
    assert_eq!(members(&admin_client).await, before);

    // The admin token can: a fourth node joins (--join over https with the admin token of its
    // --join-token-file) and kvctl adds it as a learner.
    let n4 = c.add_node().await.unwrap();
    let peer4 = c.peer_addr(n4).to_string();
    let r = run(
        &c,
        with(&["member", "add-learner", "n4", &peer4, "--token", WRITER]),
    )
    .await;
    assert!(
        !r.ok && r.stderr.starts_with("kvctl: forbidden: "),
        "{}",
        r.stderr
    );
    let r = run(
        &c,
        with(&["member", "add-learner", "n4", &peer4, "--token", ADMIN]),
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    poll_until("n4 to replicate k", CONVERGE_TIMEOUT, || {
        let c = &c;
        async move { Ok((value_at(c, n4, "k").await.as_deref() == Some("v1")).then_some(())) }
    })
    .await
    .unwrap();
    assert_eq!(members(&admin_client).await.1, ["n4"]);
    let log4 = c.log_of(n4);
    assert!(
        log4.contains("join: learnt the members' addresses")
            && !log4.contains("refused this node's token"),
        "{log4}"
    );

    // A follower sends a write to the leader over https; the client follows with its token.
    let follower = (leader + 1) % 3;
    let r = c.client(follower).put("via-follower", "x").await.unwrap();
    assert!(r.ok(), "{}", r.body);
    assert!(
        r.redirects
            .first()
            .is_some_and(|u| u.starts_with("https://")),
        "{:?}",
        r.redirects
    );

    // Refusals are logged without the token, and a 403 at INFO with the token's name.
    let log = c.log_of(leader);
    assert!(
        log.lines().any(|l| l.contains(" INFO ")
            && l.contains("refused a request its token's role does not cover")
            && l.contains("dashboard")),
        "{log}"
    );
    for i in 0..c.size() {
        let log = c.log_of(i);
        for t in [ADMIN, WRITER, READER] {
            assert!(!log.contains(t), "{}'s log holds a token", c.id(i));
        }
        assert!(
            !log.lines()
                .any(|l| l.contains("ERROR") && l.contains("refused a request")),
            "{}'s log: {log}",
            c.id(i)
        );
    }

    // Failover with tokens on: kill the leader, kvctl finds the new one.
    c.kill(leader).unwrap();
    let next = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(next, leader);
    let r = run(&c, with(&["put", "after", "failover", "--token", WRITER])).await;
    assert!(r.ok && r.stdout == "OK\n", "{}{}", r.stderr, r.stdout);
    c.restart(leader).await.unwrap();
    poll_until("the old leader to catch up", CONVERGE_TIMEOUT, || {
        let c = &c;
        async move {
            Ok((value_at(c, leader, "after").await.as_deref() == Some("failover")).then_some(()))
        }
    })
    .await
    .unwrap();
}

/// TLS without client certificates or tokens, peers authenticated by a cluster secret:
/// kvctl over https with the CA alone works (put, get, member list), a kvctl without the CA or
/// with another CA cannot connect, and a client that has the CA needs no certificate.
#[tokio::test]
async fn a_tls_cluster_without_tokens_needs_only_the_ca() {
    let pki = tempfile::tempdir().unwrap();
    write_pki(pki.path(), &["n1", "n2", "n3"]);
    let stranger = tempfile::tempdir().unwrap();
    write_pki(stranger.path(), &["n1"]);
    let secret = pki.path().join("secret");
    std::fs::write(&secret, "a shared secret of the test cluster\n").unwrap();
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = vec![
        "--cluster-secret-file".into(),
        secret.display().to_string(),
        "--cert".into(),
        file(pki.path(), "{id}.crt"),
        "--key".into(),
        file(pki.path(), "{id}.key"),
    ];
    cfg.access = Access {
        https: true,
        ca_pem: Some(std::fs::read(pki.path().join("ca.crt")).unwrap()),
        ..Access::default()
    };
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let ca = file(pki.path(), "ca.crt");
    assert_eq!(
        kvctl_ok(&c, &["--cacert", &ca, "put", "k", "v"]).await,
        "OK\n"
    );
    assert_eq!(kvctl_ok(&c, &["--cacert", &ca, "get", "k"]).await, "v\n");
    let out = kvctl_ok(&c, &["--cacert", &ca, "member", "list"]).await;
    assert!(out.contains("n3"), "{out}");
    let err = kvctl_fails(&c, &["get", "k"]).await;
    assert!(err.contains("--cacert"), "{err}");
    let other = file(stranger.path(), "ca.crt");
    let err = kvctl_fails(&c, &["--cacert", &other, "get", "k"]).await;
    assert!(err.starts_with("kvctl: no endpoint reachable"), "{err}");
    // The harness's client has the CA and no certificate: served.
    assert!(c.client(0).healthy().await);
}

/// kvserver refuses to start on a bad tokens file or bad TLS files, naming the file.
#[tokio::test]
async fn bad_files_stop_kvserver_at_start_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path(), &["n1"]);
    let bad_tokens = dir.path().join("bad-tokens");
    std::fs::write(&bad_tokens, format!("{ADMIN} ops superuser\n")).unwrap();
    let dup_tokens = dir.path().join("dup-tokens");
    std::fs::write(&dup_tokens, format!("{ADMIN} a read\n{ADMIN} b admin\n")).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM").unwrap();
    let (cert, key) = (file(dir.path(), "n1.crt"), file(dir.path(), "n1.key"));
    let bad_tokens_s = bad_tokens.display().to_string();
    let dup_tokens_s = dup_tokens.display().to_string();
    let garbage_s = garbage.display().to_string();
    let data = dir.path().join("data").display().to_string();
    for (args, want) in [
        (
            vec!["--tokens-file", &bad_tokens_s],
            format!("--tokens-file {bad_tokens_s}: line 1: unknown role \"superuser\""),
        ),
        (
            vec!["--tokens-file", &dup_tokens_s],
            "line 2: the token of \"b\" is already the token of \"a\"".to_string(),
        ),
        (
            vec!["--cert", &garbage_s, "--key", &key],
            format!("client TLS: {garbage_s}"),
        ),
        (
            vec!["--cert", &cert, "--key", &key, "--client-ca", &garbage_s],
            format!("client TLS: {garbage_s}"),
        ),
    ] {
        let out = tokio::process::Command::new(raftkv_tests::bin::kvserver().unwrap())
            .args(["--addr", "127.0.0.1:0", "--data-dir", &data])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
