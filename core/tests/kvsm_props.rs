//! Property tests of the KV state machine (native only: proptest needs OS facilities that
//! wasm32-unknown-unknown lacks; the example-based tests in kvsm.rs run on both).
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use raftkv_core::KvStateMachine;
use raftkv_core::types::{Command, Entry, OpType};

/// Small key and client spaces, so that commands collide and dedupe is exercised.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "a/b", "ключ", ""]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "1", "2", "x y", "ü"]).prop_map(String::from)
}

fn command() -> impl Strategy<Value = Command> {
    let op = prop::sample::select(vec![
        OpType::Put,
        OpType::Delete,
        OpType::Cas,
        OpType::BatchPut,
        OpType::BatchDelete,
    ]);
    let client = prop::sample::select(vec!["", "c1", "c2", "c3"]).prop_map(String::from);
    (
        op,
        client,
        0u64..6,
        key(),
        value(),
        value(),
        prop::collection::vec((key(), value()), 0..4),
        prop::collection::vec(key(), 0..4),
    )
        .prop_map(|(op, client_id, seq, key, value, expected, pairs, keys)| {
            let entries = pairs
                .into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect();
            Command {
                client_id,
                seq,
                op,
                key,
                value,
                expected,
                entries,
                keys,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// snapshot → restore → snapshot gives the same bytes, and the restored machine is equal.
    #[test]
    fn snapshot_restore_snapshot_is_stable(cmds in prop::collection::vec(command(), 0..40)) {
        let mut sm = KvStateMachine::new();
        for c in &cmds {
            sm.apply(c);
        }
        let snap = sm.snapshot();
        let mut restored = KvStateMachine::new();
        restored.restore(&snap).unwrap();
        prop_assert_eq!(&restored, &sm);
        prop_assert_eq!(restored.snapshot(), snap);
    }

    /// Replaying any already-applied command (with a client id and seq) changes nothing and
    /// returns the reply that client last got.
    #[test]
    fn replaying_applied_commands_changes_nothing(
        cmds in prop::collection::vec(command(), 1..40),
    ) {
        let mut sm = KvStateMachine::new();
        let mut replies = Vec::new();
        for c in &cmds {
            replies.push(sm.apply(c));
        }
        let before = sm.clone();
        // Refused commands (seq above 1 before the client had a session) were not applied.
        let applied = cmds.iter().zip(&replies).filter(|(c, r)| {
            !c.client_id.is_empty()
                && c.seq != 0
                && r.err_code.as_deref() != Some("session_expired")
        });
        for (c, _) in applied {
            // The client's last recorded seq is >= this one, so this is a duplicate.
            let last = sm.last_seen(&c.client_id).unwrap();
            prop_assert!(last >= c.seq);
            let again = sm.apply(c);
            // The reply is the stored last reply of that client: equal to what the command
            // that set last_seen got.
            let owner = cmds
                .iter()
                .zip(&replies)
                .filter(|(o, r)| {
                    o.client_id == c.client_id
                        && o.seq == last
                        && r.err_code.as_deref() != Some("session_expired")
                })
                .map(|(_, r)| r)
                .next()
                .unwrap();
            prop_assert_eq!(&again, owner);
            prop_assert_eq!(&sm, &before);
        }
    }
}
