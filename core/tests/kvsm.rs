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
