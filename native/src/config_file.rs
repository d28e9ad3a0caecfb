//! Where kvserver's settings come from: the command line, `RAFTKV_*` environment variables and
//! a TOML file (`--config FILE`), in that order of precedence, over the built-in defaults.
//!
//! ```text
//! flag  >  RAFTKV_<FLAG> variable  >  key of the --config file  >  default
//! ```
//!
//! Every long flag has a variable, its name upper-cased with `-` as `_` behind `RAFTKV_`
//! (`--data-dir` is `RAFTKV_DATA_DIR`, `--config` itself `RAFTKV_CONFIG`), and a key of the
//! file, the flag's name (`data-dir = "/var/lib/raftkv"`). A file's value is a string, an
//! integer, a boolean or, for a flag that takes several values, an array (`peers = ["n1=...",
//! "n2=..."]`); a variable's is the flag's text (several values comma-separated). An empty
//! variable counts as unset. Precedence is per setting, never merged: `--peers` on the command
//! line replaces the file's whole `peers` list.
//!
//! The three layers become one command line (the file's and the variables' settings as
//! `--flag=value` before the real flags) that clap parses once, so every value passes the same
//! parser and the flags' relations (`--cert` needs `--key`, ...) hold across sources. Before
//! that, each value from a variable or the file is parsed alone, so a bad one is refused
//! naming where it came from (`RAFTKV_HEARTBEAT_MS: ...`, `--config /etc/raftkv.toml:
//! heartbeat-ms: ...`); a key the file should not have (no such flag) is refused too. The
//! checks [`ServerConfig`] makes on the whole are made here as well, and their error then
//! lists which settings came from outside the command line.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};

use crate::config::{Args, ServerConfig};

/// The prefix of kvserver's environment variables.
pub const ENV_PREFIX: &str = "RAFTKV_";

