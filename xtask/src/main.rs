//! Project tasks, run as `cargo xtask TASK` (the alias lives in `.cargo/config.toml`).
//!
//! - `bench [--quick] [--rounds N] [FILTER…]`: runs the benchmark workloads on brigade and
//!   its peers (the `brigade-bench` binary of `benches/`, in release mode), shows progress,
//!   prints a table of medians and writes `target/brigade-bench/report.{md,json}` and
//!   `chart.svg`.
//! - `chaos [--quick] [--cycles N] [--seed S]`: the fault harness (the `brigade-chaos`
//!   binary of `chaos/`, in release mode): PostgreSQL, a producer and worker processes in
//!   network namespaces, faults injected, the ledgers checked. Exits non-zero when a MUST
//!   fails.
//! - `instructions [--repeats N] [FILTER…]`: instructions per job of the noop and
//!   middleware measurements, counted by callgrind (`valgrind`), with the ratios the time
//!   targets compare; writes `target/brigade-bench/instructions.md` and keeps each profile.

mod bench;
mod chaos;
mod chart;
mod criterion;
mod instructions;
mod machine;
mod report;
mod summary;
mod targets;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

pub(crate) const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--rounds N] [FILTER...]
       cargo xtask chaos [--quick] [--cycles N] [--seed S] [--workers 3|4]
       cargo xtask instructions [--repeats N] [FILTER...]

bench:
  --quick      smoke-test sizes (the whole run takes well under a minute)
  --rounds N   rounds per workload (default 5, quick 2; memory, idle, latency at most 3)
  --metrics    build the runner with brigade-thread's metrics, adding the
               brigade-thread+metrics subject (noop) that its target row reads
  FILTER       run only `workload/subject` keys containing it, e.g. `noop` or `/rayon`;
               `=KEY` runs that one key alone, e.g. `=middleware/brigade-thread`
  (the idle round-trip target reads criterion's last
   `cargo bench -p brigade-benches --bench submit -- submit_join`)

chaos (as root, for network namespaces; PostgreSQL and Redis refuse to run without them):
  --quick      a few cycles of each fault, a few hundred jobs (a few minutes)
  --allow-no-netns  run PostgreSQL or Redis on loopback anyway, the link-down fault skipped
  --cycles N   cycles of each fault kind (default 20, quick 3)
  --seed S     replay an earlier run's fault schedule and workload
  --workers N  worker processes, 3 or 4 (default 4)

instructions (needs valgrind; about 6 minutes for the default set):
  FILTER       as for bench (default: `noop/` and `middleware/`); each measurement
               runs at quick scale for 1 and for 3 rounds, and the difference over
               the extra jobs is its count per job, which the host's load does not move
  --repeats N  pairs of runs per measurement, the median kept (default 3)

BRIGADE_RUNNERS=DIR  run the runner binaries already built in DIR (CI: target/debug, its
                     test build's) instead of `cargo run --release` of each";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("bench") => bench::run(args.collect()),
        Some("chaos") => chaos::run(args.collect()),
        Some("instructions") => instructions::run(args.collect()),
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

/// The command that runs binary `bin` of `package`, its arguments to follow: by default
/// `cargo run --release` with `features` (built first if needed). With `$BRIGADE_RUNNERS` set to a
/// directory, the binary already built there instead: CI points it at the binaries its
/// test build made, so its smoke runs cost no second build of the tree.
fn runner(package: &str, bin: &str, features: &[&str]) -> Command {
    match std::env::var_os("BRIGADE_RUNNERS") {
        Some(dir) => Command::new(workspace_root().join(dir).join(bin)),
        None => {
            let mut command = Command::new(cargo());
            command.args([
                "run",
                "--release",
                "--quiet",
                "--package",
                package,
                "--bin",
                bin,
            ]);
            if !features.is_empty() {
                command.arg("--features").arg(features.join(","));
            }
            command.arg("--");
            command
        }
    }
}

/// Where reports go: `$CARGO_TARGET_DIR/brigade-bench`, or `target/brigade-bench` at the root.
fn report_dir() -> PathBuf {
    target_dir().join("brigade-bench")
}

/// `$CARGO_TARGET_DIR` (relative to the root), or `target` at the root.
fn target_dir() -> PathBuf {
    let root = workspace_root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
}
