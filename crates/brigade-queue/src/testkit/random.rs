//! The randomized whole-system check: many jobs, two workers, random failures, panics,
//! cancels and shutdowns; every acknowledged enqueue must end in exactly one terminal state
//! that agrees with what its runs did.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::CancellationToken;
use brigade_middleware::{Backoff, Retry};
use serde::{Deserialize, Serialize};

use crate::{Delivery, DurableId, EnqueueOptions, JobState, Queue, Store, Worker, WorkerReport};

const QUEUE: &str = "accounting";
const MAX_ATTEMPTS: u32 = 3;

/// What a job of the randomized check does on each run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Plan {
    Succeed,
    /// Fails its first `n` runs, then succeeds (dead if `n >= MAX_ATTEMPTS`).
    FailFirst(u32),
    Panic,
    /// Succeeds after sleeping, unless its token fires first.
    Slow(u64),
}

#[derive(Debug, Serialize, Deserialize)]
struct Task {
    n: u64,
    plan: Plan,
}

/// What [`random_accounting`] saw.
#[derive(Clone, Debug, Default)]
pub struct AccountingReport {
    /// Jobs enqueued (and acknowledged).
    pub jobs: u64,
    /// Jobs that ended completed, dead and cancelled.
    pub completed: u64,
    /// Dead jobs.
    pub dead: u64,
    /// Cancelled jobs.
    pub cancelled: u64,
    /// Handler runs in all.
    pub runs: u64,
    /// Completed jobs whose handler succeeded more than once (explained duplicates).
    pub duplicate_successes: u64,
    /// Times the second worker was shut down and started again.
    pub restarts: u64,
    /// Both workers' reports, summed.
    pub workers: WorkerReport,
}

