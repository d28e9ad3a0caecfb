//! The client HTTP API of a single-node kvserver, in-process on 127.0.0.1:0: every route, every
//! documented status, the JSON error shape for bad input, and durability across a restart.

mod kv_support;

use std::time::{Duration, Instant};

use kv_support::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;

fn put_body(seq: u64, value: &str) -> String {
    json!({"client_id": "c1", "seq": seq, "value": value}).to_string()
}

#[tokio::test]
async fn http_api_healthz() {
    let t = TestServer::start().await;
    let got = t.send(GET, "/healthz", None).await;
    assert_eq!(got, (StatusCode::OK, json!({"ok": true})));
}

#[tokio::test]
async fn http_api_put_get_delete() {
    let t = TestServer::start().await;
    // Every write answers the index it committed at (the leader's no-op is at 1).
    let put = t.send(PUT, "/kv/k1", Some(&put_body(1, "v1"))).await;
    assert_eq!(put, (StatusCode::OK, json!({"ok": true, "index": 2})));
    let get = t.send(GET, "/kv/k1", None).await;
    assert_eq!(get, (StatusCode::OK, json!({"ok": true, "value": "v1"})));

    // A retry of (c1, 1) with another value gets the stored reply and changes nothing (its
    // index: one this node applied at or after the write).
    let retry = t.send(PUT, "/kv/k1", Some(&put_body(1, "other"))).await;
    assert_eq!(retry, (StatusCode::OK, json!({"ok": true, "index": 2})));
    assert_eq!(t.send(GET, "/kv/k1", None).await.1["value"], "v1");

    // Values may be empty.
    t.send(PUT, "/kv/empty", Some(&put_body(2, ""))).await;
    assert_eq!(t.send(GET, "/kv/empty", None).await.1["value"], "");

    let del = json!({"client_id": "c1", "seq": 3}).to_string();
    let got = t.send(DELETE, "/kv/k1", Some(&del)).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({"ok": true, "deleted": 1, "index": 4})
        )
    );
    assert_error(
        &t.send(GET, "/kv/k1", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let del = json!({"client_id": "c1", "seq": 4}).to_string();
    let got = t.send(DELETE, "/kv/k1", Some(&del)).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({"ok": true, "deleted": 0, "index": 5})
        )
    );

    // Every consistency is accepted.
    for c in ["stale", "readindex", "lease"] {
        let got = t
            .send(GET, &format!("/kv/empty?consistency={c}"), None)
            .await;
        assert_eq!(got.0, StatusCode::OK, "{c}");
    }
}

#[tokio::test]
async fn http_api_batch_endpoints() {
    let t = TestServer::start().await;
    let mput = json!({"client_id": "c1", "seq": 1, "entries": [
        {"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "c", "value": "3"}]});
    let got = t.send(POST, "/kv/mput", Some(&mput.to_string())).await;
    assert_eq!(got, (StatusCode::OK, json!({"ok": true, "index": 2})));

    let mget = json!({"keys": ["a", "b", "missing"]}).to_string();
    let got = t.send(POST, "/kv/mget", Some(&mget)).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({"ok": true, "values": {"a": "1", "b": "2"}})
        )
    );

    let mdel = json!({"client_id": "c1", "seq": 2, "keys": ["a", "c", "missing"]});
    let got = t.send(POST, "/kv/mdelete", Some(&mdel.to_string())).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({"ok": true, "deleted": 2, "index": 3})
        )
    );

    let got = t.send(POST, "/kv/mget", Some(&mget)).await;
    assert_eq!(got.1["values"], json!({"b": "2"}));
    assert_eq!(t.entries().len(), 1);
}

