//! The KV state machine's tests (the seed's five, plus edge cases). They run natively and,
//! through wasm-bindgen-test, in wasm32 under Node.

use raftkv_core::types::{Command, Entry, OpType};
use raftkv_core::{ApplyResult, KvStateMachine};
use wasm_bindgen_test::wasm_bindgen_test;

fn batch_put(pairs: &[(&str, &str)]) -> Command {
    Command {
        entries: pairs
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Command::new(OpType::BatchPut)
    }
}

fn batch_delete(keys: &[&str]) -> Command {
    Command {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        ..Command::new(OpType::BatchDelete)
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_put_get_delete() {
    let mut sm = KvStateMachine::new();
    assert_eq!(sm.get("a"), None);
    assert_eq!(sm.apply(&Command::put("a", "1")), ApplyResult::ok());
    assert_eq!(sm.get("a").as_deref(), Some("1"));
    assert_eq!(sm.apply(&Command::put("a", "2")), ApplyResult::ok());
    assert_eq!(sm.get("a").as_deref(), Some("2"));
    assert_eq!(sm.apply(&Command::delete("a")), ApplyResult::deleted(1));
    assert_eq!(sm.get("a"), None);
    assert_eq!(sm.apply(&Command::delete("a")), ApplyResult::deleted(0));
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_cas_success_and_fail() {
    let mut sm = KvStateMachine::new();
    // A missing key counts as "".
    assert!(sm.apply(&Command::cas("k", "", "v1")).ok);
    assert_eq!(sm.get("k").as_deref(), Some("v1"));
    let r = sm.apply(&Command::cas("k", "wrong", "v2"));
    assert!(!r.ok);
    assert_eq!(r.err_code.as_deref(), Some("cas_failed"));
    assert_eq!(sm.get("k").as_deref(), Some("v1"));
    assert!(sm.apply(&Command::cas("k", "v1", "v2")).ok);
    assert_eq!(sm.get("k").as_deref(), Some("v2"));
    // "" no longer matches an existing key.
    assert!(!sm.apply(&Command::cas("k", "", "v3")).ok);
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_batch_put_batch_delete() {
    let mut sm = KvStateMachine::new();
    assert!(
        sm.apply(&batch_put(&[("a", "1"), ("b", "2"), ("c", "3")]))
            .ok
    );
    let got = sm.mget(&["a", "b", "c", "zz"]);
    assert_eq!(got.len(), 3);
    assert_eq!(got["b"], "2");
    assert_eq!(
        sm.apply(&batch_delete(&["a", "c", "zz"])),
        ApplyResult::deleted(2)
    );
    assert_eq!(
        sm.mget(&["a", "b", "c"]).into_keys().collect::<Vec<_>>(),
        ["b"]
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_dedupe_replay_same_seq_returns_same_reply() {
    let mut sm = KvStateMachine::new();
    let first = sm.apply(&Command::delete("x").with_client("c1", 1));
    assert_eq!(first, ApplyResult::deleted(0));
    sm.apply(&Command::put("x", "1").with_client("c2", 1));
    // Same (client, seq) again: the stored reply, unchanged, and no state change,
    // even though applying it now would delete a key.
    assert_eq!(sm.apply(&Command::delete("x").with_client("c1", 1)), first);
    assert_eq!(sm.get("x").as_deref(), Some("1"));
    // An older seq is also answered from the table (with the last reply).
    sm.apply(&Command::put("y", "a").with_client("c1", 5));
    assert_eq!(
        sm.apply(&Command::put("y", "b").with_client("c1", 3)),
        ApplyResult::ok()
    );
    assert_eq!(sm.get("y").as_deref(), Some("a"));
    assert_eq!(sm.last_seen("c1"), Some(5));
    assert_eq!(sm.last_seen("nobody"), None);
    // No client id: no dedupe.
    sm.apply(&Command::put("z", "1"));
    sm.apply(&Command::put("z", "2"));
    assert_eq!(sm.get("z").as_deref(), Some("2"));
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_bad_request_for_missing_fields() {
    let mut sm = KvStateMachine::new();
    let r = sm.apply(&Command::put("", "v").with_client("c", 1));
    assert_eq!(r.err_code.as_deref(), Some("bad_request"));
    assert!(sm.is_empty());
    assert_eq!(
        sm.apply(&Command::new(OpType::BatchPut))
            .err_code
            .as_deref(),
        Some("bad_request")
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn kvsm_snapshot_restore_round_trip() {
    let mut sm = KvStateMachine::new();
    sm.apply(&Command::put("b", "2").with_client("c1", 1));
    sm.apply(&Command::put("a", "1").with_client("c2", 1));
    let snap = sm.snapshot();
    let mut other = KvStateMachine::new();
    other.apply(&Command::put("junk", "x"));
    other.restore(&snap).unwrap();
    assert_eq!(other, sm);
    assert_eq!(other.snapshot(), snap);
    assert_eq!(other.last_seen("c2"), Some(1));
    // Equal states, equal bytes, whatever the order of writes.
    let mut third = KvStateMachine::new();
    third.apply(&Command::put("a", "1").with_client("c2", 1));
    third.apply(&Command::put("b", "2").with_client("c1", 1));
    assert_eq!(third.snapshot(), snap);
    // Garbage is refused and changes nothing.
    assert!(other.restore(b"{not json").is_err());
    assert_eq!(other, sm);
}

// ----- client sessions -----

use raftkv_core::kvsm::{SESSION_EXPIRED, SessionLimits};
use raftkv_core::{ApplyEntry, StateMachine};

/// Applies `cmd` as log entry `index` created at leader time `time`.
fn apply_at(sm: &mut KvStateMachine, index: u64, time: u64, cmd: &Command) -> ApplyResult {
    let e = ApplyEntry {
        index,
        time,
        cmd: Some(cmd),
    };
    let mut r = sm.apply_batch(&[e]).expect("the memory store never fails");
    r.pop().expect("one reply")
}

/// A Raft entry of its own (no command) at `index`, `time`.
fn tick_at(sm: &mut KvStateMachine, index: u64, time: u64) {
    let e = ApplyEntry::<Command> {
        index,
        time,
        cmd: None,
    };
    sm.apply_batch(&[e]).expect("the memory store never fails");
}

fn put_as(client: &str, seq: u64, k: &str, v: &str) -> Command {
    Command::put(k, v).with_client(client, seq)
}

#[wasm_bindgen_test(unsupported = test)]
fn sessions_idle_past_the_ttl_expire_at_a_log_time() {
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 100, max: 0 });
    assert!(apply_at(&mut sm, 1, 1_000, &put_as("a", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 1_050, &put_as("b", 1, "k", "2")).ok);
    // Exactly ttl idle: kept.
    tick_at(&mut sm, 3, 1_100);
    assert_eq!(sm.last_seen("a"), Some(1));
    // Past it: a goes, b (idle 51 ms) stays.
    tick_at(&mut sm, 4, 1_101);
    assert_eq!(sm.last_seen("a"), None);
    assert_eq!(sm.last_seen("b"), Some(1));
    assert_eq!(sm.log_time(), 1_101);
    tick_at(&mut sm, 5, 1_200);
    assert_eq!(sm.session_count(), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn the_cap_drops_the_least_recently_active_first() {
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 0, max: 2 });
    assert!(apply_at(&mut sm, 1, 10, &put_as("a", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 20, &put_as("b", 1, "k", "2")).ok);
    // a is active again: b is now the oldest.
    assert!(apply_at(&mut sm, 3, 30, &put_as("a", 2, "k", "3")).ok);
    // The third session goes over the cap at the next entry, which drops b.
    assert!(apply_at(&mut sm, 4, 40, &put_as("c", 1, "k", "4")).ok);
    tick_at(&mut sm, 5, 40);
    let ids: Vec<&str> = sm.sessions().keys().map(String::as_str).collect();
    assert_eq!(ids, ["a", "c"]);
    // Same times: the smaller id is the older.
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 0, max: 1 });
    assert!(apply_at(&mut sm, 1, 10, &put_as("y", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 10, &put_as("x", 1, "k", "2")).ok);
    tick_at(&mut sm, 3, 10);
    assert_eq!(sm.sessions().keys().collect::<Vec<_>>(), ["y"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn log_time_never_goes_back_when_a_leaders_clock_is_behind() {
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 100, max: 0 });
    assert!(apply_at(&mut sm, 1, 1_000, &put_as("a", 1, "k", "1")).ok);
    tick_at(&mut sm, 2, 1_500);
    assert_eq!(sm.session_count(), 0, "idle 500 ms");
    // A new leader whose clock is far behind: the log time stays at 1500, and a session it
    // starts is stamped with the log time, not the leader's.
    assert!(apply_at(&mut sm, 3, 200, &put_as("b", 1, "k", "2")).ok);
    assert_eq!(sm.log_time(), 1_500);
    assert_eq!(sm.sessions()["b"].last_time, 1_500);
    tick_at(&mut sm, 4, 300);
    assert_eq!(sm.last_seen("b"), Some(1), "not expired by a clock behind");
    tick_at(&mut sm, 5, 1_601);
    assert_eq!(sm.last_seen("b"), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn an_expired_sessions_retry_is_refused_and_changes_nothing() {
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 100, max: 0 });
    assert!(apply_at(&mut sm, 1, 0, &put_as("a", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 10, &put_as("a", 2, "k", "2")).ok);
    let before = (sm.entries(), sm.sessions().clone());
    // The retry of seq 2 after a's session expired: refused, and not applied again.
    let r = apply_at(&mut sm, 3, 500, &put_as("a", 2, "k", "2"));
    assert!(!r.ok);
    assert_eq!(r.err_code.as_deref(), Some(SESSION_EXPIRED));
    assert_eq!(sm.entries(), before.0);
    assert!(sm.sessions().is_empty(), "the refusal starts no session");
    // Any later seq too, for any operation.
    for (i, cmd) in [
        put_as("a", 3, "k", "3"),
        Command::delete("k").with_client("a", 4),
        Command::cas("k", "2", "x").with_client("a", 5),
        Command::put("k", "9").with_client("never-seen", 7),
    ]
    .iter()
    .enumerate()
    {
        let r = apply_at(&mut sm, 4 + i as u64, 500, cmd);
        assert_eq!(r.err_code.as_deref(), Some(SESSION_EXPIRED), "{cmd:?}");
    }
    assert_eq!(sm.get("k").as_deref(), Some("2"));
    assert!(sm.sessions().is_empty());
}

#[wasm_bindgen_test(unsupported = test)]
fn seq_one_after_expiry_starts_a_fresh_session() {
    let mut sm = KvStateMachine::with_limits(SessionLimits { ttl: 100, max: 0 });
    assert!(apply_at(&mut sm, 1, 0, &put_as("a", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 10, &put_as("a", 2, "k", "2")).ok);
    tick_at(&mut sm, 3, 500);
    assert_eq!(sm.last_seen("a"), None);
    assert!(apply_at(&mut sm, 4, 510, &put_as("a.2", 1, "k", "3")).ok);
    assert!(apply_at(&mut sm, 5, 520, &put_as("a.2", 2, "k", "4")).ok);
    // Its retry is deduplicated as usual.
    assert!(apply_at(&mut sm, 6, 530, &put_as("a.2", 2, "k", "4")).ok);
    assert_eq!(sm.last_seen("a.2"), Some(2));
    assert_eq!(sm.sessions()["a.2"].last_time, 520);
    assert_eq!(sm.get("k").as_deref(), Some("4"));
}

#[wasm_bindgen_test(unsupported = test)]
fn snapshots_keep_sessions_and_log_time() {
    let limits = SessionLimits { ttl: 100, max: 0 };
    let mut sm = KvStateMachine::with_limits(limits);
    assert!(apply_at(&mut sm, 1, 1_000, &put_as("a", 1, "k", "1")).ok);
    assert!(apply_at(&mut sm, 2, 1_080, &put_as("b", 1, "j", "2")).ok);
    let data = sm.snapshot();
    let mut restored = KvStateMachine::with_limits(limits);
    restored.restore(&data).expect("restores");
    assert_eq!(restored.sessions(), sm.sessions());
    assert_eq!(restored.log_time(), 1_080);
    let mut installed = KvStateMachine::with_limits(limits);
    installed.install(2, &mut &data[..]).expect("installs");
    assert_eq!(installed.sessions(), sm.sessions());
    assert_eq!(installed.log_time(), 1_080);
    // All three expire the same sessions at the next entry, even one with an old time.
    for m in [&mut sm, &mut restored, &mut installed] {
        tick_at(m, 3, 50);
        tick_at(m, 4, 1_150);
    }
    assert_eq!(sm.sessions().keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(restored.sessions(), sm.sessions());
    assert_eq!(installed.sessions(), sm.sessions());
    assert_eq!(installed, sm);
}