/// Why kvserver's settings cannot be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// clap's own answer about the command line as a whole: `--help` and `--version` too,
    /// which [`clap::Error::exit`] prints to stdout with exit code 0.
    Clap(clap::Error),
    /// A value from a variable or the file, or the file itself, is wrong; the message names
    /// the source.
    Invalid(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Clap(e) => write!(f, "{}", first_line(e)),
            LoadError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LoadError {}

/// The variable of the flag `--long` (`data-dir` → `RAFTKV_DATA_DIR`).
pub fn env_var_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// kvserver's settings from the process's command line, environment and `--config` file; on
/// an error prints it and exits (code 2; 0 for `--help` and `--version`).
pub fn parse_or_exit() -> Args {
    match load(std::env::args_os(), |name| std::env::var_os(name)) {
        Ok(args) => args,
        Err(LoadError::Clap(e)) => e.exit(),
        Err(LoadError::Invalid(m)) => {
            eprintln!("kvserver: {m}");
            std::process::exit(2)
        }
    }
}

/// One setting that came from somewhere other than the command line.
struct Outside {
    /// The flag's long name.
    long: String,
    /// `RAFTKV_X` or `--config FILE`.
    source: String,
}

/// kvserver's settings from `argv` (its first item the program name), the variables `env`
/// looks up, and the `--config` file if the command line or `RAFTKV_CONFIG` names one.
pub fn load<I, T>(argv: I, env: impl Fn(&str) -> Option<OsString>) -> Result<Args, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut cmd = Args::command();
    cmd.build();
    let env = |name: &str| env(name).filter(|v| !v.is_empty());

    // Which settings the command line gives (leniently: relations between flags are checked
    // once every source is in).
    let given = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)
        .map_err(LoadError::Clap)?;
    let on_command_line = |id: &str| given.value_source(id) == Some(ValueSource::CommandLine);

    let mut extra: Vec<OsString> = Vec::new();
    let mut outside: Vec<Outside> = Vec::new();
    let mut from_env: BTreeSet<String> = BTreeSet::new();
    for arg in settable(&cmd) {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        let var = env_var_name(long);
        if on_command_line(id) {
            continue;
        }
        if let Some(value) = env(&var) {
            check_value(&cmd, long, &value)
                .map_err(|e| LoadError::Invalid(format!("{var}: {e}")))?;
            extra.push(flag_with_value(long, &value));
            from_env.insert(id.to_string());
            outside.push(Outside {
                long: long.to_string(),
                source: var,
            });
        }
    }

    let file: Option<PathBuf> = given
        .get_one::<PathBuf>("config")
        .filter(|_| on_command_line("config"))
        .cloned()
        .or_else(|| env(&env_var_name("config")).map(PathBuf::from));
    if let Some(path) = &file {
        let source = format!("--config {}", path.display());
        let table = read_table(path).map_err(|e| LoadError::Invalid(format!("{source}: {e}")))?;
        for (key, value) in &table {
            let in_file = |e: String| LoadError::Invalid(format!("{source}: {key}: {e}"));
            let arg = settable(&cmd)
                .find(|a| a.get_long() == Some(key.as_str()))
                .ok_or_else(|| in_file(unknown_key(&cmd, key)))?;
            if arg.get_id() == "config" {
                return Err(in_file("a config file cannot name another".to_string()));
            }
            let id = arg.get_id().as_str();
            if on_command_line(id) || from_env.contains(id) {
                continue;
            }
            let long = key.as_str();
            for occurrence in file_value(arg, value).map_err(in_file)? {
                match occurrence {
                    Some(v) => {
                        check_value(&cmd, long, OsStr::new(&v)).map_err(in_file)?;
                        extra.push(flag_with_value(long, OsStr::new(&v)));
                    }
                    None => extra.push(OsString::from(format!("--{long}"))),
                }
            }
            outside.push(Outside {
                long: long.to_string(),
                source: source.clone(),
            });
        }
    }

    // The program name, the other sources' settings, then the real command line (which may
    // end in positional values or `--`).
    let mut full: Vec<OsString> = argv.iter().take(1).cloned().collect();
    full.extend(extra);
    full.extend(argv.iter().skip(1).cloned());
    let matches = cmd.try_get_matches_from(&full).map_err(|e| {
        if outside.is_empty() {
            LoadError::Clap(e)
        } else {
            LoadError::Invalid(format!("{}{}", first_line(&e), listed(&outside)))
        }
    })?;
    let args = Args::from_arg_matches(&matches).map_err(LoadError::Clap)?;
    // The whole configuration's checks, here so their error can say where settings came from
    // (kvserver's main makes them again, at no cost).
    if !outside.is_empty()
        && let Err(e) = ServerConfig::try_from(args.clone())
    {
        return Err(LoadError::Invalid(format!("{e}{}", listed(&outside))));
    }
    Ok(args)
}

/// The arguments a variable or the file may set: every one with a long name but `--help` and
/// `--version`.
fn settable(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        a.get_long().is_some() && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
    })
}

/// `--long=value`, so a value beginning with `-` stays a value.
fn flag_with_value(long: &str, value: &OsStr) -> OsString {
    let mut s = OsString::from(format!("--{long}="));
    s.push(value);
    s
}

/// Parses `--long=value` alone with kvserver's parsers; relations to other flags (which the
/// lone flag cannot meet) are not its business.
fn check_value(cmd: &Command, long: &str, value: &OsStr) -> Result<(), String> {
    let argv = [OsString::from("kvserver"), flag_with_value(long, value)];
    match cmd.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => match e.kind() {
            ErrorKind::InvalidValue
            | ErrorKind::ValueValidation
            | ErrorKind::InvalidUtf8
            | ErrorKind::TooManyValues
            | ErrorKind::TooFewValues
            | ErrorKind::WrongNumberOfValues
            | ErrorKind::NoEquals
            | ErrorKind::UnknownArgument => Err(first_line(&e)),
            _ => Ok(()),
        },
    }
}

