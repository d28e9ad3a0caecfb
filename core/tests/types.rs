//! Tests of the client-facing types: text and JSON forms, validation.

use raftkv_core::types::*;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test(unsupported = test)]
fn enums_round_trip_through_text_and_json() {
    for p in [ReadPolicy::Stale, ReadPolicy::ReadIndex] {
        assert_eq!(p.to_string().parse::<ReadPolicy>(), Ok(p));
        assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
    }
    for op in [
        OpType::Put,
        OpType::Delete,
        OpType::Cas,
        OpType::BatchPut,
        OpType::BatchDelete,
    ] {
        assert_eq!(op.to_string().parse::<OpType>(), Ok(op));
        assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{op}\""));
    }
    assert!("quorum".parse::<ReadPolicy>().is_err());
    assert_eq!(WriteMode::Async.to_string(), "async");
}

#[wasm_bindgen_test(unsupported = test)]
fn validate_rejects_missing_fields() {
    assert!(Command::put("", "v").validate().is_err());
    assert!(Command::put("k", "").validate().is_ok());
    assert!(Command::new(OpType::BatchPut).validate().is_err());
    assert!(Command::new(OpType::BatchDelete).validate().is_err());
    let mut c = Command::new(OpType::BatchDelete);
    c.keys = vec!["a".into(), String::new()];
    assert!(c.validate().is_err());
}

#[wasm_bindgen_test(unsupported = test)]
fn apply_result_json_omits_fields_that_do_not_apply() {
    let j = serde_json::to_string(&ApplyResult::ok()).unwrap();
    assert_eq!(j, r#"{"ok":true}"#);
    let j = serde_json::to_string(&ApplyResult::deleted(1)).unwrap();
    assert_eq!(j, r#"{"ok":true,"deleted":1}"#);
}