/// Enqueues `jobs` jobs with random plans while two workers drain them, one of them shut
/// down (grace 0–50 ms) and restarted every few hundred milliseconds, and random jobs are
/// cancelled; then checks every job: exactly one terminal state, consistent with its plan
/// and its runs, the store's counts equal to what was enqueued, and each worker's runs all
/// accounted for. `seed` makes the plans reproducible (scheduling is not).
///
/// # Panics
///
/// On any violation, with the job and what was seen.
pub async fn random_accounting<S: Store>(store: S, jobs: u64, seed: u64) -> AccountingReport {
    let mut rng = fastrand::Rng::with_seed(seed);
    let runs: Arc<Mutex<HashMap<u64, (u32, u32)>>> = Arc::default(); // n -> (runs, successes)
    let plans: Vec<Plan> = (0..jobs)
        .map(|_| match rng.u32(0..100) {
            0..=59 => Plan::Succeed,
            60..=79 => Plan::FailFirst(rng.u32(1..=MAX_ATTEMPTS)),
            80..=84 => Plan::Panic,
            _ => Plan::Slow(rng.u64(1..30)),
        })
        .collect();

    let stop_all = CancellationToken::new();
    let steady = tokio::spawn(
        worker(store.clone(), Arc::clone(&runs), 8, Duration::from_secs(5)).run(stop_all.clone()),
    );
    let restarting = tokio::spawn(restart_loop(
        store.clone(),
        Arc::clone(&runs),
        stop_all.clone(),
        seed,
    ));

    let queue = Queue::<S, Task>::new(store.clone(), QUEUE)
        .defaults(EnqueueOptions::new().max_attempts(MAX_ATTEMPTS));
    let mut ids: HashMap<DurableId, u64> = HashMap::new();
    let mut cancelled: HashSet<u64> = HashSet::new();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(250) {
        let tasks = chunk
            .iter()
            .map(|&n| Task {
                n,
                plan: plans[n as usize],
            })
            .collect();
        let enqueued = queue.enqueue_batch(tasks).await.expect("enqueue batch");
        for (enqueued, &n) in enqueued.iter().zip(chunk) {
            assert!(!enqueued.duplicate);
            ids.insert(enqueued.id, n);
        }
        // Cancel a few jobs, some waiting, some perhaps running.
        for _ in 0..3 {
            let n = chunk[rng.usize(0..chunk.len())];
            let id = ids
                .iter()
                .find(|(_, m)| **m == n)
                .map(|(id, _)| *id)
                .expect("id");
            if store.cancel(id).await.expect("cancel") {
                cancelled.insert(n);
            }
        }
    }

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let counts = store.counts(QUEUE).await.expect("counts");
        if counts.live() == 0 {
            assert_eq!(
                counts.total(),
                jobs,
                "the store holds exactly the enqueued jobs"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still live after the deadline: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_all.cancel();
    let steady = steady.await.expect("steady worker");
    let (restarted, restarts) = restarting.await.expect("restarting worker");

    let runs = runs
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let mut report = AccountingReport {
        jobs,
        restarts,
        ..AccountingReport::default()
    };
    for (id, n) in &ids {
        let record = store
            .job(*id)
            .await
            .expect("job")
            .expect("every acknowledged job is still there");
        let (ran, succeeded) = runs.get(n).copied().unwrap_or((0, 0));
        report.runs += u64::from(ran);
        let plan = plans[*n as usize];
        let seen = format!(
            "job {n} ({id}, {plan:?}): {:?} after {ran} runs, {succeeded} successes",
            record.state
        );
        match record.state {
            JobState::Completed => {
                report.completed += 1;
                assert!(succeeded >= 1, "completed without a successful run: {seen}");
                assert!(!matches!(plan, Plan::Panic), "{seen}");
                if succeeded > 1 {
                    report.duplicate_successes += 1;
                }
            }
            JobState::Dead => {
                report.dead += 1;
                assert!(ran >= 1, "dead without a run: {seen}");
                let may_die = matches!(plan, Plan::Panic | Plan::FailFirst(MAX_ATTEMPTS..));
                assert!(may_die, "dead though its plan succeeds in time: {seen}");
            }
            JobState::Cancelled => {
                report.cancelled += 1;
                assert!(
                    cancelled.contains(n),
                    "cancelled but nobody cancelled it: {seen}"
                );
            }
            _ => panic!("not terminal after the queue drained: {seen}"),
        }
        if cancelled.contains(n) {
            assert_eq!(
                record.state,
                JobState::Cancelled,
                "a successful cancel is final: {seen}"
            );
        }
    }
    for worker_report in [steady, restarted] {
        assert_eq!(
            worker_report.ended(),
            worker_report.claimed,
            "every claimed run is accounted for: {worker_report:?}"
        );
        report.workers += worker_report;
    }
    assert_eq!(report.completed + report.dead + report.cancelled, jobs);
    report
}

fn worker<S: Store>(
    store: S,
    runs: Arc<Mutex<HashMap<u64, (u32, u32)>>>,
    concurrency: usize,
    grace: Duration,
) -> Worker<S> {
    let retry = Retry::builder()
        .max_attempts(u32::MAX)
        .backoff(Backoff::constant(Duration::from_millis(5)))
        .build()
        .expect("retry policy");
    Worker::builder(store, QUEUE)
        .concurrency(concurrency)
        .grace(grace)
        .lease(Duration::from_secs(10))
        .poll(Duration::from_millis(20))
        .retry(retry)
        .handle(move |task: Task, delivery: Delivery| {
            let runs = Arc::clone(&runs);
            async move {
                let succeeds = match task.plan {
                    Plan::Succeed => true,
                    Plan::FailFirst(failures) => delivery.attempt() > failures,
                    Plan::Panic => {
                        note(&runs, task.n, false);
                        panic!("job {} panics by plan", task.n);
                    }
                    Plan::Slow(millis) => tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(millis)) => true,
                        () = delivery.token().cancelled() => false,
                    },
                };
                note(&runs, task.n, succeeds);
                if succeeds {
                    Ok(())
                } else {
                    Err(format!("job {} fails run {}", task.n, delivery.attempt()))
                }
            }
        })
        .expect("worker")
}

fn note(runs: &Mutex<HashMap<u64, (u32, u32)>>, n: u64, succeeded: bool) {
    let mut runs = runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = runs.entry(n).or_default();
    entry.0 += 1;
    entry.1 += u32::from(succeeded);
}

/// Runs a second worker in short lives, each ended by a shutdown with a short grace.
async fn restart_loop<S: Store>(
    store: S,
    runs: Arc<Mutex<HashMap<u64, (u32, u32)>>>,
    stop_all: CancellationToken,
    seed: u64,
) -> (WorkerReport, u64) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut total = WorkerReport::default();
    let mut restarts = 0;
    while !stop_all.is_cancelled() {
        let grace = Duration::from_millis(rng.u64(0..50));
        let life = Duration::from_millis(rng.u64(100..400));
        let shutdown = stop_all.child_token();
        let one = worker(store.clone(), Arc::clone(&runs), 4, grace);
        let running = tokio::spawn(one.run(shutdown.clone()));
        tokio::select! {
            () = tokio::time::sleep(life) => {}
            () = stop_all.cancelled() => {}
        }
        shutdown.cancel();
        total += running.await.expect("worker task");
        restarts += 1;
    }
    (total, restarts)
}