/// The file's value for `arg` as occurrences of the flag: `Some(text)` for `--long=text`,
/// `None` for a bare `--long` (a `true` switch).
fn file_value(arg: &Arg, value: &toml::Value) -> Result<Vec<Option<String>>, String> {
    let takes_value = arg.get_action().takes_values();
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            other => Err(format!(
                "expected a string or a number, got {}",
                other.type_str()
            )),
        }
    };
    match value {
        toml::Value::Boolean(b) if !takes_value => Ok(if *b { vec![None] } else { vec![] }),
        _ if !takes_value => Err(format!(
            "a switch: expected true or false, got {}",
            value.type_str()
        )),
        toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => items
            .iter()
            .map(|v| scalar(v).map(Some))
            .collect::<Result<Vec<_>, _>>(),
        toml::Value::Array(_) => Err("takes one value, not an array".to_string()),
        v => Ok(vec![Some(scalar(v)?)]),
    }
}

/// The file's top-level table.
fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("not valid TOML: {}", e.to_string().trim_end()))
}

/// The error for a key that is no flag, with a hint when it is one spelt with `_`.
fn unknown_key(cmd: &Command, key: &str) -> String {
    let dashed = key.replace('_', "-");
    if dashed != key && settable(cmd).any(|a| a.get_long() == Some(dashed.as_str())) {
        return format!("unknown key (the flag is --{dashed}: write {dashed})");
    }
    "unknown key: keys are kvserver's long flag names (see kvserver --help)".to_string()
}

/// A clap error's first paragraph on one line, without its `error: ` prefix (what is wrong,
/// and the missing flags it lists, not the usage and help lines below).
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// ` (settings not from the command line: heartbeat-ms from RAFTKV_HEARTBEAT_MS, ...)`.
fn listed(outside: &[Outside]) -> String {
    let each: Vec<String> = outside
        .iter()
        .map(|o| format!("{} from {}", o.long, o.source))
        .collect();
    format!(" (settings not from the command line: {})", each.join(", "))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use raftkv_core::{NodeId, ReadPolicy, WriteMode};

    use super::*;
    use crate::config::TimeoutRange;

    fn load_with(argv: &[&str], env: &[(&str, &str)]) -> Result<ServerConfig, String> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let args = load(
            std::iter::once("kvserver").chain(argv.iter().copied()),
            |name| env.get(name).cloned(),
        )
        .map_err(|e| e.to_string())?;
        ServerConfig::try_from(args).map_err(|e| e.to_string())
    }

    /// The settings a test compares, as text.
    fn summary(c: &ServerConfig) -> String {
        format!(
            "{} {} {} {:?} {:?} {:?} {} {} {} {} {} {:?} {:?} {:?}",
            c.id,
            c.addr,
            c.data_dir.display(),
            c.peers,
            c.read_policy,
            c.write_mode,
            c.election_timeout_ms,
            c.heartbeat_ms,
            c.snapshot_threshold,
            c.session_limits.ttl,
            c.cluster_id,
            c.peer_addr,
            c.engine,
            c.tokens_file,
        )
    }

    const FLAGS: &[&str] = &[
        "--id",
        "n2",
        "--addr",
        "127.0.0.1:7102",
        "--data-dir",
        "/tmp/raftkv-n2",
        "--peers",
        "n1=127.0.0.1:7201,n2=127.0.0.1:7202",
        "--peer-addr",
        "127.0.0.1:7202",
        "--read-policy",
        "lease",
        "--write-mode",
        "async",
        "--election-timeout-ms",
        "400-800",
        "--heartbeat-ms",
        "40",
        "--snapshot-threshold",
        "500",
        "--session-ttl",
        "90s",
        "--cluster-id",
        "blue",
        "--engine",
        "memory",
        "--tokens-file",
        "/etc/raftkv/tokens",
    ];

    const FILE: &str = r#"
