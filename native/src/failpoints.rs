//! Failpoints: named places in kvserver's storage, apply and send paths where a test can make
//! it fail, stall or drop, to check that a node either serves correctly or stops cleanly.
//!
//! Built only with the `failpoints` cargo feature (tikv's `fail` crate; without the feature
//! every point compiles to nothing, and release builds leave it off). A build with it reads
//! `FAILPOINTS=name=actions;name=actions` at start, and serves `PUT /debug/failpoints/{name}`
//! (the body is the actions) and `DELETE /debug/failpoints/{name}` so a test can change them
//! while the node runs; those routes need an admin token when tokens are on.
//!
//! Actions are the `fail` crate's: `return` (the point's failure below), `sleep(ms)`,
//! `panic`, `off`, with a probability or a count in front (`20%return`, `1*return`), chained
//! with `->`. The points and what `return` does:
//!
//! | point | where | `return` |
//! |---|---|---|
//! | `log-before-fsync` | the Raft log's fdatasync | fails before it (I/O error) |
//! | `log-after-fsync` | the same | fails after it (the bytes are durable) |
//! | `log-skip-fsync` | the same | skips it and reports success: the log acknowledges entries that only the page cache holds (a deliberate break, for the power-loss test) |
//! | `snapshot-before-save` | a snapshot the node wrote, before its final fsync | I/O error |
//! | `snapshot-after-save` | the same, after it | I/O error |
//! | `snapshot-before-install` | a received snapshot, before the state machine takes it | error |
//! | `snapshot-after-install` | the same, after it | error |
//! | `before-apply` | a batch of committed entries, before the engine applies it | error |
//! | `before-send` | a message to a peer, before the transport queues it | dropped |
//!
//! `sleep(ms)` at `log-before-fsync` is a slow disk. Every error above stops the node: it
//! answers 503 `unavailable` from then on and logs why at ERROR, and nothing it did not make
//! durable was acknowledged (the log's answers wait for the fsync).

/// Sets the failpoints of a `FAILPOINTS`-style list (`name=actions;...`), or says which
/// entry is wrong. Without the `failpoints` feature, any non-empty list is refused.
pub fn configure(list: &str) -> Result<(), String> {
    for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, actions) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected name=actions"))?;
        set(name.trim(), actions.trim())?;
    }
    Ok(())
}

/// Sets one failpoint's actions.
#[cfg(feature = "failpoints")]
pub fn set(name: &str, actions: &str) -> Result<(), String> {
    if !POINTS.contains(&name) {
        return Err(format!(
            "{name:?}: no such failpoint (there are {})",
            POINTS.join(", ")
        ));
    }
    fail::cfg(name, actions).map_err(|e| format!("{name}={actions}: {e}"))
}

/// Without the feature there are no failpoints to set.
#[cfg(not(feature = "failpoints"))]
pub fn set(name: &str, _actions: &str) -> Result<(), String> {
    Err(format!(
        "{name}: this kvserver was built without the failpoints feature"
    ))
}

/// Every failpoint's name, as in the module's table.
pub const POINTS: &[&str] = &[
    "log-before-fsync",
    "log-after-fsync",
    "log-skip-fsync",
    "snapshot-before-save",
    "snapshot-after-save",
    "snapshot-before-install",
    "snapshot-after-install",
    "before-apply",
    "before-send",
];

/// The I/O error a failpoint's `return` stands for.
pub fn io_error(point: &str) -> std::io::Error {
    std::io::Error::other(format!("failpoint {point}"))
}

/// Whether failpoint `name` fires now (its `return` action). Without the feature: never,
/// and the check compiles away.
#[inline]
pub fn fires(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    return fail::eval(name, |_| true).unwrap_or(false);
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}

/// The routes a failpoints build serves (see the module doc).
#[cfg(feature = "failpoints")]
pub fn router() -> axum::Router {
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::put;

    use crate::api::{write_error, write_json};

    async fn put_point(Path(name): Path<String>, actions: String) -> axum::response::Response {
        match set(&name, actions.trim()) {
            Ok(()) => write_json(
                StatusCode::OK,
                &serde_json::json!({"ok": true, "failpoint": name, "actions": actions.trim()}),
            ),
            Err(e) => write_error(StatusCode::BAD_REQUEST, "bad_request", &e),
        }
    }
    async fn delete_point(Path(name): Path<String>) -> axum::response::Response {
        fail::remove(&name);
        write_json(
            StatusCode::OK,
            &serde_json::json!({"ok": true, "failpoint": name}),
        )
    }
    axum::Router::new().route(
        "/debug/failpoints/{name}",
        put(put_point).delete(delete_point),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_list_is_refused_naming_the_entry() {
        let e = configure("log-before-fsync").unwrap_err();
        assert!(e.contains("log-before-fsync"), "{e}");
        assert!(configure("").is_ok());
        assert!(configure(" ; ").is_ok());
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn an_unknown_point_or_action_is_refused() {
        let e = configure("no-such-point=return").unwrap_err();
        assert!(e.contains("no such failpoint"), "{e}");
        let e = configure("before-send=explode").unwrap_err();
        assert!(e.contains("before-send"), "{e}");
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_point_fires_as_configured_and_stops_when_removed() {
        let _guard = fail::FailScenario::setup();
        assert!(!fires("before-send"));
        configure("before-send=1*return").unwrap();
        assert!(fires("before-send"), "the first pass fires");
        assert!(!fires("before-send"), "1*return fires once");
        set("before-send", "return").unwrap();
        assert!(fires("before-send"));
        fail::remove("before-send");
        assert!(!fires("before-send"));
    }

    #[cfg(not(feature = "failpoints"))]
    #[test]
    fn without_the_feature_nothing_fires_and_setting_is_refused() {
        assert!(configure("before-send=return").is_err());
        assert!(!fires("before-send"));
    }
}
