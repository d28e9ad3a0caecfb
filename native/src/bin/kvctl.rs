//! kvctl: command-line client for raftkv. See `kvctl --help`.

fn main() -> std::process::ExitCode {
    raftkv_native::ctl::main()
}
