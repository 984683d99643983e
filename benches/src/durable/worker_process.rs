//! The worker side of the coordinator's protocol, for any subject.
//!
//! On its stdout the process prints `ready` once connected and built, then, after it
//! stopped, one JSON object `{"runs": [[seq, enqueued_us, started_us], …]}`. On its stdin
//! it reads `go` (start claiming), then waits for the end of input (stop: let running
//! jobs finish, then report). Starting every process on `go` keeps connection set-up out
//! of the measurement and starts them together.

use std::io::Write;

use brigade_core::CancellationToken;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use super::run_log::{JobRun, RunLog};
use super::{DurableSubject, Engine, Side, apalis, brigade};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The coordinator is gone if this fails; stopping is all that is left to do.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Follows the coordinator's commands: `go`, then end of input.
async fn read_commands(go: oneshot::Sender<()>, stop: CancellationToken) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut go = Some(go);
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "go" {
            if let Some(go) = go.take() {
                let _ = go.send(());
            }
        }
    }
    stop.cancel();
}

/// Runs one worker process of `subject` on `url` (a database URL, or a SQLite file's path)
/// until the coordinator closes its stdin.
///
/// # Errors
///
/// When the worker cannot connect or build, or the subject's worker fails.
pub async fn run_worker_process(
    subject: DurableSubject,
    url: &str,
    name: &str,
    concurrency: usize,
) -> Result<(), String> {
    let log = RunLog::default();
    let stop = CancellationToken::new();
    let (go_tx, go_rx) = oneshot::channel();
    tokio::spawn(read_commands(go_tx, stop.clone()));
    let ready = || say("ready");
    // Input closed before `go` also lets the worker start, and stop at once.
    let go = async {
        let _ = go_rx.await;
    };
    let recorder = log.clone();
    match (subject.side, subject.engine) {
        (Side::Brigade, engine) => {
            brigade::run_worker(engine, url, concurrency, recorder, ready, go, stop).await?;
        }
        (Side::Apalis, Engine::Postgres) => {
            apalis::postgres::run_worker(url, name, concurrency, recorder, ready, go, stop).await?;
        }
        (Side::Apalis, Engine::Redis | Engine::RedisEverysec) => {
            apalis::redis::run_worker(url, name, concurrency, recorder, ready, go, stop).await?;
        }
        (Side::Apalis, Engine::Sqlite) => {
            apalis::sqlite::run_worker(url, name, concurrency, recorder, ready, go, stop).await?;
        }
    }
    let runs: Vec<[i64; 3]> = log
        .take()
        .iter()
        .map(|run: &JobRun| {
            [
                i64::try_from(run.seq).unwrap_or(i64::MAX),
                run.enqueued_us,
                run.started_us,
            ]
        })
        .collect();
    say(&json!({ "runs": runs }).to_string());
    Ok(())
}
