//! Finding the `kvserver` and `kvctl` binaries: built once per test process with the same cargo,
//! target dir and profile as the running test, so `cargo test` alone is enough.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Overrides the kvserver binary, e.g. for a release build made elsewhere.
pub const KVSERVER_ENV: &str = "RAFTKV_KVSERVER";
/// Overrides the kvctl binary.
pub const KVCTL_ENV: &str = "RAFTKV_KVCTL";
/// Overrides the playground binary.
pub const PLAYGROUND_ENV: &str = "RAFTKV_PLAYGROUND";
/// Overrides the failpoints build of kvserver (see [`kvserver_failpoints`]).
pub const KVSERVER_FAILPOINTS_ENV: &str = "RAFTKV_KVSERVER_FAILPOINTS";

/// The path of an up-to-date `kvserver`, building it on first use. Errors carry cargo's output.
pub fn kvserver() -> Result<PathBuf, String> {
    locate("kvserver", KVSERVER_ENV)
}

/// The path of an up-to-date `kvctl`, building it on first use.
pub fn kvctl() -> Result<PathBuf, String> {
    locate("kvctl", KVCTL_ENV)
}

/// The path of an up-to-date `playground` (the page's server; `--dev-cluster` runs nodes).
pub fn playground() -> Result<PathBuf, String> {
    locate("playground", PLAYGROUND_ENV)
}

/// The path of an up-to-date kvserver built with the `failpoints` feature (it reads
/// `FAILPOINTS` and serves `/debug/failpoints`), building it on first use: the
/// `kvserver-failpoints` binary, so that its build never replaces the plain `kvserver` that
/// other tests may be running from the same target dir. Only raftkv-native itself is compiled
/// a second time; its dependencies are shared with the plain build.
pub fn kvserver_failpoints() -> Result<PathBuf, String> {
    if let Some(path) = from_env(KVSERVER_FAILPOINTS_ENV) {
        return path;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let profile_dir = BUILT
        .get_or_init(|| build(&["--bin", "kvserver-failpoints", "--features", "failpoints"]))
        .clone()?;
    built(&profile_dir, "kvserver-failpoints")
}

/// The path in variable `env`, if it is set: `Err` if it names no file.
fn from_env(env: &str) -> Option<Result<PathBuf, String>> {
    let path = PathBuf::from(std::env::var_os(env)?);
    Some(if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{env}={} is not a file", path.display()))
    })
}

/// `name` from the variable `env` if set, else from the one build of both binaries.
fn locate(name: &str, env: &str) -> Result<PathBuf, String> {
    if let Some(path) = from_env(env) {
        return path;
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let profile_dir = BUILT.get_or_init(|| build(&["--bins"])).clone()?;
    built(&profile_dir, name)
}

/// Binary `name` in `profile_dir`, which cargo has just built.
fn built(profile_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "cargo built {name} but {} is missing",
            path.display()
        ))
    }
}

/// Builds raftkv-native's binaries (`which`: cargo's target selection and features) for this
/// test's profile; returns the folder they are in.
fn build(which: &[&str]) -> Result<PathBuf, String> {
    // A test binary lives in <target>/<profile dir>/deps/.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("unexpected profile dir {}", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => return Err(format!("unexpected profile dir {}", profile_dir.display())),
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("tests crate has no parent dir")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    // Cargo sets these for the running test; a build script that tracks one (ring's tracks
    // CARGO_MANIFEST_DIR) would see it change and rebuild ring, rustls and reqwest (two
    // minutes), and the next top-level build would rebuild them back.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_a_test) {
            command.env_remove(key);
        }
    }
    let out = command
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--quiet", "-p", "raftkv-native"])
        .args(which)
        .arg("--profile")
        .arg(&profile)
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build {} of raftkv-native failed ({}):\n{}",
            which.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(profile_dir.to_path_buf())
}

/// Whether `var` is one of the variables cargo sets for a test binary it runs (as opposed to
/// the user's own configuration, such as `CARGO_HOME` or `CARGO_PROFILE_*`).
fn set_by_cargo_for_a_test(var: &str) -> bool {
    var.starts_with("CARGO_PKG_")
        || var.starts_with("CARGO_BIN_")
        || matches!(
            var,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        )
}