id = "n2"
addr = "127.0.0.1:7102"
data-dir = "/tmp/raftkv-n2"
peers = ["n1=127.0.0.1:7201", "n2=127.0.0.1:7202"]
peer-addr = "127.0.0.1:7202"
read-policy = "lease"
write-mode = "async"
election-timeout-ms = "400-800"
heartbeat-ms = 40
snapshot-threshold = 500
session-ttl = "90s"
cluster-id = "blue"
engine = "memory"
tokens-file = "/etc/raftkv/tokens"
"#;

    const ENV: &[(&str, &str)] = &[
        ("RAFTKV_ID", "n2"),
        ("RAFTKV_ADDR", "127.0.0.1:7102"),
        ("RAFTKV_DATA_DIR", "/tmp/raftkv-n2"),
        ("RAFTKV_PEERS", "n1=127.0.0.1:7201,n2=127.0.0.1:7202"),
        ("RAFTKV_PEER_ADDR", "127.0.0.1:7202"),
        ("RAFTKV_READ_POLICY", "lease"),
        ("RAFTKV_WRITE_MODE", "async"),
        ("RAFTKV_ELECTION_TIMEOUT_MS", "400-800"),
        ("RAFTKV_HEARTBEAT_MS", "40"),
        ("RAFTKV_SNAPSHOT_THRESHOLD", "500"),
        ("RAFTKV_SESSION_TTL", "90s"),
        ("RAFTKV_CLUSTER_ID", "blue"),
        ("RAFTKV_ENGINE", "memory"),
        ("RAFTKV_TOKENS_FILE", "/etc/raftkv/tokens"),
    ];

    fn write(dir: &Path, text: &str) -> String {
        let path = dir.join("kvserver.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_file_and_variables_set_the_same_options_as_flags() {
        let flags = load_with(FLAGS, &[]).unwrap();
        assert_eq!(flags.id, NodeId::from("n2"));
        assert_eq!(flags.read_policy, ReadPolicy::Lease);
        assert_eq!(flags.write_mode, WriteMode::Async);
        assert_eq!(
            flags.election_timeout_ms,
            TimeoutRange { min: 400, max: 800 }
        );
        assert_eq!(flags.session_limits.ttl, 90_000);
        assert_eq!(flags.peers.len(), 2);
        let defaults = load_with(&[], &[]).unwrap();
        assert_ne!(summary(&defaults), summary(&flags));

        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), FILE);
        let from_file = load_with(&["--config", &file], &[]).unwrap();
        assert_eq!(summary(&from_file), summary(&flags));
        let from_env = load_with(&[], ENV).unwrap();
        assert_eq!(summary(&from_env), summary(&flags));
        // The file named by a variable.
        let via_env = load_with(&[], &[("RAFTKV_CONFIG", &file)]).unwrap();
        assert_eq!(summary(&via_env), summary(&flags));
    }

    #[test]
    fn flags_win_over_variables_and_variables_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "heartbeat-ms = 20\nsnapshot-threshold = 7\nid = \"from-file\"\n\
             peers = [\"from-file=h:1\"]\n",
        );
        let env = [
            ("RAFTKV_HEARTBEAT_MS", "30"),
            ("RAFTKV_ID", "from-env"),
            ("RAFTKV_PEERS", "from-env=h:2"),
            ("RAFTKV_SNAPSHOT_TRAILING", ""),
        ];
        let c = load_with(&["--config", &file, "--heartbeat-ms", "40"], &env).unwrap();
        assert_eq!(c.heartbeat_ms, 40, "the flag");
        assert_eq!(c.id, NodeId::from("from-env"), "the variable");
        assert_eq!(c.peers.len(), 1, "a list is replaced, not merged");
        assert_eq!(c.peers[0].id, NodeId::from("from-env"));
        assert_eq!(c.snapshot_threshold, 7, "the file");
        assert_eq!(c.snapshot_trailing, 1_000, "an empty variable is unset");
        let c = load_with(&["--config", &file], &[]).unwrap();
        assert_eq!((c.heartbeat_ms, c.id.as_str()), (20, "from-file"));
        // --config wins over RAFTKV_CONFIG like any flag over its variable.
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "heartbeat-ms = 25\n").unwrap();
        let vars = [("RAFTKV_CONFIG", other.to_str().unwrap())];
        assert_eq!(
            load_with(&["--config", &file], &vars).unwrap().heartbeat_ms,
            20
        );
        assert_eq!(load_with(&[], &vars).unwrap().heartbeat_ms, 25);
        // --peers on the command line replaces the file's list.
        let c = load_with(&["--config", &file, "--id", "a", "--peers", "a=h:3"], &[]).unwrap();
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.peers[0].addr, "h:3");
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = load_with(&[], &[("RAFTKV_HEARTBEAT_MS", "often")]).unwrap_err();
        assert!(
            err.starts_with("RAFTKV_HEARTBEAT_MS: invalid value 'often'"),
            "{err}"
        );
        let err = load_with(&[], &[("RAFTKV_READ_POLICY", "quorum")]).unwrap_err();
        assert!(
            err.starts_with("RAFTKV_READ_POLICY: invalid value"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "election-timeout-ms = \"300-100\"\n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "--config {file}: election-timeout-ms: invalid value"
            )),
            "{err}"
        );
        let file = write(dir.path(), "heartbeat-ms = -5\n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(err.contains(": heartbeat-ms: invalid value '-5'"), "{err}");
        let file = write(dir.path(), "heartbeat-ms = [1, 2]\n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(err.contains("heartbeat-ms: takes one value"), "{err}");
        // A whole-configuration check says where its values came from.
        let err = load_with(&[], &[("RAFTKV_HEARTBEAT_MS", "200")]).unwrap_err();
        assert!(
            err.contains("heartbeat (200 ms) < election timeout min")
                && err.contains("heartbeat-ms from RAFTKV_HEARTBEAT_MS"),
            "{err}"
        );
        // And a relation between flags too.
        let err = load_with(&[], &[("RAFTKV_CERT", "c.pem")]).unwrap_err();
        assert!(
            err.contains("required arguments were not provided: --key <KEY>")
                && err.contains("cert from RAFTKV_CERT"),
            "{err}"
        );
        // Met across sources: the file's --cert and the flag's --key.
        let file = write(dir.path(), "cert = \"c.pem\"\n");
        let c = load_with(&["--config", &file, "--key", "k.pem"], &[]).unwrap();
        assert_eq!(c.client_tls.unwrap().cert, PathBuf::from("c.pem"));
    }

    #[test]
    fn the_file_itself_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "data_dir = \"/x\"\n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(
            err.contains(&format!(
                "--config {file}: data_dir: unknown key (the flag is --data-dir"
            )),
            "{err}"
        );
        let file = write(dir.path(), "colour = \"blue\"\n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(err.contains("colour: unknown key"), "{err}");
        for bad in [
            "config = \"other.toml\"\n",
            "help = true\n",
            "[server]\nid = \"n1\"\n",
        ] {
            let file = write(dir.path(), bad);
            assert!(load_with(&["--config", &file], &[]).is_err(), "{bad}");
        }
        let file = write(dir.path(), "id = \n");
        let err = load_with(&["--config", &file], &[]).unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
        let missing = dir.path().join("missing.toml").display().to_string();
        let err = load_with(&["--config", &missing], &[]).unwrap_err();
        assert!(
            err.starts_with(&format!("--config {missing}: cannot read it")),
            "{err}"
        );
    }

    #[test]
    fn durations_numbers_and_variable_names() {
        assert_eq!(env_var_name("data-dir"), "RAFTKV_DATA_DIR");
        assert_eq!(env_var_name("config"), "RAFTKV_CONFIG");
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "session-ttl = 30\nmin-index-timeout-ms = 250\n");
        let c = load_with(&["--config", &file], &[]).unwrap();
        assert_eq!(c.session_limits.ttl, 30_000);
        assert_eq!(c.min_index_timeout, Duration::from_millis(250));
        // Every long flag but --help and --version can be set, each by a variable of its own.
        let cmd = Args::command();
        let names: BTreeSet<String> = settable(&cmd)
            .filter_map(|a| a.get_long().map(env_var_name))
            .collect();
        assert!(names.len() > 30 && names.contains("RAFTKV_JOIN_TOKEN_FILE"));
        assert!(!names.contains("RAFTKV_HELP") && !names.contains("RAFTKV_VERSION"));
        assert_eq!(names.len(), settable(&cmd).count());
    }
}