#[tokio::test]
async fn http_api_cas() {
    let t = TestServer::start().await;
    let cas = |seq: u64, expected: &str, value: &str| {
        json!({"client_id": "c1", "seq": seq, "key": "k", "expected": expected, "value": value})
            .to_string()
    };
    // "" matches a missing key.
    let got = t.send(POST, "/kv/cas", Some(&cas(1, "", "v1"))).await;
    assert_eq!(got, (StatusCode::OK, json!({"ok": true, "index": 2})));

    // A failed cas is in the log too: it answers its index.
    let got = t.send(POST, "/kv/cas", Some(&cas(2, "wrong", "v2"))).await;
    assert_error(&got, StatusCode::CONFLICT, "cas_failed");
    assert_eq!(got.1["index"], 3);
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "v1");

    // A retry of the failed cas gets the same failure, even though it would now succeed.
    let got = t.send(POST, "/kv/cas", Some(&cas(2, "v1", "v2"))).await;
    assert_error(&got, StatusCode::CONFLICT, "cas_failed");

    let got = t.send(POST, "/kv/cas", Some(&cas(3, "v1", "v2"))).await;
    assert_eq!(got, (StatusCode::OK, json!({"ok": true, "index": 4})));
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "v2");
}

#[tokio::test]
async fn http_api_status() {
    let t = TestServer::start().await;
    let (s, before) = t.send(GET, "/status", None).await;
    assert_eq!(s, StatusCode::OK);
    // A new leader's first entry is its no-op: committed and applied before the server is ready.
    assert_eq!(before["commit_index"], 1);
    t.send(PUT, "/kv/a", Some(&put_body(1, "x"))).await;
    t.send(PUT, "/kv/b", Some(&put_body(2, "y"))).await;
    t.send(PUT, "/kv/b", Some(&put_body(2, "y"))).await; // a duplicate is not a new write

    let (s, st) = t.send(GET, "/status", None).await;
    assert_eq!(s, StatusCode::OK);
    let addr = t.endpoint();
    assert_eq!(st["id"], "n1");
    assert_eq!(st["role"], "leader");
    assert_eq!(st["term"], 1);
    assert_eq!(st["leader_id"], "n1");
    assert_eq!(st["leader_addr"], addr.as_str());
    // The no-op and two writes: the duplicate was answered from the dedupe table, not logged.
    for field in ["commit_index", "last_applied", "last_log_index"] {
        assert_eq!(st[field], 3, "{field} in {st}");
    }
    assert_eq!(st["snapshot_index"], 0);
    assert_eq!(st["peers"], json!([{"id": "n1", "addr": addr}]));
}

