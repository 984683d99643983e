//! The coordinator: prepares fresh storage per measurement, enqueues, starts the worker
//! processes, watches the queue drain through the subject's own count, and turns the
//! workers' logs into samples. Nothing in it knows which engine it drives.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::job::{NoopJob, wall_clock_us};
use super::plan::{DurablePlan, Measurement};
use super::site::Site;
use super::{DurableSubject, Producer};

/// How often the coordinator counts unfinished jobs: the end of a throughput run is the
/// first look that finds none, so this bounds its error (5 ms in a run of a second or
/// more); each look is one indexed count, a few hash reads, or one small SQLite read.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// Jobs per `enqueue_batch` when the throughput jobs are enqueued up front.
const ENQUEUE_BATCH: usize = 1_000;

/// Runs every measurement of `plan`, handing each event (`start`, `sample`) to `emit`.
///
/// # Errors
///
/// When the storage cannot be reached or prepared, a worker process fails, a run misses
/// a job, or a measurement overruns its time bound.
pub async fn run_plan(plan: &DurablePlan, mut emit: impl FnMut(Value)) -> Result<(), String> {
    for (index, measurement) in plan.measurements.iter().enumerate() {
        let subject = measurement.subject();
        emit(json!({
            "event": "start",
            "index": index,
            "workload": measurement.workload(),
            "engine": subject.engine.name(),
            "subject": subject.side.name(),
            "processes": measurement.processes(),
        }));
        let sample = match *measurement {
            Measurement::Throughput {
                subject,
                processes,
                prefilled,
            } => throughput(plan, subject, processes, prefilled).await?,
            Measurement::Latency { subject } => latency(plan, subject).await?,
        };
        emit(sample);
    }
    Ok(())
}

/// Fresh storage, and the subject's producer on it.
async fn prepare(subject: DurableSubject) -> Result<(Site, Producer), String> {
    let site = Site::fresh(subject.engine).await?;
    let producer = subject.producer(&site.url()).await?;
    Ok((site, producer))
}

/// Fills brigade's PostgreSQL table with `rows` completed jobs, finished a day ago, then
/// vacuums and analyzes it as autovacuum would have on a table that grew this big over time.
async fn prefill(producer: &Producer, rows: u64) -> Result<(), String> {
    let store = producer
        .brigade_postgres()
        .ok_or("only brigade's PostgreSQL table is prefilled")?;
    let rows = i64::try_from(rows).map_err(|_| "too many rows".to_owned())?;
    sqlx::query(
        "INSERT INTO brigade.jobs (queue, state, payload, attempt, max_attempts, enqueued_at, run_at, finished_at)
         SELECT 'noop', 'completed', jsonb_build_object('seq', g, 'enqueued_us', 0), 1, 25,
                now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
         FROM generate_series(1, $1) AS g",
    )
    .bind(rows)
    .execute(store.pool())
    .await
    .map_err(|error| format!("prefill: {error}"))?;
    sqlx::query("VACUUM ANALYZE brigade.jobs")
        .execute(store.pool())
        .await
        .map_err(|error| format!("vacuum: {error}"))?;
    Ok(())
}

/// A worker process under the coordinator's control.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl WorkerProcess {
    async fn spawn(
        subject: DurableSubject,
        url: &str,
        name: &str,
        concurrency: usize,
    ) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|error| error.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "--worker",
                subject.side.name(),
                "--engine",
                subject.engine.name(),
            ])
            .args(["--url", url, "--name", name])
            .args(["--concurrency", &concurrency.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("spawn worker: {error}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("worker has no stdout")?).lines();
        Ok(WorkerProcess {
            child,
            stdin,
            stdout,
        })
    }

    async fn next_line(&mut self, within: Duration) -> Result<String, String> {
        match tokio::time::timeout(within, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => Err("a worker process exited early".to_owned()),
            Ok(Err(error)) => Err(format!("reading a worker: {error}")),
            Err(_) => Err(format!("a worker said nothing for {within:?}")),
        }
    }

    async fn go(&mut self) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("worker already stopped")?;
        stdin
            .write_all(b"go\n")
            .await
            .map_err(|error| format!("go: {error}"))?;
        stdin.flush().await.map_err(|error| format!("go: {error}"))
    }

    /// Closes its input (stop), then reads its log of runs.
    async fn stop(mut self) -> Result<Vec<[i64; 3]>, String> {
        drop(self.stdin.take());
        let line = self.next_line(Duration::from_secs(60)).await?;
        let report: Value = serde_json::from_str(&line)
            .map_err(|error| format!("worker printed `{line}`: {error}"))?;
        let runs =
            serde_json::from_value(report["runs"].clone()).map_err(|error| error.to_string())?;
        let status = self.child.wait().await.map_err(|error| error.to_string())?;
        if !status.success() {
            return Err(format!("a worker process failed: {status}"));
        }
        Ok(runs)
    }
}

