//! Bearer tokens on the client API (`kvserver --tokens-file`): who may call which route.
//!
//! Every request but the probes (`/healthz`, `/readyz`) and the API's contract
//! (`/openapi.json`) must carry `Authorization: Bearer <token>` with a token of the tokens
//! file ([`Tokens`]), whose role must cover the route ([`required`]). One axum middleware
//! ([`protect`]) checks it in front of every route, the fallback included, so an unknown route
//! answers its 404 only to a caller with a valid token: strangers cannot probe which routes
//! exist, and no handler (nor the body limit) runs for them.
//!
//! | route | method | needs |
//! |---|---|---|
//! | `/healthz`, `/readyz` | any | nothing (liveness and readiness probes carry no token) |
//! | `/openapi.json` | any (GET) | nothing (the API's contract is public: it holds no data) |
//! | `/metrics` | any (GET) | `read` (Prometheus sends one: `authorization: {credentials_file: ...}`) |
//! | `/status` | any (GET) | `read` |
//! | `/debug/events` | any (GET) | `read` (the status as a stream, debug_events.rs) |
//! | `/kv/{key}`, `/kv/cas`, `/kv/mget`, `/kv/mput`, `/kv/mdelete`, `/kv/` | GET, HEAD | `read` |
//! | `/kv/mget` | POST | `read` (a batch of reads) |
//! | `/kv`, `/kv/...` | PUT, DELETE, POST, any other | `write` |
//! | `/ops/{op_id}` | any (GET) | `read` |
//! | `/cluster`, `/cluster/...` (members, learners, promote, remove, replace, transfer-leader) | any | `admin` |
//! | `/snapshot` | any (GET) | `admin` (a copy of all the data) |
//! | `/debug/...` (failpoints, in a `failpoints` build only) | any | `admin` |
//! | anything else (unknown routes) | any | a valid token of any role, then the 404 |
//!
//! Roles nest: `admin` ⊇ `write` ⊇ `read`. A route added to the API without a line here needs
//! only `read`: add it to [`required`] if it changes or exposes more than a read does. The table
//! matches paths exactly as the router does (percent-encoded, case-sensitive): a spelling the
//! table does not know is one no route matches.
//!
//! Answers: no or an unknown token is a 401 `unauthenticated` with `WWW-Authenticate: Bearer`,
//! a known token whose role is too small a 403 `forbidden`, both in the API's JSON error shape
//! ([`api::write_error`]). Refusals are logged without the token: a 401 at DEBUG (strangers can
//! send any number of them), a 403 at INFO with the token's name (a known client overstepping
//! its role is worth an operator's eye). Tokens are kept as SHA-256 digests and compared in
//! constant time, against every entry.
//!
//! The tokens file: one `TOKEN NAME ROLE` per line, separated by spaces or tabs; blank lines
//! and lines whose first non-blank character is `#` are skipped (a `#` inside a line is part of
//! it: tokens may contain one). A token is at least [`MIN_TOKEN_LEN`] printable ASCII
//! characters (it travels in a header); names identify callers in logs. Refused at start, with
//! the file and line: a missing field or an extra one, an unknown role, a short or non-ASCII
//! token, a token or a name given twice, a file without any token. A file that other users may
//! read is served anyway, with a warning (the operator may have reasons; the tokens are then
//! theirs too). The file is read once: a change needs a restart.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api;

/// The shortest token accepted: 16 characters, so that a token cannot be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do. Ordered: a role allows everything the roles below it allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads: keys, ranges, status, async results.
    Read,
    /// Reads and writes of keys.
    Write,
    /// Everything: membership, leadership, backups.
    Admin,
}

impl Role {
    /// The role's name in the tokens file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: served to anyone.
    Open,
    /// A token of at least this role.
    Needs(Role),
}

/// What `method path` needs, per the table in this module's documentation.
pub fn required(method: &Method, path: &str) -> Access {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if path == "/healthz" || path == "/readyz" || path == crate::openapi::PATH {
        return Access::Open;
    }
    // The status as a stream: no more than /status shows.
    if path == crate::debug_events::PATH {
        return Access::Needs(Role::Read);
    }
    if under("/cluster") || under("/debug") || path == "/snapshot" {
        return Access::Needs(Role::Admin);
    }
    if under("/kv") {
        let reads = *method == Method::GET
            || *method == Method::HEAD
            || (path == "/kv/mget" && *method == Method::POST);
        return Access::Needs(if reads { Role::Read } else { Role::Write });
    }
    Access::Needs(Role::Read)
}

