//! Project tasks, run as `cargo xtask TASK` (the alias lives in `.cargo/config.toml`).
//!
//! - `bench [--quick] [--rounds N] [FILTER…]`: runs the benchmark workloads on brigade and
//!   its peers (the `brigade-bench` binary of `benches/`, in release mode), shows progress,
//!   prints a table of medians and writes `target/brigade-bench/report.{md,json}` and
//!   `chart.svg`.

mod bench;
mod chart;
mod machine;
mod report;
mod summary;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--rounds N] [FILTER...]

  --quick      smoke-test sizes (the whole run takes well under a minute)
  --rounds N   rounds per workload (default 5, quick 2; memory, idle, latency at most 3)
  FILTER       run only `workload/subject` keys containing it, e.g. `noop` or `/rayon`";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("bench") => bench::run(args.collect()),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or(manifest_dir.clone(), PathBuf::from)
}

/// `$CARGO` when run through cargo (so the same toolchain builds the benches), else `cargo`.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Where reports go: `$CARGO_TARGET_DIR/brigade-bench`, or `target/brigade-bench` at the root.
fn report_dir() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("brigade-bench")
}