/// Polls `/ops/{id}` until the op is ready, with a deadline.
async fn await_op(t: &TestServer, op_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, body) = t.send(GET, &format!("/ops/{op_id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["op_id"], op_id);
        if body["ready"] == true {
            return body["result"].clone();
        }
        assert_eq!(body["result"], Value::Null, "not ready yet: {body}");
        assert!(Instant::now() < deadline, "op {op_id} never became ready");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn http_api_async_write_mode_op_result() {
    let t = TestServer::start_async().await;
    let (s, body) = t.send(PUT, "/kv/k", Some(&put_body(1, "v1"))).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(body["ok"], true);
    let op = body["op_id"]
        .as_str()
        .expect("op_id is a string")
        .to_string();
    // The op's result carries the index the write committed at.
    assert_eq!(await_op(&t, &op).await, json!({"ok": true, "index": 2}));
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "v1");

    // A semantic failure is the op's result, not the status of the write.
    let cas = json!({"client_id": "c1", "seq": 2, "key": "k", "expected": "no", "value": "v2"});
    let (s, body) = t.send(POST, "/kv/cas", Some(&cas.to_string())).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let op2 = body["op_id"].as_str().expect("op_id").to_string();
    assert_ne!(op, op2);
    let result = await_op(&t, &op2).await;
    assert_eq!(result["ok"], false);
    assert_eq!(result["err_code"], "cas_failed");

    // Bad input is still refused at once, with no op.
    let got = t.send(PUT, "/kv/k", Some(r#"{"seq":3}"#)).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request");

    let got = t.send(GET, "/ops/no-such-op", None).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
}

// ---------------------------------------------------------------------------------------------
// Bad input: the documented status, our JSON error shape, and no change to the store.

/// Sends a bad request to a server holding one key and checks the reply and that nothing changed.
async fn rejected(method: Method, path: &str, body: Option<&str>, status: StatusCode, code: &str) {
    let t = TestServer::start().await;
    t.send(PUT, "/kv/existing", Some(&put_body(1, "kept")))
        .await;
    let before = (t.entries(), t.applied());

    let got = t.send(method.clone(), path, body).await;
    assert_error(&got, status, code);

    assert_eq!(
        (t.entries(), t.applied()),
        before,
        "{method} {path} changed the store"
    );
    // The dedupe table is unchanged too: seq 2 was not consumed by the refused request.
    let got = t.send(PUT, "/kv/after", Some(&put_body(2, "v"))).await;
    assert_eq!(got.0, StatusCode::OK);
    assert_eq!(t.send(GET, "/kv/after", None).await.1["value"], "v");
}

const BAD: StatusCode = StatusCode::BAD_REQUEST;

#[tokio::test]
async fn http_api_rejects_malformed_json() {
    rejected(
        PUT,
        "/kv/k",
        Some(r#"{"client_id":"c1","seq":2,"#),
        BAD,
        "bad_request",
    )
    .await;
    rejected(POST, "/kv/mput", Some("not json"), BAD, "bad_request").await;
    rejected(POST, "/kv/mget", Some(""), BAD, "bad_request").await;
}

#[tokio::test]
async fn http_api_rejects_missing_fields() {
    rejected(
        PUT,
        "/kv/k",
        Some(r#"{"client_id":"c1","seq":2}"#),
        BAD,
        "bad_request",
    )
    .await;
    rejected(
        PUT,
        "/kv/k",
        Some(r#"{"client_id":"c1","value":"v"}"#),
        BAD,
        "bad_request",
    )
    .await;
    rejected(DELETE, "/kv/existing", None, BAD, "bad_request").await;
    let cas = r#"{"client_id":"c1","seq":2,"key":"existing","value":"v"}"#;
    rejected(POST, "/kv/cas", Some(cas), BAD, "bad_request").await;
    rejected(
        POST,
        "/kv/mdelete",
        Some(r#"{"client_id":"c1","seq":2}"#),
        BAD,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn http_api_rejects_mistyped_fields() {
    let body = r#"{"client_id":"c1","seq":"2","value":"v"}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    let body = r#"{"client_id":"c1","seq":-2,"value":"v"}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    let body = r#"{"client_id":7,"seq":2,"value":"v"}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    let body = r#"{"client_id":"c1","seq":2,"value":1}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    rejected(
        POST,
        "/kv/mget",
        Some(r#"{"keys":"existing"}"#),
        BAD,
        "bad_request",
    )
    .await;
    // Client identity the API requires: a non-empty id and a seq above 0.
    let body = r#"{"client_id":"","seq":2,"value":"v"}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    let body = r#"{"client_id":"c1","seq":0,"value":"v"}"#;
    rejected(PUT, "/kv/k", Some(body), BAD, "bad_request").await;
    rejected(
        GET,
        "/kv/existing?consistency=quorum",
        None,
        BAD,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn http_api_rejects_empty_keys() {
    rejected(GET, "/kv/", None, BAD, "bad_request").await;
    rejected(PUT, "/kv/", Some(&put_body(2, "v")), BAD, "bad_request").await;
    let del = r#"{"client_id":"c1","seq":2}"#;
    rejected(DELETE, "/kv/", Some(del), BAD, "bad_request").await;
    let cas = r#"{"client_id":"c1","seq":2,"key":"","expected":"","value":"v"}"#;
    rejected(POST, "/kv/cas", Some(cas), BAD, "bad_request").await;
    let mput =
        r#"{"client_id":"c1","seq":2,"entries":[{"key":"x","value":"1"},{"key":"","value":"2"}]}"#;
    rejected(POST, "/kv/mput", Some(mput), BAD, "bad_request").await;
    let mdel = r#"{"client_id":"c1","seq":2,"keys":["existing",""]}"#;
    rejected(POST, "/kv/mdelete", Some(mdel), BAD, "bad_request").await;
    rejected(
        POST,
        "/kv/mget",
        Some(r#"{"keys":[""]}"#),
        BAD,
        "bad_request",
    )
    .await;
    rejected(
        POST,
        "/kv/mput",
        Some(r#"{"client_id":"c1","seq":2,"entries":[]}"#),
        BAD,
        "bad_request",
    )
    .await;
    // A key that is not UTF-8 once decoded.
    rejected(GET, "/kv/%FF", None, BAD, "bad_request").await;
}

#[tokio::test]
async fn http_api_unknown_route_is_a_json_404() {
    rejected(GET, "/nope", None, StatusCode::NOT_FOUND, "not_found").await;
    // (`GET /kv` itself is the range read.)
    rejected(GET, "/kvs", None, StatusCode::NOT_FOUND, "not_found").await;
    rejected(
        POST,
        "/kvx/y",
        Some("{}"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn http_api_wrong_method_is_a_json_405() {
    let not_allowed = StatusCode::METHOD_NOT_ALLOWED;
    rejected(
        POST,
        "/kv/existing",
        Some("{}"),
        not_allowed,
        "method_not_allowed",
    )
    .await;
    rejected(DELETE, "/healthz", None, not_allowed, "method_not_allowed").await;
    rejected(PUT, "/status", None, not_allowed, "method_not_allowed").await;
    rejected(POST, "/ops/x", None, not_allowed, "method_not_allowed").await;
}

#[tokio::test]
async fn http_api_oversize_body_is_a_json_413() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 1024).await;
    t.send(PUT, "/kv/existing", Some(&put_body(1, "kept")))
        .await;
    let before = (t.entries(), t.applied());

    let big = put_body(2, &"x".repeat(2048));
    let got = t.send(PUT, "/kv/k", Some(&big)).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let entries: Vec<_> = (0..100)
        .map(|i| json!({"key": format!("k{i}"), "value": "0123456789"}))
        .collect();
    let mput = json!({"client_id": "c1", "seq": 2, "entries": entries}).to_string();
    assert!(mput.len() > 1024);
    let got = t.send(POST, "/kv/mput", Some(&mput)).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!((t.entries(), t.applied()), before);

    // Just under the limit is fine.
    let fits = put_body(2, &"x".repeat(900));
    assert!(fits.len() <= 1024);
    assert_eq!(t.send(PUT, "/kv/k", Some(&fits)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn http_api_keys_with_slashes_and_unicode_round_trip() {
    let t = TestServer::start().await;
    // Literal slashes in the path and encoded ones (%2F) name the same key.
    let got = t
        .send(
            PUT,
            "/kv/a/b%2Fc/%C3%A9t%C3%A9%20%E2%9C%93",
            Some(&put_body(1, "v")),
        )
        .await;
    assert_eq!(got.0, StatusCode::OK);
    let key = "a/b/c/été ✓";
    assert_eq!(t.entries().get(key).map(String::as_str), Some("v"));
    for path in [
        "/kv/a/b/c/%C3%A9t%C3%A9%20%E2%9C%93",
        "/kv/a%2Fb%2Fc%2F%C3%A9t%C3%A9%20%E2%9C%93",
    ] {
        assert_eq!(
            t.send(GET, path, None).await,
            (StatusCode::OK, json!({"ok": true, "value": "v"})),
            "{path}"
        );
    }
    // Keys named like the batch routes are still plain keys for GET/PUT/DELETE.
    for (seq, name) in [(2, "cas"), (3, "mget"), (4, "mput"), (5, "mdelete")] {
        let path = format!("/kv/{name}");
        assert_eq!(
            t.send(PUT, &path, Some(&put_body(seq, name))).await.0,
            StatusCode::OK
        );
        assert_eq!(t.send(GET, &path, None).await.1["value"], name);
    }
    // mget returns the decoded key.
    let got = t
        .send(POST, "/kv/mget", Some(&json!({"keys": [key]}).to_string()))
        .await;
    assert_eq!(got.1["values"][key], "v");
    let del = json!({"client_id": "c1", "seq": 6}).to_string();
    let got = t
        .send(DELETE, "/kv/a%2Fb/c/%C3%A9t%C3%A9%20%E2%9C%93", Some(&del))
        .await;
    assert_eq!(got.1["deleted"], 1);
}

#[tokio::test]
async fn http_api_restart_keeps_acknowledged_writes() {
    let t = TestServer::start().await;
    let mput = json!({"client_id": "c1", "seq": 1, "entries": [
        {"key": "a", "value": "1"}, {"key": "b", "value": "2"}]});
    assert_eq!(
        t.send(POST, "/kv/mput", Some(&mput.to_string())).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.send(PUT, "/kv/a", Some(&put_body(2, "1b"))).await.0,
        StatusCode::OK
    );
    let del = json!({"client_id": "c1", "seq": 3}).to_string();
    assert_eq!(t.send(DELETE, "/kv/b", Some(&del)).await.0, StatusCode::OK);

    let TestServer { server, dir, .. } = t;
    server.shutdown().await.expect("clean shutdown");
    let server = raftkv_native::spawn(kv_support::config(dir.path()))
        .await
        .expect("restart on the same data dir");
    let t = TestServer {
        server,
        dir,
        http: kv_support::http_client(),
    };

    assert_eq!(t.send(GET, "/kv/a", None).await.1["value"], "1b");
    assert_error(
        &t.send(GET, "/kv/b", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Two no-ops (one per term: before and after the restart) and the three writes.
    assert_eq!(t.send(GET, "/status", None).await.1["commit_index"], 5);
    // The dedupe table came back too: a retry of seq 2 is answered, not applied.
    assert_eq!(
        t.send(PUT, "/kv/a", Some(&put_body(2, "late"))).await.0,
        StatusCode::OK
    );
    assert_eq!(t.send(GET, "/kv/a", None).await.1["value"], "1b");
}

// ---------------------------------------------------------------------------------------------
// Read consistency, write indexes, min_index and leadership transfer on one node.

#[tokio::test]
async fn every_write_route_answers_the_index_it_committed_at() {
    let t = TestServer::start().await;
    let writes = [
        (PUT, "/kv/a", put_body(1, "1")),
        (
            DELETE,
            "/kv/a",
            json!({"client_id": "c1", "seq": 2}).to_string(),
        ),
        (
            POST,
            "/kv/cas",
            json!({"client_id": "c1", "seq": 3, "key": "b", "expected": "", "value": "2"})
                .to_string(),
        ),
        (
            POST,
            "/kv/mput",
            json!({"client_id": "c1", "seq": 4, "entries": [{"key": "c", "value": "3"}]})
                .to_string(),
        ),
        (
            POST,
            "/kv/mdelete",
            json!({"client_id": "c1", "seq": 5, "keys": ["c"]}).to_string(),
        ),
    ];
    let mut last = t.applied();
    for (method, path, body) in writes {
        let (s, reply) = t.send(method.clone(), path, Some(&body)).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {reply}");
        // One entry each, right after the one before; applied by the time it is answered.
        assert_eq!(reply["index"], last + 1, "{method} {path}: {reply}");
        last += 1;
        assert!(t.applied() >= last);
    }
}

#[tokio::test]
async fn a_lease_read_without_a_lease_falls_back_to_readindex_and_is_answered() {
    // With core's lease stub the leader never holds a lease: the read takes a ReadIndex round.
    // With the real core a lone leader holds one; either way the read is answered with the
    // acknowledged write.
    let t = TestServer::start().await;
    t.send(PUT, "/kv/a", Some(&put_body(1, "1"))).await;
    let got = t.send(GET, "/kv/a?consistency=lease", None).await;
    assert_eq!(got, (StatusCode::OK, json!({"ok": true, "value": "1"})));
    let mget = json!({"keys": ["a"]}).to_string();
    let got = t
        .send(POST, "/kv/mget?consistency=lease", Some(&mget))
        .await;
    assert_eq!(got.1["values"], json!({"a": "1"}));
    // A kvserver whose policy is lease serves plain reads the same way.
    let t = TestServer::start_with(|c| c.read_policy = raftkv_core::ReadPolicy::Lease).await;
    t.send(PUT, "/kv/a", Some(&put_body(1, "2"))).await;
    assert_eq!(t.send(GET, "/kv/a", None).await.1["value"], "2");
    assert_eq!(t.send(GET, "/status", None).await.1["read_policy"], "lease");
}

#[tokio::test]
async fn min_index_past_what_will_ever_apply_answers_503_not_caught_up_within_the_timeout() {
    let bound = Duration::from_millis(300);
    let t = TestServer::start_with(|c| c.min_index_timeout = bound).await;
    let w = t.send(PUT, "/kv/a", Some(&put_body(1, "1"))).await;
    let index = w.1["index"].as_u64().expect("index");
    // The write's own index: answered at once.
    let path = format!("/kv/a?min_index={index}");
    assert_eq!(t.send(GET, &path, None).await.1["value"], "1");
    // An index nobody will write, with no wait asked for and with more than the bound asked
    // for: not_caught_up after the server's bound, not later.
    for path in [
        "/kv/a?min_index=1000000".to_string(),
        "/kv/a?consistency=stale&min_index=1000000&wait_ms=60000".to_string(),
    ] {
        let started = Instant::now();
        let got = t.send(GET, &path, None).await;
        let took = started.elapsed();
        assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "not_caught_up");
        assert!(took >= bound && took < bound * 10, "{path}: {took:?}");
    }
    let got = t
        .send(GET, "/kv/a?min_index=1000000&wait_ms=10", None)
        .await;
    assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "not_caught_up");
    for bad in [
        "/kv/a?min_index=abc",
        "/kv/a?min_index=-1",
        "/kv/a?wait_ms=x",
    ] {
        assert_error(
            &t.send(GET, bad, None).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
}

#[tokio::test]
async fn transfer_leader_on_a_single_node_answers_409_no_candidate() {
    // A lone voter has nobody to hand over to (the stub and the real core agree).
    let t = TestServer::start().await;
    let got = t.send(POST, "/cluster/transfer-leader", None).await;
    assert_error(&got, StatusCode::CONFLICT, "no_candidate");
    // Handing over to itself is done already.
    let got = t
        .send(POST, "/cluster/transfer-leader", Some(r#"{"to":"n1"}"#))
        .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        (&got.1["to"], &got.1["leader_id"]),
        (&json!("n1"), &json!("n1"))
    );
    let got = t
        .send(POST, "/cluster/transfer-leader", Some(r#"{"to":7}"#))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request");
    let got = t.send(GET, "/cluster/transfer-leader", None).await;
    assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // Still the leader, still taking writes.
    assert_eq!(
        t.send(PUT, "/kv/a", Some(&put_body(1, "1"))).await.0,
        StatusCode::OK
    );
}

/// The first start stores the configuration in the data dir; a restart with a `--peers` that
/// names another (unreachable) member still starts from the stored one: this node alone, which
/// elects itself and serves writes, instead of waiting for a quorum it cannot get.
#[tokio::test]
async fn http_api_restart_uses_the_stored_configuration_over_new_peers() {
    let t = TestServer::start().await;
    assert_eq!(
        t.send(PUT, "/kv/a", Some(&put_body(1, "1"))).await.0,
        StatusCode::OK
    );
    let TestServer { server, dir, .. } = t;
    server.shutdown().await.expect("clean shutdown");
    assert!(dir.path().join("data").join("cluster").is_file());

    let mut c = kv_support::config(dir.path());
    c.peers = vec![
        "n1=127.0.0.1:1".parse().unwrap(),
        "n2=127.0.0.1:2".parse().unwrap(),
    ];
    let server = raftkv_native::spawn(c).await.expect("restart");
    let t = TestServer {
        server,
        dir,
        http: kv_support::http_client(),
    };
    let (status, cluster) = t.send(GET, "/cluster", None).await;
    assert_eq!(status, StatusCode::OK, "{cluster}");
    assert_eq!(cluster["voters"], json!(["n1"]));
    assert_eq!(cluster["leader_id"], "n1");
    assert_eq!(
        t.send(PUT, "/kv/a", Some(&put_body(2, "2"))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn http_api_a_write_above_seq_1_from_an_unknown_session_is_a_409() {
    let t = TestServer::start().await;
    let body = json!({"client_id": "fresh", "seq": 5, "value": "v"}).to_string();
    let got = t.send(PUT, "/kv/k", Some(&body)).await;
    assert_error(&got, StatusCode::CONFLICT, "session_expired");
    assert_eq!(got.1["ok"], false);
    assert!(t.entries().is_empty(), "nothing applied");
    // Seq 1 starts the session; then the client goes on from there.
    let first = json!({"client_id": "fresh", "seq": 1, "value": "v1"}).to_string();
    assert_eq!(t.send(PUT, "/kv/k", Some(&first)).await.0, StatusCode::OK);
    let again = json!({"client_id": "fresh", "seq": 5, "value": "v5"}).to_string();
    assert_eq!(t.send(PUT, "/kv/k", Some(&again)).await.0, StatusCode::OK);
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "v5");
}

#[tokio::test]
async fn http_api_an_idle_session_expires_in_log_time() {
    let t = TestServer::start_with(|c| c.session_limits.ttl = 300).await;
    let put = |client: &str, seq: u64, v: &str| {
        json!({"client_id": client, "seq": seq, "value": v}).to_string()
    };
    assert_eq!(
        t.send(PUT, "/kv/k", Some(&put("idle", 1, "a"))).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another client's write moves the log time past the idle session's ttl.
    assert_eq!(
        t.send(PUT, "/kv/other", Some(&put("busy", 1, "x"))).await.0,
        StatusCode::OK
    );
    let got = t.send(PUT, "/kv/k", Some(&put("idle", 2, "b"))).await;
    assert_error(&got, StatusCode::CONFLICT, "session_expired");
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "a");
    // A new session's first write goes through.
    assert_eq!(
        t.send(PUT, "/kv/k", Some(&put("idle.2", 1, "c"))).await.0,
        StatusCode::OK
    );
    assert_eq!(t.send(GET, "/kv/k", None).await.1["value"], "c");
}

/// Follows `path`'s pages (adding `&continue=` each time) and returns every key seen, in the
/// order seen, and how many pages it took.
async fn all_pages(t: &TestServer, path: &str) -> (Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let p = match &next {
            Some(n) => format!("{path}&continue={n}"),
            None => path.to_string(),
        };
        let (status, body) = t.send(GET, &p, None).await;
        assert_eq!(status, StatusCode::OK, "{p}: {body}");
        pages += 1;
        for kv in body["kvs"].as_array().unwrap() {
            assert_eq!(
                kv["value"].as_str().unwrap(),
                format!("v-{}", kv["key"].as_str().unwrap())
            );
            keys.push(kv["key"].as_str().unwrap().to_string());
        }
        assert_eq!(body["more"], json!(body.get("next").is_some()));
        match body.get("next").and_then(Value::as_str) {
            Some(n) => next = Some(n.to_string()),
            None => return (keys, pages),
        }
    }
}

#[tokio::test]
async fn range_reads_page_through_a_prefix_and_a_range_each_key_once_in_order() {
    let t = TestServer::start().await;
    let mut entries = Vec::new();
    for i in 0..25 {
        for p in ["a", "b", "c"] {
            let k = format!("{p}{i:02}");
            entries.push(json!({"key": k, "value": format!("v-{k}")}));
        }
    }
    let mput = json!({"client_id": "c1", "seq": 1, "entries": entries});
    let got = t.send(POST, "/kv/mput", Some(&mput.to_string())).await;
    assert_eq!(got.0, StatusCode::OK);

    let want: Vec<String> = (0..25).map(|i| format!("b{i:02}")).collect();
    for consistency in ["stale", "readindex", "lease"] {
        let (keys, pages) = all_pages(
            &t,
            &format!("/kv?prefix=b&limit=7&consistency={consistency}"),
        )
        .await;
        assert_eq!(keys, want, "{consistency}");
        assert_eq!(pages, 4);
    }
    // A range across prefixes, end exclusive.
    let (keys, pages) = all_pages(&t, "/kv?start=a20&end=b05&limit=3").await;
    let want: Vec<String> = (20..25)
        .map(|i| format!("a{i:02}"))
        .chain((0..5).map(|i| format!("b{i:02}")))
        .collect();
    assert_eq!(keys, want);
    assert_eq!(pages, 4);
    // The whole store, default limit: one page.
    let (keys, pages) = all_pages(&t, "/kv?min_index=1").await;
    assert_eq!(keys.len(), 75);
    assert_eq!(pages, 1);
    // An empty prefix page.
    let got = t.send(GET, "/kv?prefix=zz", None).await;
    assert_eq!(
        got,
        (
            StatusCode::OK,
            json!({"ok": true, "kvs": [], "more": false})
        )
    );
}

#[tokio::test]
async fn range_reads_refuse_meaningless_queries_with_400() {
    let t = TestServer::start().await;
    for bad in [
        "/kv?prefix=a&start=b",
        "/kv?prefix=a&end=b",
        "/kv?start=b&end=a",
        "/kv?start=a&end=a",
        "/kv?limit=0",
        "/kv?limit=10001",
        "/kv?limit=many",
        "/kv?consistency=quorum",
    ] {
        let got = t.send(GET, bad, None).await;
        assert_error(&got, BAD, "bad_request");
    }
}