/// One token of the file.
struct Entry {
    digest: [u8; 32],
    name: String,
    role: Role,
}

/// The tokens of a tokens file, as digests.
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and roles only: never the digests.
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.name, e.role)))
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(token));
    out
}

impl Tokens {
    /// The tokens of `path`; errors name the file (and the line). Warns when the file is
    /// readable by users other than its owner.
    pub fn from_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--tokens-file {}: {e}", path.display()))?;
        let tokens =
            Tokens::parse(&text).map_err(|e| format!("--tokens-file {}: {e}", path.display()))?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    "the tokens file is readable or writable by other users than its owner (chmod 600 it)"
                );
            }
        }
        Ok(tokens)
    }

    /// Parses a tokens file's text (format in the module documentation).
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries: Vec<Entry> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let bad = |why: String| Err(format!("line {line_no}: {why}"));
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let [token, name, role] = fields[..] else {
                return bad(format!(
                    "expected TOKEN NAME ROLE, got {} field(s)",
                    fields.len()
                ));
            };
            let Some(role) = Role::parse(role) else {
                return bad(format!("unknown role {role:?} (use read, write or admin)"));
            };
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return bad(format!(
                    "the token of {name:?} is not printable ASCII (it travels in an HTTP header)"
                ));
            }
            if token.len() < MIN_TOKEN_LEN {
                return bad(format!(
                    "the token of {name:?} is shorter than {MIN_TOKEN_LEN} characters"
                ));
            }
            let digest = digest(token.as_bytes());
            if let Some(e) = entries.iter().find(|e| e.digest == digest) {
                return bad(format!(
                    "the token of {name:?} is already the token of {:?}",
                    e.name
                ));
            }
            if entries.iter().any(|e| e.name == name) {
                return bad(format!("the name {name:?} is given twice"));
            }
            entries.push(Entry {
                digest,
                name: name.to_string(),
                role,
            });
        }
        if entries.is_empty() {
            return Err("no token in it (every request would be refused)".into());
        }
        Ok(Tokens { entries })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never, for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name and role of `token`, if it is one of these. The presented token's digest is
    /// compared with every entry's in constant time, and every entry is compared, so the time
    /// taken says nothing about how close a guess was or which entry matched.
    pub fn lookup(&self, token: &str) -> Option<(&str, Role)> {
        let presented = digest(token.as_bytes());
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&presented)) {
                found = Some((e.name.as_str(), e.role));
            }
        }
        found
    }
}

/// `router` with every route behind the tokens (see the module documentation), or `router`
/// unchanged without tokens (the API open, as without `--tokens-file`). Add it last, after
/// every route and fallback is in place: a layer covers only what it is added to.
pub fn protect(router: Router, tokens: Option<Arc<Tokens>>) -> Router {
    match tokens {
        Some(tokens) => router.layer(middleware::from_fn_with_state(tokens, check)),
        None => router,
    }
}

/// The bearer token of `Authorization`, if there is one (the scheme is case-insensitive).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn check(State(tokens): State<Arc<Tokens>>, req: Request, next: Next) -> Response {
    let Access::Needs(needed) = required(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let Some(presented) = bearer(&req) else {
        tracing::debug!(method = %req.method(), path = %req.uri().path(), "refused a request without a bearer token");
        return unauthenticated(
            "this API needs a token: send Authorization: Bearer <token>",
            "Bearer realm=\"raftkv\"",
        );
    };
    let Some((name, role)) = tokens.lookup(presented) else {
        tracing::debug!(method = %req.method(), path = %req.uri().path(), "refused a request with an unknown token");
        return unauthenticated(
            "unknown token",
            "Bearer realm=\"raftkv\", error=\"invalid_token\"",
        );
    };
    if role < needed {
        tracing::info!(
            token = name,
            role = role.as_str(),
            needs = needed.as_str(),
            method = %req.method(),
            path = %req.uri().path(),
            "refused a request its token's role does not cover"
        );
        let msg = format!(
            "token {name:?} has role {}; {} {} needs {}",
            role.as_str(),
            req.method(),
            req.uri().path(),
            needed.as_str()
        );
        return api::write_error(StatusCode::FORBIDDEN, "forbidden", &msg);
    }
    next.run(req).await
}

