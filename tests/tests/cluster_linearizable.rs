//! A real 3-node cluster under a leader crash, a restart and a partition of the next leader,
//! driven by concurrent clients doing put / readindex get / cas on a few keys; the recorded
//! history must be linearizable (core's checker, the one the simulator uses).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use raftkv_core::sim::history::CasResult;
use raftkv_core::sim::{History, HistoryOp, OpKind, OpStatus, linearizability};
use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(30);
const KEYS: u64 = 4;
const CLIENTS: usize = 4;

/// Sends one request to node `node`, following 307s to the leader; `(status, body)`.
async fn send(
    http: &reqwest::Client,
    addr: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut url = format!("http://{addr}{path}");
    for _ in 0..5 {
        let mut req = http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        if status == 307
            && let Some(loc) = resp.headers().get("location").and_then(|l| l.to_str().ok())
        {
            url = loc.to_string();
            continue;
        }
        let body = resp.json().await.unwrap_or(Value::Null);
        return Ok((status, body));
    }
    Err(format!("too many redirects, last {url}"))
}

/// One client: a fixed identity, one operation at a time on a few keys, every op recorded
/// with what it saw. A write without a definite answer is resent with the same
/// (client_id, seq) until it gets one: the dedupe table makes the resend harmless and answers
/// it with the original outcome, so the history holds few unknown writes (each of which would
/// multiply the checker's search).
async fn client_loop(
    c: usize,
    addrs: Vec<String>,
    started: Instant,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    history: Arc<Mutex<Vec<HistoryOp>>>,
) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .unwrap_or_default();
    let client_id = format!("lin-{}-c{c}", std::process::id());
    // Microseconds rather than milliseconds: fewer ties, so fewer orders for the checker to try.
    let now = || started.elapsed().as_micros() as u64;
    let mut node = c % addrs.len();
    let mut n = 0u64;
    let mut last_seen: Vec<String> = vec![String::new(); KEYS as usize];
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // get, put, cas on one key, then the next key: the cas expects what this client last
        // read or wrote there, so it succeeds unless another client wrote in between.
        let k = ((n / 3 + c as u64) % KEYS) as usize;
        let key = format!("lin{k}");
        let mut rec = HistoryOp {
            client: format!("c{c}"),
            op: OpKind::Get,
            key: key.clone(),
            keys: None,
            entries: None,
            values: None,
            value: None,
            expected: None,
            new: None,
            result: None,
            invoke: now(),
            complete: None,
            status: OpStatus::Unknown,
            stale: false,
            index: None,
            node: None,
            applied: None,
            min_index: None,
        };
        if n.is_multiple_of(3) {
            let path = format!("/kv/{key}?consistency=readindex");
            rec.value = Some(None);
            match send(&http, &addrs[node], Method::GET, &path, None).await {
                Ok((200, body)) => {
                    let v = body["value"].as_str().map(str::to_string);
                    last_seen[k] = v.clone().unwrap_or_default();
                    rec.value = Some(v);
                    rec.status = OpStatus::Ok;
                }
                Ok((404, _)) => {
                    last_seen[k].clear();
                    rec.status = OpStatus::Ok;
                }
                // An unanswered read constrains nothing; move on to another node.
                _ => node = (node + 1) % addrs.len(),
            }
        } else {
            let v = format!("c{c}-{n}");
            let (method, path, body) = if n % 3 == 1 {
                rec.op = OpKind::Put;
                rec.value = Some(Some(v.clone()));
                let body = json!({"client_id": client_id, "seq": n, "value": v});
                (Method::PUT, format!("/kv/{key}"), body)
            } else {
                rec.op = OpKind::Cas;
                rec.expected = Some(last_seen[k].clone());
                rec.new = Some(v.clone());
                let body = json!({"client_id": client_id, "seq": n, "key": key,
                                  "expected": last_seen[k], "value": v});
                (Method::POST, "/kv/cas".to_string(), body)
            };
            loop {
                match send(&http, &addrs[node], method.clone(), &path, Some(&body)).await {
                    Ok((200, _)) => {
                        rec.status = OpStatus::Ok;
                        if rec.op == OpKind::Cas {
                            rec.result = Some(CasResult::Ok);
                        }
                        last_seen[k] = v.clone();
                        break;
                    }
                    Ok((409, _)) if rec.op == OpKind::Cas => {
                        rec.status = OpStatus::Ok;
                        rec.result = Some(CasResult::Failed);
                        break;
                    }
                    _ if stop.load(Ordering::Relaxed) => break,
                    _ => {
                        // Pace the resends (not a synchronisation: any answer ends the loop).
                        node = (node + 1) % addrs.len();
                        tokio::time::sleep(raftkv_tests::wait::POLL_INTERVAL).await;
                    }
                }
            }
        }
        if rec.status == OpStatus::Ok {
            rec.complete = Some(now());
        }
        history.lock().await.push(rec);
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until at least `more` further operations have completed.
async fn progress(done: &AtomicU64, more: u64, what: &str) {
    let target = done.load(Ordering::Relaxed) + more;
    poll_until(what, TIMEOUT, || async move {
        Ok((done.load(Ordering::Relaxed) >= target).then_some(()))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn cluster_history_under_crash_and_partition_is_linearizable() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = Cluster::start(cfg).await.unwrap();
    let first = c.wait_for_leader(TIMEOUT).await.unwrap();
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i).to_string()).collect();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let history = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client_loop(
                i,
                addrs.clone(),
                started,
                Arc::clone(&stop),
                Arc::clone(&done),
                Arc::clone(&history),
            ))
        })
        .collect();

    progress(&done, 100, "ops before the crash").await;
    c.kill(first).unwrap();
    let second = c.wait_for_leader(TIMEOUT).await.unwrap();
    progress(&done, 100, "ops after the failover").await;
    c.restart(first).await.unwrap();
    c.isolate(second);
    poll_until("a leader on the majority side", TIMEOUT, || {
        let c = &c;
        async move {
            for i in (0..3).filter(|&i| i != second) {
                if c.client(i).status().await?["role"] == "leader" {
                    return Ok(Some(()));
                }
            }
            Ok(None)
        }
    })
    .await
    .unwrap();
    progress(&done, 100, "ops during the partition").await;
    c.heal_all();
    progress(&done, 100, "ops after healing").await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let ops = history.lock().await.clone();
    let answered = ops.iter().filter(|o| o.status == OpStatus::Ok).count();
    assert!(answered >= 300, "too few answered ops: {answered}");
    let history = History { ops };
    if let Err(e) = linearizability::check(&history) {
        panic!(
            "not linearizable: {e}\nhistory:\n{}",
            serde_json::to_string(&history).unwrap_or_default()
        );
    }
}