async fn start_workers(
    subject: DurableSubject,
    url: &str,
    processes: usize,
    concurrency: usize,
) -> Result<Vec<WorkerProcess>, String> {
    let mut workers = Vec::with_capacity(processes);
    for index in 0..processes {
        workers.push(
            WorkerProcess::spawn(
                subject,
                url,
                &format!("{}-{index}", subject.side.name()),
                concurrency,
            )
            .await?,
        );
    }
    for worker in &mut workers {
        let line = worker.next_line(Duration::from_secs(60)).await?;
        if line != "ready" {
            return Err(format!("a worker said `{line}` instead of ready"));
        }
    }
    for worker in &mut workers {
        worker.go().await?;
    }
    Ok(workers)
}

async fn stop_workers(workers: Vec<WorkerProcess>) -> Result<Vec<[i64; 3]>, String> {
    let mut runs = Vec::new();
    for worker in workers {
        runs.extend(worker.stop().await?);
    }
    Ok(runs)
}

/// How a watch over a run's drain ended.
enum Drain {
    /// The first look that found no job unfinished, in µs since the epoch.
    Drained { at_us: i64 },
    /// The time bound passed first, with jobs still unfinished at `at_us`.
    Overran { unfinished: u64, at_us: i64 },
}

/// Watches until no job of the run is unfinished, for at most `bound`.
async fn wait_drained(producer: &Producer, bound: Duration) -> Result<Drain, String> {
    let deadline = Instant::now() + bound;
    loop {
        let unfinished = producer.unfinished().await?;
        if unfinished == 0 {
            return Ok(Drain::Drained {
                at_us: wall_clock_us(),
            });
        }
        if Instant::now() >= deadline {
            return Ok(Drain::Overran {
                unfinished,
                at_us: wall_clock_us(),
            });
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// `brigade on redis`: how errors name a subject.
fn label(subject: DurableSubject) -> String {
    format!("{} on {}", subject.side.name(), subject.engine.name())
}

/// Checks that every job `0..jobs` ran, and returns how many runs were repeats.
fn check_runs(subject: DurableSubject, runs: &[[i64; 3]], jobs: u64) -> Result<usize, String> {
    let mut seen = vec![false; usize::try_from(jobs).unwrap_or(0)];
    for run in runs {
        let slot = usize::try_from(run[0])
            .ok()
            .and_then(|seq| seen.get_mut(seq));
        match slot {
            Some(slot) => *slot = true,
            None => {
                return Err(format!(
                    "{}: a run of unknown job {}",
                    label(subject),
                    run[0]
                ));
            }
        }
    }
    let missing = seen.iter().filter(|seen| !**seen).count();
    if missing > 0 {
        return Err(format!("{}: {missing} jobs never ran", label(subject)));
    }
    Ok(runs.len() - seen.len())
}

async fn throughput(
    plan: &DurablePlan,
    subject: DurableSubject,
    processes: usize,
    prefilled: u64,
) -> Result<Value, String> {
    let (site, mut producer) = prepare(subject).await?;
    if prefilled > 0 {
        prefill(&producer, prefilled).await?;
    }
    let jobs = plan.throughput_jobs_on(subject.engine);
    let enqueue_started = Instant::now();
    let mut next = 0;
    while next < jobs {
        let end = (next + ENQUEUE_BATCH as u64).min(jobs);
        producer
            .enqueue_batch(
                (next..end)
                    .map(|seq| NoopJob {
                        seq,
                        enqueued_us: 0,
                    })
                    .collect(),
            )
            .await?;
        next = end;
        if enqueue_started.elapsed() > plan.time_bound {
            return Err(format!(
                "{}: enqueueing overran {:?}",
                label(subject),
                plan.time_bound
            ));
        }
    }
    let enqueue_seconds = enqueue_started.elapsed().as_secs_f64();
    let go_us = wall_clock_us();
    let workers = start_workers(subject, &site.url(), processes, plan.concurrency).await?;
    let drain = wait_drained(&producer, plan.time_bound).await;
    // A worker that gave up (apalis-sqlite's on a lock wait past its busy timeout) is a
    // result too: the row reports the error and what was finished by the bound.
    let (runs, failed) = match stop_workers(workers).await {
        Ok(runs) => (runs, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    // A queue too slow to drain within the bound is a result, not a failure: its rate is
    // what it finished in the bound, and the report says it overran.
    let (end_us, unfinished) = match drain? {
        Drain::Drained { at_us } if failed.is_none() => {
            check_runs(subject, &runs, jobs)?;
            (at_us, 0)
        }
        Drain::Drained { at_us } => (at_us, 0),
        Drain::Overran { unfinished, at_us } => (at_us, unfinished),
    };
    let finished = jobs - unfinished.min(jobs);
    let duplicates = runs
        .len()
        .saturating_sub(usize::try_from(jobs).unwrap_or(usize::MAX));
    let first_start = runs.iter().map(|run| run[2]).min().unwrap_or(go_us);
    let seconds = (end_us - first_start) as f64 / 1e6;
    drop(producer);
    site.remove().await;
    Ok(json!({
        "event": "sample",
        "workload": if prefilled > 0 { "throughput-prefilled" } else { "throughput" },
        "engine": subject.engine.name(),
        "subject": subject.side.name(),
        "processes": processes,
        "concurrency": plan.concurrency,
        "jobs": jobs,
        "finished": finished,
        "overran": unfinished > 0,
        "failed": failed,
        "prefilled": prefilled,
        "seconds": seconds,
        "jobs_per_s": finished as f64 / seconds,
        "enqueue_jobs_per_s": jobs as f64 / enqueue_seconds,
        "duplicates": duplicates,
    }))
}

async fn latency(plan: &DurablePlan, subject: DurableSubject) -> Result<Value, String> {
    let (site, mut producer) = prepare(subject).await?;
    let workers = start_workers(subject, &site.url(), 1, plan.concurrency).await?;
    // Listening sides subscribe after `go`; give them time so the first jobs do not wait
    // for a poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = plan.latency_jobs;
    let interval = Duration::from_secs_f64(1.0 / plan.latency_rate);
    let started = tokio::time::Instant::now();
    for seq in 0..jobs {
        // An absolute schedule: a slow enqueue does not push every later one back.
        tokio::time::sleep_until(started + interval * u32::try_from(seq).unwrap_or(u32::MAX)).await;
        producer
            .enqueue(NoopJob {
                seq,
                enqueued_us: wall_clock_us(),
            })
            .await?;
        if started.elapsed() > plan.time_bound {
            return Err(format!(
                "{}: enqueueing overran {:?}",
                label(subject),
                plan.time_bound
            ));
        }
    }
    let offered_seconds = started.elapsed().as_secs_f64();
    let drain = wait_drained(&producer, plan.time_bound).await;
    let runs = stop_workers(workers).await?;
    if let Drain::Overran { unfinished, .. } = drain? {
        return Err(format!(
            "{}: {unfinished} jobs still unfinished after {:?}",
            label(subject),
            plan.time_bound
        ));
    }
    let duplicates = check_runs(subject, &runs, jobs)?;
    let mut delays: Vec<i64> = runs.iter().map(|run| run[2] - run[1]).collect();
    delays.sort_unstable();
    drop(producer);
    site.remove().await;
    Ok(json!({
        "event": "sample",
        "workload": "latency",
        "engine": subject.engine.name(),
        "subject": subject.side.name(),
        "processes": 1,
        "concurrency": plan.concurrency,
        "jobs": jobs,
        "offered_jobs_per_s": plan.latency_rate,
        "achieved_jobs_per_s": jobs as f64 / offered_seconds,
        "p50_us": percentile(&delays, 0.50),
        "p99_us": percentile(&delays, 0.99),
        "max_us": delays.last().copied().unwrap_or(0),
        "duplicates": duplicates,
    }))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[], 0.99), 0);
    }

    #[test]
    fn check_runs_counts_repeats_and_finds_gaps() {
        let runs = [[0, 0, 0], [1, 0, 0], [1, 0, 0]];
        let subject = DurableSubject {
            engine: super::super::Engine::Redis,
            side: super::super::Side::Brigade,
        };
        assert_eq!(check_runs(subject, &runs, 2), Ok(1));
        assert!(check_runs(subject, &runs, 3).is_err());
    }
}