fn unauthenticated(msg: &str, challenge: &'static str) -> Response {
    let mut resp = api::write_error(StatusCode::UNAUTHORIZED, "unauthenticated", msg);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa-admin";
    const W: &str = "wwwwwwwwwwwwwwww-write";
    const R: &str = "rrrrrrrrrrrrrrrr-read";

    fn good() -> String {
        format!(
            "# tokens of the test cluster\n\n  {A} ops admin\n{W}\tapp write   \n# {R} old read\n{R} dash read\n"
        )
    }

    #[test]
    fn a_good_file_gives_each_token_its_name_and_role() {
        let t = Tokens::parse(&good()).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(A), Some(("ops", Role::Admin)));
        assert_eq!(t.lookup(W), Some(("app", Role::Write)));
        assert_eq!(t.lookup(R), Some(("dash", Role::Read)));
        assert_eq!(t.lookup("rrrrrrrrrrrrrrrr-rea"), None);
        assert_eq!(t.lookup(""), None);
        assert_eq!(t.lookup(&format!("{R} ")), None);
        // A token may hold a '#'.
        let t = Tokens::parse("abc#defghijklmnopq x read").unwrap();
        assert_eq!(t.lookup("abc#defghijklmnopq"), Some(("x", Role::Read)));
        // Debug output names callers, never tokens.
        let dbg = format!("{:?}", Tokens::parse(&good()).unwrap());
        assert!(dbg.contains("ops") && !dbg.contains(A), "{dbg}");
    }

    #[test]
    fn each_bad_file_is_refused_with_its_line() {
        let long = "0123456789abcdef";
        for (text, want) in [
            (
                format!("{long} n superuser"),
                "line 1: unknown role \"superuser\"",
            ),
            (format!("{long} n Read"), "unknown role \"Read\""),
            (
                format!("\n{long} n"),
                "line 2: expected TOKEN NAME ROLE, got 2 field(s)",
            ),
            (format!("{long} n read extra"), "got 4 field(s)"),
            ("n read".to_string(), "got 2 field(s)"),
            (
                format!("{long} a read\n{long} b write"),
                "line 2: the token of \"b\" is already the token of \"a\"",
            ),
            (
                format!("{long} a read\n{long}x a write"),
                "line 2: the name \"a\" is given twice",
            ),
            ("short n read".to_string(), "shorter than 16 characters"),
            (format!("{long}é n read"), "not printable ASCII"),
            (String::new(), "no token in it"),
            ("# only a comment\n\n".to_string(), "no token in it"),
        ] {
            let err = Tokens::parse(&text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = Tokens::from_file(Path::new("/nonexistent/tokens")).unwrap_err();
        assert!(err.contains("--tokens-file /nonexistent/tokens"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "x y z").unwrap();
        let err = Tokens::from_file(&path).unwrap_err();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("line 1"),
            "{err}"
        );
    }

    /// A router with one route per class, behind the tokens of [`good`].
    fn protected() -> Router {
        use axum::routing::{get, post, put};
        let ok = || async { api::write_json(StatusCode::OK, &serde_json::json!({"ok": true})) };
        let routes = Router::new()
            .route("/healthz", get(ok))
            .route("/kv/{*key}", get(ok).merge(put(ok)))
            .route("/cluster/remove", post(ok))
            .fallback(|| async {
                api::write_error(StatusCode::NOT_FOUND, "not_found", "no route")
            });
        protect(routes, Some(Arc::new(Tokens::parse(&good()).unwrap())))
    }

    async fn call(
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Option<String>, serde_json::Value) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, t);
        }
        let resp = protected()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_middleware_answers_401_403_or_lets_through() {
        let bearer = |t: &str| format!("Bearer {t}");
        let (status, challenge, body) = call(Method::GET, "/kv/a", None).await;
        assert_eq!(status, 401);
        assert_eq!(body["ok"], false);
        assert_eq!(body["err_code"], "unauthenticated");
        assert!(challenge.unwrap().starts_with("Bearer"));
        for wrong in ["Bearer nope-nope-nope-nope", "Basic abc", "Bearer", R] {
            let (status, challenge, body) = call(Method::GET, "/kv/a", Some(wrong)).await;
            assert_eq!(
                (status, body["err_code"].as_str()),
                (401, Some("unauthenticated")),
                "{wrong}"
            );
            assert!(challenge.is_some());
        }
        // The scheme is case-insensitive.
        assert_eq!(
            call(Method::GET, "/kv/a", Some(&format!("bearer {R}")))
                .await
                .0,
            200
        );
        let (status, _, body) = call(Method::PUT, "/kv/a", Some(&bearer(R))).await;
        assert_eq!(
            (status, body["err_code"].as_str()),
            (403, Some("forbidden"))
        );
        let msg = body["err_msg"].as_str().unwrap();
        assert!(msg.contains("dash") && !msg.contains(R), "{msg}");
        assert_eq!(call(Method::PUT, "/kv/a", Some(&bearer(W))).await.0, 200);
        assert_eq!(
            call(Method::POST, "/cluster/remove", Some(&bearer(W)))
                .await
                .0,
            403
        );
        assert_eq!(
            call(Method::POST, "/cluster/remove", Some(&bearer(A)))
                .await
                .0,
            200
        );
        assert_eq!(call(Method::GET, "/healthz", None).await.0, 200);
        // Unknown routes: 401 to strangers, 404 to callers.
        assert_eq!(call(Method::GET, "/secret-route", None).await.0, 401);
        assert_eq!(
            call(Method::GET, "/secret-route", Some(&bearer(R))).await.0,
            404
        );
    }

    #[test]
    fn roles_nest() {
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    }

    #[test]
    fn every_route_class_needs_its_role() {
        use Access::{Needs, Open};
        use Role::{Admin, Read, Write};
        let (get, head, put, post, delete) = (
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::POST,
            Method::DELETE,
        );
        for (method, path, want) in [
            (&get, "/healthz", Open),
            (&post, "/healthz", Open),
            (&get, "/readyz", Open),
            (&get, "/openapi.json", Open),
            (&get, "/metrics", Needs(Read)),
            (&get, "/status", Needs(Read)),
            (&head, "/status", Needs(Read)),
            (&get, "/kv/a", Needs(Read)),
            (&head, "/kv/a", Needs(Read)),
            (&get, "/kv/a/b%2Fc", Needs(Read)),
            (&get, "/kv", Needs(Read)),
            (&get, "/kv/cas", Needs(Read)),
            (&get, "/kv/", Needs(Read)),
            (&post, "/kv/mget", Needs(Read)),
            (&get, "/ops/abc", Needs(Read)),
            (&put, "/kv/a", Needs(Write)),
            (&delete, "/kv/a", Needs(Write)),
            (&post, "/kv/cas", Needs(Write)),
            (&post, "/kv/mput", Needs(Write)),
            (&post, "/kv/mdelete", Needs(Write)),
            (&put, "/kv/mget", Needs(Write)),
            (&post, "/kv", Needs(Write)),
            (&put, "/kv/", Needs(Write)),
            (&Method::PATCH, "/kv/a", Needs(Write)),
            (&get, "/cluster", Needs(Admin)),
            (&post, "/cluster/learners", Needs(Admin)),
            (&post, "/cluster/promote", Needs(Admin)),
            (&post, "/cluster/remove", Needs(Admin)),
            (&post, "/cluster/replace", Needs(Admin)),
            (&post, "/cluster/transfer-leader", Needs(Admin)),
            (&get, "/cluster/", Needs(Admin)),
            (&get, "/snapshot", Needs(Admin)),
            (&head, "/snapshot", Needs(Admin)),
            (&put, "/debug/failpoints/before-send", Needs(Admin)),
            (&get, "/debug/events", Needs(Read)),
            (&get, "/debug/events/x", Needs(Admin)),
            // Unknown routes: a valid token first, then the 404.
            (&get, "/nope", Needs(Read)),
            (&post, "/clusterx", Needs(Read)),
            (&get, "/kvx", Needs(Read)),
            (&get, "/healthz/x", Needs(Read)),
            (&get, "/snapshot/x", Needs(Read)),
            (&get, "/openapi.json/x", Needs(Read)),
            (&get, "/", Needs(Read)),
        ] {
            assert_eq!(required(method, path), want, "{method} {path}");
        }
    }
}
