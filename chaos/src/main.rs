//! The fault harness behind `cargo xtask chaos`: it proves the durable-queue contracts of
//! `docs/durable.md` on PostgreSQL, Redis or a SQLite file (`--store`) by breaking things
//! on purpose and auditing what happened.
//!
//! `brigade-chaos run` (the orchestrator) builds a small network of hosts: a bridge
//! `brchaos0` (10.77.0.1/24) in the root namespace and one network namespace per host
//! (`chaos-db`, `chaos-producer`, `chaos-w1`..), each joined to the bridge by a veth pair
//! (10.77.0.10 + i). PostgreSQL or Redis runs inside `chaos-db`; every worker and the producer run
//! inside their own namespace as `brigade-chaos worker` / `brigade-chaos producer`
//! processes, so a worker's "link down" is a real partition of that host alone. Nothing is
//! routed beyond the bridge. Where namespaces cannot be made (not root, no `ip`, a
//! sandbox), a run is refused unless `--allow-no-netns` accepts one on 127.0.0.1 without
//! the link-down fault; the output and the table say so.
//!
//! Over many seeded cycles (the seed is printed; `--seed` replays the same schedule) it
//! injects kill -9 of a worker holding jobs, SIGSTOP past the lease then SIGCONT, a
//! graceful restart (SIGTERM to a worker holding a run past its grace), a worker's link
//! down past the lease then up, and a server crash + restart (`pg_ctl stop -m immediate`;
//! `redis-server` kill -9, back from its append-only file). The producer's workload holds
//! poison jobs, whose handler aborts the process, jobs that fail their first attempt and
//! jobs that fail every run. A supervisor restarts every worker that died or stopped.
//!
//! SQLite has no server and no network: every process runs on one host and opens one
//! file. Link down and server crash do not apply; instead every process (workers and
//! producer) is killed at once and restarted from the file, and the producer is killed
//! inside its own open transaction. After every fault `PRAGMA integrity_check` runs on a
//! read-only connection of its own.
//!
//! Every process appends what it saw to a ledger (see [`ledger`]); once the producer has
//! finished and the queue is drained, the jobs table is dumped next to the ledgers and
//! [`check`] joins them: every job offered accounted for, lost jobs, unexplained
//! duplicates, redelivery time after a kill or a graceful restart, failing and poison jobs
//! ending as planned, runs cut off by a link down stopped by their fence, every fault
//! having hit work, every process exit explained, and the global rate and concurrency
//! limits. It prints a table and exits non-zero when a MUST fails; a MUST with no case to
//! judge says `n/a`.
//!
//! `brigade-chaos check --ledger-dir D` re-runs the checker on the files a run left.
//!
//! Choices worth knowing:
//!
//! - The jobs are dumped to `jobs.tsv` beside the ledgers before the server goes, so a
//!   run's evidence is complete on disk and `check` needs no database — and is the same
//!   for every store.
//! - Poison jobs are part of the workload, not of the fault schedule: the producer spreads
//!   them through the run and each aborts whichever worker claims it, three times.
//! - Faults aim at work: a kill, a pause or a store crash waits (a few seconds at most) for
//!   a worker holding a run with work left, a link down for one holding a run that would
//!   outlast the lease; the workers' ledgers say what runs. The checker then counts, from
//!   the ledgers, which faults hit work, and fails a run where too few did.
//! - Faults never overlap, and a kill's redelivery window is kept free of other faults:
//!   every duplicate and every delay then has one cause to be held against.
//! - Timestamps are wall-clock microseconds: every process runs on one machine (the
//!   namespaces share its clock), and the store's own clock never enters a comparison.

mod check;
mod cli;
mod client;
mod cluster;
mod dump;
mod faults;
mod fleet;
mod job;
mod ledger;
mod netns;
mod open_runs;
mod orchestrator;
mod producer;
mod producer_process;
mod redis_server;
mod run_lock;
mod server;
mod settings;
mod sqlite_file;
mod store_kind;
mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::Command::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            cli::Command::Help => {
                println!("{}", cli::USAGE);
                Ok(true)
            }
            cli::Command::Run(options) => {
                let _one_run_at_a_time = tokio::task::spawn_blocking(run_lock::RunLock::take)
                    .await
                    .map_err(|error| format!("the run lock's wait failed: {error}"))??;
                orchestrator::run(options).await
            }
            cli::Command::Worker(options) => worker::run(options).await.map(|()| true),
            cli::Command::Producer(options) => producer::run(options).await.map(|()| true),
            cli::Command::Check { ledger_dir } => {
                check::run(&ledger_dir).map(|report| report.passed())
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
