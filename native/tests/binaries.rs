//! What every binary answers without a cluster: `--version` (the crate's version) on each, and
//! `kvctl completion` scripts.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin} runs: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_binary_prints_its_version() {
    let version = env!("CARGO_PKG_VERSION");
    for (name, bin) in [
        ("kvserver", env!("CARGO_BIN_EXE_kvserver")),
        ("kvctl", env!("CARGO_BIN_EXE_kvctl")),
        ("playground", env!("CARGO_BIN_EXE_playground")),
        ("noop-kv", env!("CARGO_BIN_EXE_noop-kv")),
    ] {
        for flag in ["--version", "-V"] {
            let o = run(bin, &[flag]);
            assert!(o.status.success(), "{name} {flag}: {o:?}");
            assert_eq!(stdout(&o), format!("{name} {version}\n"), "{name} {flag}");
        }
    }
}

#[test]
fn kvctl_prints_a_completion_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(env!("CARGO_BIN_EXE_kvctl"), &["completion", shell]);
        assert!(o.status.success(), "completion {shell}: {o:?}");
        let script = stdout(&o);
        assert!(script.contains("kvctl"), "{shell}: {script}");
        for sub in ["member", "snapshot", "add-learner", "endpoints"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
        // The script parses in its shell, where that shell is installed.
        let check = Command::new(shell).args(["-n", "-c", &script]).output();
        if let Ok(check) = check {
            assert!(check.status.success(), "{shell} -n: {check:?}");
        }
    }
    let o = run(env!("CARGO_BIN_EXE_kvctl"), &["completion", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}
