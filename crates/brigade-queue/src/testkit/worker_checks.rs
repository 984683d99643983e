//! Checks on the [`Worker`] driving a store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use brigade_core::{CancellationToken, ConfigError};
use brigade_middleware::{Backoff, Retry};
use serde_json::json;
use tokio::sync::mpsc;

use super::{FlakyStore, PATIENCE};
use crate::{
    DEFAULT_LEASE, Delivery, DurableId, EnqueueOptions, FencingToken, GlobalConcurrency,
    GlobalRate, JobRecord, JobState, Lease, MAX_CONCURRENCY, MAX_LEASE, MIN_HEARTBEAT, MIN_LEASE,
    MIN_STORE_TIMEOUT, NewJob, Queue, QueueCounts, Store, Worker, WorkerReport,
};

/// Waits until `queue`'s counts satisfy `done`, or panics after [`PATIENCE`].
async fn wait_for<S: Store>(
    store: &S,
    queue: &str,
    done: impl Fn(&QueueCounts) -> bool,
) -> QueueCounts {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = store.counts(queue).await.expect("counts");
        if done(&counts) {
            return counts;
        }
        assert!(Instant::now() < deadline, "{queue} stuck at {counts:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn job_record<S: Store>(store: &S, id: DurableId) -> JobRecord {
    store.job(id).await.expect("job").expect("job exists")
}

async fn state<S: Store>(store: &S, id: DurableId) -> JobState {
    job_record(store, id).await.state
}

/// Runs `worker` in a task of its own; [`stop`] ends it.
fn start<S: Store>(
    worker: Worker<S>,
) -> (CancellationToken, tokio::task::JoinHandle<WorkerReport>) {
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    (shutdown, running)
}

async fn stop(
    shutdown: &CancellationToken,
    worker: tokio::task::JoinHandle<WorkerReport>,
) -> WorkerReport {
    shutdown.cancel();
    worker.await.expect("worker task")
}

/// A worker runs every job once and records each as completed.
pub async fn worker_runs_every_job<S: Store>(store: S) {
    let queue = Queue::<S, u64>::new(store.clone(), "work");
    queue
        .enqueue_batch((0..200).collect())
        .await
        .expect("enqueue");
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let worker = Worker::builder(store.clone(), "work")
        .concurrency(8)
        .handle(move |n: u64, delivery: Delivery| {
            let counted = Arc::clone(&counted);
            async move {
                assert_eq!(delivery.attempt(), 1);
                assert!(n < 200);
                counted.fetch_add(1, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    let counts = wait_for(&store, "work", |counts| counts.completed == 200).await;
    assert_eq!(counts.live(), 0);
    let report = stop(&shutdown, running).await;
    assert_eq!((report.claimed, report.completed), (200, 200));
    assert_eq!(report.ended(), report.claimed);
    assert_eq!(runs.load(Ordering::SeqCst), 200);
}

/// Failures run again after the retry policy's backoff, until the job's attempts are used
/// up; then it is dead with the last error.
pub async fn worker_retries_then_buries<S: Store>(store: S) {
    let id = store
        .enqueue(
            NewJob::new("failing", json!("x")).with_options(EnqueueOptions::new().max_attempts(3)),
        )
        .await
        .expect("enqueue")
        .id;
    let retry = Retry::builder()
        .max_attempts(u32::MAX)
        .backoff(Backoff::constant(Duration::from_millis(20)))
        .build()
        .expect("retry");
    let worker = Worker::builder(store.clone(), "failing")
        .poll(Duration::from_millis(20))
        .retry(retry)
        .handle(|_: String, delivery: Delivery| async move {
            Err(format!("failure on run {}", delivery.attempt()))
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(&store, "failing", |counts| counts.dead == 1).await;
    let report = stop(&shutdown, running).await;
    assert_eq!((report.retried, report.dead), (2, 1));
    let record = job_record(&store, id).await;
    assert_eq!((record.state, record.attempt), (JobState::Dead, 3));
    assert_eq!(record.last_error.as_deref(), Some("failure on run 3"));
}

/// Shutdown past the grace period stops running jobs and gives them back uncharged.
pub async fn worker_releases_on_shutdown<S: Store>(store: S) {
    let id = store
        .enqueue(NewJob::new("slow", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(store.clone(), "slow")
        .grace(Duration::from_millis(100))
        .handle(move |_: serde_json::Value, delivery: Delivery| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                delivery.token().cancelled().await;
                Err::<(), _>("stopped".to_string())
            }
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .expect("job started");
    let report = stop(&shutdown, running).await;
    assert_eq!(report.released, 1, "{report:?}");
    let record = job_record(&store, id).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Available, 0),
        "given back uncharged"
    );
}

/// A worker that cannot renew a lease stops the run before the lease ends; the job is
/// redelivered after it expires, and the late end is not recorded over the new claim.
pub async fn worker_fences_itself_when_heartbeats_fail<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("fenced", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let (stopped, mut stopped_rx) = mpsc::unbounded_channel();
    let lease = Duration::from_secs(2);
    let worker = Worker::builder(flaky.clone(), "fenced")
        .lease(lease)
        .heartbeat(lease / 5)
        .sweep(Duration::from_secs(3600))
        .handle(move |_: serde_json::Value, delivery: Delivery| {
            let stopped = stopped.clone();
            async move {
                let claimed = Instant::now();
                delivery.token().cancelled().await;
                let _ = stopped.send(claimed.elapsed());
                Err::<(), _>("fenced".to_string())
            }
        })
        .expect("worker");
    flaky.fail_heartbeats(true);
    let (shutdown, running) = start(worker);
    let after = tokio::time::timeout(PATIENCE, stopped_rx.recv())
        .await
        .expect("run stopped")
        .expect("sent");
    assert!(
        after < lease,
        "stopped {after:?} into a {lease:?} lease: before it ended"
    );
    let record = job_record(&store, id).await;
    assert_eq!(
        record.state,
        JobState::Running,
        "nothing recorded by the fenced run"
    );
    let report = stop(&shutdown, running).await;
    assert_eq!(report.lost_leases, 1, "{report:?}");
    super::rescue_after(&store, "fenced", lease, 1).await;
    assert_eq!(job_record(&store, id).await.state, JobState::Available);
}

/// A heartbeat that fails slowly (no answer until the store timeout, as from a database
/// restarting) is tried again soon after, not a whole interval later, so the runs it
/// vouches for are renewed before their self-fencing point and finish.
///
/// With a 6 s lease, a 1.8 s heartbeat and store timeout, the first beat fails at 3.6 s;
/// the next full interval would come at 5.4 s, past the fencing point at 4.5 s.
pub async fn worker_rides_out_a_slow_failed_heartbeat<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("stalled", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let lease = Duration::from_secs(6);
    let worker = Worker::builder(flaky.clone(), "stalled")
        .lease(lease)
        .heartbeat(Duration::from_millis(1_800))
        .sweep(Duration::from_secs(3600))
        .handle(move |_: serde_json::Value, delivery: Delivery| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(5_500)) => Ok(()),
                () = delivery.token().cancelled() => Err("fenced".to_string()),
            }
        })
        .expect("worker");
    flaky.stall_heartbeats(1);
    let (shutdown, running) = start(worker);
    wait_for(&store, "stalled", |counts| counts.live() == 0).await;
    let report = stop(&shutdown, running).await;
    assert_eq!(state(&store, id).await, JobState::Completed, "{report:?}");
    assert_eq!((report.completed, report.lost_leases), (1, 0), "{report:?}");
    assert!(
        report.store_errors >= 1,
        "the stalled heartbeat: {report:?}"
    );
}

/// A heartbeat answered late but successfully renews its leases, and the next one leaves
/// a heartbeat interval after the last was sent, not after its answer came: a store that
/// answers slowly costs the runs nothing.
///
/// With a 6 s lease, a 1.8 s heartbeat and answers 1.6 s late, beats sent an interval
/// after each answer (3.4 s apart) let a lease that was renewed at 1.8 s reach its
/// self-fencing point (4.5 s after that send) before the next answer comes.
pub async fn worker_rides_out_slow_successful_heartbeats<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("slow-beats", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let worker = Worker::builder(flaky.clone(), "slow-beats")
        .lease(Duration::from_secs(6))
        .heartbeat(Duration::from_millis(1_800))
        .store_timeout(Duration::from_millis(2_500))
        .sweep(Duration::from_secs(3600))
        .handle(move |_: serde_json::Value, delivery: Delivery| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(8)) => Ok(()),
                () = delivery.token().cancelled() => Err("fenced".to_string()),
            }
        })
        .expect("worker");
    flaky.slow_heartbeats(Duration::from_millis(1_600));
    let (shutdown, running) = start(worker);
    wait_for(&store, "slow-beats", |counts| counts.live() == 0).await;
    let report = stop(&shutdown, running).await;
    assert_eq!(state(&store, id).await, JobState::Completed, "{report:?}");
    assert_eq!((report.completed, report.lost_leases), (1, 0), "{report:?}");
}

/// A claimed job whose lease the worker can no longer vouch for before the job starts
/// (here the claim's answer came late) is given back uncharged, not left to expire: the
/// lease may still hold, and an expiry is charged as a run, so a job on its last attempt
/// would die without one. Had the lease really gone, the store would refuse the release.
pub async fn worker_gives_back_a_job_it_cannot_vouch_for_before_its_start<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(
            NewJob::new("doubted", json!(null)).with_options(EnqueueOptions::new().max_attempts(1)),
        )
        .await
        .expect("enqueue")
        .id;
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    // The claim answers a second late: 0.2 s before the lease ends, within its last
    // quarter, where the worker starts nothing.
    let worker = Worker::builder(flaky.clone(), "doubted")
        .lease(Duration::from_millis(1_200))
        .store_timeout(Duration::from_secs(2))
        .sweep(Duration::from_millis(100))
        .poll(Duration::from_millis(50))
        .handle(move |_: serde_json::Value, _: Delivery| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .expect("worker");
    flaky.slow_claims(1);
    let (shutdown, running) = start(worker);
    wait_for(&store, "doubted", |counts| counts.live() == 0).await;
    let report = stop(&shutdown, running).await;
    let record = job_record(&store, id).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Completed, 1),
        "given back uncharged, then run: {report:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// A claim the worker gave up on at its store timeout may still have happened: its jobs
/// are given back, uncharged, when its answer comes, not left to wait out their leases
/// and be charged an attempt (a job on its last attempt would die without a run).
pub async fn worker_gives_back_what_a_late_claim_took<S: Store>(store: S) {
    let (record, report) = late_claim_of_a_last_attempt(store, "late", 0).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Completed, 1),
        "run once, never charged for the claim given up: {report:?}"
    );
    assert_eq!(report.claimed, report.completed, "{report:?}");
}

/// A worker that gives back what a late claim took sends the give-back again while the
/// claim's lease lasts when it fails on its way: the job, on its last attempt, runs and
/// completes instead of waiting out the lease to be buried unrun.
pub async fn worker_sends_a_failed_give_back_again<S: Store>(store: S) {
    let (record, report) = late_claim_of_a_last_attempt(store, "late-release", 2).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Completed, 1),
        "given back at the third try, run once: {report:?}"
    );
}

/// Runs one job with a single attempt in `queue` through a worker whose first claim is
/// answered after the worker gave up on it, and whose first `failing_give_backs`
/// give-backs fail on their way; returns the job's record and the worker's report.
async fn late_claim_of_a_last_attempt<S: Store>(
    store: S,
    queue: &str,
    failing_give_backs: u32,
) -> (JobRecord, WorkerReport) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(
            NewJob::new(queue, json!(null)).with_options(EnqueueOptions::new().max_attempts(1)),
        )
        .await
        .expect("enqueue")
        .id;
    let worker = Worker::builder(flaky.clone(), queue)
        .lease(Duration::from_secs(2))
        .sweep(Duration::from_millis(100))
        .poll(Duration::from_millis(50))
        .store_timeout(Duration::from_millis(300))
        .handle(|_: serde_json::Value, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    flaky.slow_claims(1);
    flaky.fail_releases(failing_give_backs);
    let (shutdown, running) = start(worker);
    wait_for(&store, queue, |counts| counts.live() == 0).await;
    let report = stop(&shutdown, running).await;
    (job_record(&store, id).await, report)
}

/// A worker shut down while a claim it gave up on is still on its way returns only once
/// that claim's jobs are given back: when it returns its process may exit, and a job left
/// to wait out its lease would be charged a run it never had (on its last attempt, dead
/// unrun).
pub async fn worker_shutdown_gives_back_what_a_late_claim_took<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(
            NewJob::new("late-shutdown", json!(null))
                .with_options(EnqueueOptions::new().max_attempts(1)),
        )
        .await
        .expect("enqueue")
        .id;
    let worker = Worker::builder(flaky.clone(), "late-shutdown")
        .lease(Duration::from_secs(2))
        .sweep(Duration::from_secs(3600))
        .store_timeout(Duration::from_millis(300))
        .handle(|_: serde_json::Value, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    flaky.slow_claims(1);
    let (shutdown, running) = start(worker);
    // Past the claim's timeout, in the back-off after it; its answer is due at 1 s.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = tokio::time::timeout(PATIENCE, stop(&shutdown, running))
        .await
        .expect("the worker stopped");
    // Nothing of the worker runs on once it returned, as in a process that exits then.
    let record = job_record(&store, id).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Available, 0),
        "given back uncharged before the worker returned: {report:?}"
    );
}

/// A claim on its way when the shutdown begins starts none of the runs it brings back:
/// its jobs go back at once, uncharged, as the claimed jobs that had not started do, and
/// the shutdown does not wait out the grace for them.
pub async fn worker_starts_nothing_a_claim_answered_after_shutdown_took<S: Store>(store: S) {
    const JOBS: u64 = 16;
    let flaky = FlakyStore::new(store.clone());
    let queue = Queue::<S, u64>::new(store.clone(), "claimed-at-shutdown");
    let ids = queue
        .enqueue_batch((0..JOBS).collect())
        .await
        .expect("enqueue");
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    let worker = Worker::builder(flaky.clone(), "claimed-at-shutdown")
        .concurrency(JOBS as usize)
        // The claim's answer, a second late, comes within the wait.
        .store_timeout(Duration::from_secs(5))
        .handle(move |_: u64, _: Delivery| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .expect("worker");
    flaky.slow_claims(1);
    let (shutdown, running) = start(worker);
    // The first claim is on its way; its answer is due at 1 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = tokio::time::timeout(PATIENCE, stop(&shutdown, running))
        .await
        .expect("the worker stopped");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "{report:?}");
    for enqueued in ids {
        let record = job_record(&store, enqueued.id).await;
        assert_eq!(
            (record.state, record.attempt),
            (JobState::Available, 0),
            "given back uncharged: {report:?}"
        );
    }
    assert_eq!(
        (report.claimed, report.released),
        (JOBS, JOBS),
        "{report:?}"
    );
}

/// A store call that panics in one of the worker's own tasks (here the call that records
/// a batch of acks) is a failed call: the acks are sent again, the worker goes on, and
/// every job ends.
pub async fn worker_outlives_a_store_call_that_panics<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let queue = Queue::<S, u64>::new(store.clone(), "panicking-store");
    queue
        .enqueue_batch((0..4).collect())
        .await
        .expect("enqueue");
    let worker = Worker::builder(flaky.clone(), "panicking-store")
        .concurrency(2)
        .lease(Duration::from_secs(1))
        .sweep(Duration::from_millis(100))
        .poll(Duration::from_millis(50))
        .handle(|_: u64, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    flaky.panic_acks(1);
    let (shutdown, running) = start(worker);
    let counts = wait_for(&store, "panicking-store", |counts| counts.live() == 0).await;
    assert_eq!(counts.completed, 4, "{counts:?}");
    let report = tokio::time::timeout(PATIENCE, stop(&shutdown, running))
        .await
        .expect("the worker stopped");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// An ack the store recorded but answered only after the worker's store timeout is sent
/// again and refused as a second ack; the worker finds in the job's state that its first
/// ack took, and counts a completed run, not a duplicate one.
pub async fn worker_counts_an_ack_answered_late_as_completed<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("late-ack", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let worker = Worker::builder(flaky.clone(), "late-ack")
        .store_timeout(Duration::from_millis(300))
        .handle(|_: serde_json::Value, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    let counters = worker.counters();
    flaky.slow_acks(1);
    let (shutdown, running) = start(worker);
    wait_for(&store, "late-ack", |counts| counts.completed == 1).await;
    let deadline = Instant::now() + PATIENCE;
    while counters.snapshot().ended() == 0 {
        assert!(Instant::now() < deadline, "{:?}", counters.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = stop(&shutdown, running).await;
    assert_eq!((report.completed, report.stale), (1, 0), "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
    assert_eq!(job_record(&store, id).await.attempt, 1);
}

/// Takes the job of `queue` as another host would, once it is claimable again, polling
/// briefly so that it gets there before the worker's next try.
async fn claim_as_another_host<S: Store>(store: &S, queue: &str) -> crate::Claim {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(claim) = super::claim(store, queue, 1, super::LONG_LEASE).await.pop() {
            return claim;
        }
        assert!(
            Instant::now() < deadline,
            "nothing became claimable in {queue} within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `counters` account for `runs` ended runs.
async fn wait_for_ends(counters: &crate::WorkerCounters, runs: u64) {
    let deadline = Instant::now() + PATIENCE;
    while counters.snapshot().ended() < runs {
        assert!(Instant::now() < deadline, "{:?}", counters.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A retry the store recorded but answered only after the worker's store timeout is sent
/// again; by then another host has claimed the job, so the second sending is refused.
/// The worker finds in the job that its first sending took (the job was claimed once
/// more since, and carries the run's error), and counts a retried run, not a duplicate.
pub async fn worker_counts_a_recorded_retry_claimed_again_as_retried<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("retried-late", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let retry = Retry::builder()
        .max_attempts(u32::MAX)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .build()
        .expect("retry");
    let (ran, mut ran_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(flaky.clone(), "retried-late")
        .store_timeout(Duration::from_millis(300))
        .retry(retry)
        .handle(move |_: serde_json::Value, _: Delivery| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(());
                Err::<(), _>("fails once".to_string())
            }
        })
        .expect("worker");
    let counters = worker.counters();
    flaky.slow_retries(1);
    // The worker takes the job, then nothing more: it is the other host's to take again.
    flaky.starve_claims(Some(1));
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, ran_rx.recv())
        .await
        .expect("the job ran");
    let other = claim_as_another_host(&store, "retried-late").await;
    assert_eq!((other.id, other.attempt), (id, 2), "the retry took");
    wait_for_ends(&counters, 1).await;
    let report = stop(&shutdown, running).await;
    assert_eq!(
        job_record(&store, id).await.state,
        JobState::Running,
        "the other host holds it"
    );
    assert_eq!((report.retried, report.stale), (1, 0), "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// A shutdown's release the store recorded but answered only after the worker's store
/// timeout is sent again; by then another host has claimed the job, so the second sending
/// is refused. The worker finds in the job that its release took (claimed again at the
/// attempt the released run had: the release gave one back), and counts a released run,
/// not a duplicate.
pub async fn worker_counts_a_recorded_release_claimed_again_as_released<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("released-late", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(flaky.clone(), "released-late")
        .grace(Duration::from_millis(100))
        .store_timeout(Duration::from_millis(300))
        .handle(move |_: serde_json::Value, delivery: Delivery| {
            let started = started.clone();
            async move {
                let _ = started.send(());
                delivery.token().cancelled().await;
                Err::<(), _>("stopped".to_string())
            }
        })
        .expect("worker");
    flaky.slow_releases(1);
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .expect("the job started");
    shutdown.cancel();
    let other = claim_as_another_host(&store, "released-late").await;
    assert_eq!(
        (other.id, other.attempt),
        (id, 1),
        "the release took, uncharged"
    );
    let report = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the worker stopped")
        .expect("worker task");
    assert_eq!((report.released, report.stale), (1, 0), "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// A shutdown that gives up on a run deaf to its token gives back the jobs it holds, but
/// a run that ended and whose end is still on its way to the store (here a success whose
/// ack the store does not answer yet) keeps that end: its job is recorded as the run
/// decided, not handed back to run again.
pub async fn worker_shutdown_keeps_the_ends_runs_decided<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let deaf = store
        .enqueue(NewJob::new("decided", json!("deaf")))
        .await
        .expect("enqueue")
        .id;
    let done = store
        .enqueue(NewJob::new("decided", json!("done")))
        .await
        .expect("enqueue")
        .id;
    let finish = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::clone(&finish);
    let (ran, mut ran_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(flaky.clone(), "decided")
        .concurrency(2)
        .grace(Duration::from_millis(100))
        .store_timeout(Duration::from_millis(200))
        .handle(move |job: String, _: Delivery| {
            let (ran, gate) = (ran.clone(), Arc::clone(&gate));
            async move {
                let _ = ran.send(());
                if job == "deaf" {
                    gate.notified().await; // deaf to its token
                }
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    flaky.stall_acks(true);
    let (shutdown, running) = start(worker);
    for _ in 0..2 {
        tokio::time::timeout(PATIENCE, ran_rx.recv())
            .await
            .expect("both jobs started");
    }
    shutdown.cancel();
    // Past the grace and the wait for stopped runs: the worker has given up on the deaf
    // run and is recording what it holds.
    tokio::time::sleep(Duration::from_secs(1)).await;
    flaky.stall_acks(false);
    let report = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the worker stopped")
        .expect("worker task");
    finish.notify_one();
    let done = job_record(&store, done).await;
    assert_eq!(
        (done.state, done.attempt),
        (JobState::Completed, 1),
        "the success stands: {report:?}"
    );
    let deaf = job_record(&store, deaf).await;
    assert_eq!(
        (deaf.state, deaf.attempt),
        (JobState::Available, 0),
        "the deaf run's job given back uncharged: {report:?}"
    );
    assert_eq!(
        (report.completed, report.released, report.unstopped),
        (1, 1, 1),
        "{report:?}"
    );
}

/// A shutdown ends within its bound (grace + lease + five store timeouts) while acks fail
/// and heartbeats succeed: from the point where it gives up on its runs the worker renews
/// no lease, so the ends it still owes are tried only while the leases last. It renewed
/// them for good before, and never returned.
pub async fn worker_shutdown_ends_while_acks_fail_and_heartbeats_succeed<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("acks-down", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let (lease, grace, store_timeout) = (
        Duration::from_secs(2),
        Duration::from_millis(100),
        Duration::from_millis(200),
    );
    let (ran, mut ran_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(flaky.clone(), "acks-down")
        .lease(lease)
        .grace(grace)
        .store_timeout(store_timeout)
        .handle(move |_: serde_json::Value, _: Delivery| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(());
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    flaky.stall_acks(true);
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, ran_rx.recv())
        .await
        .expect("the job ran");
    // Past a heartbeat (a third of the lease): the lease is renewed, the ack is not.
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    let bound = grace + lease + store_timeout * 5;
    let report = tokio::time::timeout(bound + PATIENCE, running)
        .await
        .unwrap_or_else(|_| panic!("no return within {:?} of the shutdown", bound + PATIENCE))
        .expect("worker task");
    flaky.stall_acks(false);
    assert_eq!(
        job_record(&store, id).await.state,
        JobState::Running,
        "no ack went through; the lease will expire"
    );
    assert_eq!(report.unrecorded, 1, "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// With the store unreachable (heartbeats and acks hang), a shutdown still ends within a
/// bound that does not grow with the runs it holds: the ends it owes are recorded all at
/// once, not one store timeout after another. The bound asserted is the documented one
/// (grace + lease + five store timeouts) with several seconds of slack; the ends recorded
/// one after another took a store timeout each, past half a minute here.
pub async fn worker_shutdown_with_a_blackholed_store_is_bounded_independently_of_concurrency<
    S: Store,
>(
    store: S,
) {
    const JOBS: u64 = 32;
    let flaky = FlakyStore::new(store.clone());
    let queue = Queue::<S, u64>::new(store.clone(), "blackholed");
    queue
        .enqueue_batch((0..JOBS).collect())
        .await
        .expect("enqueue");
    let (lease, grace, store_timeout) = (
        Duration::from_secs(4),
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    let (ran, mut ran_rx) = mpsc::unbounded_channel();
    let worker = Worker::builder(flaky.clone(), "blackholed")
        .concurrency(JOBS as usize)
        .lease(lease)
        .heartbeat(Duration::from_secs(1))
        .store_timeout(store_timeout)
        .grace(grace)
        .handle(move |_: u64, _: Delivery| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(());
                // Every run in flight when the store goes.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    for _ in 0..JOBS {
        tokio::time::timeout(PATIENCE, ran_rx.recv())
            .await
            .expect("every job ran");
    }
    // The link goes: every heartbeat and ack hangs from now on.
    flaky.stall_heartbeats(u32::MAX);
    flaky.stall_acks(true);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let began = Instant::now();
    shutdown.cancel();
    let bound = grace + lease + store_timeout * 5;
    let slack = Duration::from_secs(5);
    let report = tokio::time::timeout(bound + slack, running)
        .await
        .unwrap_or_else(|_| panic!("no return within {:?} of the shutdown", bound + slack))
        .expect("worker task");
    let took = began.elapsed();
    flaky.stall_acks(false);
    assert!(took < bound + slack, "took {took:?}: {report:?}");
    assert_eq!(report.claimed, JOBS, "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
}

/// A store that hands out more jobs than a claim asked for does not strand the extras:
/// the worker gives them back uncharged, and claims them again when it has room, so each
/// job runs once, at its first attempt.
pub async fn worker_gives_back_claims_beyond_its_ask<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let queue = Queue::<S, u64>::new(store.clone(), "overclaimed");
    let ids = queue
        .enqueue_batch((0..3).collect())
        .await
        .expect("enqueue");
    let worker = Worker::builder(flaky.clone(), "overclaimed")
        .concurrency(1)
        .lease(Duration::from_secs(1))
        .sweep(Duration::from_millis(100))
        .poll(Duration::from_millis(50))
        .handle(|_: u64, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    flaky.overclaim(2);
    let (shutdown, running) = start(worker);
    wait_for(&store, "overclaimed", |counts| counts.live() == 0).await;
    let report = stop(&shutdown, running).await;
    for enqueued in ids {
        let record = store.job(enqueued.id).await.expect("job").expect("exists");
        assert_eq!(
            (record.state, record.attempt),
            (JobState::Completed, 1),
            "{report:?}"
        );
    }
    assert_eq!((report.claimed, report.completed), (3, 3), "{report:?}");
}

/// The user's code that runs in the worker's own task, not on the local pool, cannot
/// strand a job by panicking: a job whose `Deserialize` or the handler's `weight` panics,
/// whose failure the retry policy's `retry_if` panics judging, or whose error panics when
/// displayed, is dead at once with the panic's message, and the worker goes on with the
/// next jobs, accounts for every run and shuts down.
pub async fn worker_buries_jobs_whose_code_panics_outside_the_pool<S: Store>(store: S) {
    struct Picky;

    /// A handler's error whose `Display` panics for one of them.
    #[derive(Debug)]
    struct Refusal(&'static str);

    impl std::fmt::Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            assert_ne!(self.0, "unspeakable", "cannot display this one");
            f.write_str(self.0)
        }
    }

    #[async_trait::async_trait]
    impl crate::Handler<String> for Picky {
        type Error = Refusal;

        async fn handle(&self, job: String, _delivery: Delivery) -> Result<(), Refusal> {
            match job.as_str() {
                "judge" => Err(Refusal("judge me")),
                "display" => Err(Refusal("unspeakable")),
                _ => Ok(()),
            }
        }

        fn weight(&self, job: &String) -> u32 {
            assert_ne!(job, "weigh", "cannot weigh this one");
            1
        }
    }

    let queue = Queue::<S, String>::new(store.clone(), "panicky");
    let ids = queue
        .enqueue_batch(vec![
            "weigh".into(),
            "judge".into(),
            "fine".into(),
            "display".into(),
        ])
        .await
        .expect("enqueue");
    let retry = Retry::builder()
        .retry_if(|_| panic!("no judgement today"))
        .build()
        .expect("retry");
    let worker = Worker::builder(store.clone(), "panicky")
        .retry(retry)
        .handle(Picky)
        .expect("worker");
    let (shutdown, running) = start(worker);
    let counts = wait_for(&store, "panicky", |counts| counts.live() == 0).await;
    assert_eq!((counts.dead, counts.completed), (3, 1));
    let report = stop(&shutdown, running).await;
    assert_eq!((report.dead, report.completed), (3, 1), "{report:?}");
    assert_eq!(report.ended(), report.claimed, "{report:?}");
    let weighed = store.job(ids[0].id).await.expect("job").expect("exists");
    assert_eq!(weighed.attempt, 1);
    let weighed = weighed.last_error.unwrap_or_default();
    assert!(weighed.contains("cannot weigh this one"), "{weighed}");
    let judged = store.job(ids[1].id).await.expect("job").expect("exists");
    assert_eq!(judged.attempt, 1);
    let judged = judged.last_error.unwrap_or_default();
    assert!(
        judged.contains("judge me") && judged.contains("no judgement today"),
        "{judged}"
    );
    let displayed = store.job(ids[3].id).await.expect("job").expect("exists");
    assert_eq!(
        (displayed.state, displayed.attempt),
        (JobState::Dead, 1),
        "{displayed:?}"
    );
    let displayed = displayed.last_error.unwrap_or_default();
    assert!(displayed.contains("cannot display this one"), "{displayed}");
}

/// A run that ignores its token and finishes after its job was claimed again (a zombie)
/// has its end refused and counted as stale; the new holder's end stands.
pub async fn worker_counts_a_zombie_ack_as_stale<S: Store>(store: S) {
    let flaky = FlakyStore::new(store.clone());
    let id = store
        .enqueue(NewJob::new("zombie", json!(null)))
        .await
        .expect("enqueue")
        .id;
    let lease = Duration::from_secs(1);
    let (started, mut started_rx) = mpsc::unbounded_channel();
    let finish = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::clone(&finish);
    // One slot, held by the deaf run: the worker cannot claim the job back itself.
    let worker = Worker::builder(flaky.clone(), "zombie")
        .concurrency(1)
        .lease(lease)
        .heartbeat(lease / 5)
        .sweep(Duration::from_secs(3600))
        .handle(move |_: serde_json::Value, _: Delivery| {
            let (started, gate) = (started.clone(), Arc::clone(&gate));
            async move {
                let _ = started.send(());
                gate.notified().await; // deaf to its token: finishes when the test says
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    let counters = worker.counters();
    flaky.fail_heartbeats(true);
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, started_rx.recv())
        .await
        .expect("job started");
    // The lease runs out and another claimant takes the job.
    super::rescue_after(&store, "zombie", lease, 1).await;
    let current = super::claim_one_eventually(&store, "zombie", super::LONG_LEASE).await;
    assert_eq!(current.id, id);
    finish.notify_one();
    let deadline = Instant::now() + PATIENCE;
    while counters.snapshot().stale == 0 {
        assert!(
            Instant::now() < deadline,
            "the zombie's end was never refused: {:?}",
            counters.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        job_record(&store, id).await.state,
        JobState::Running,
        "the zombie changed nothing"
    );
    assert!(
        store
            .complete(current.lease())
            .await
            .expect("complete")
            .is_recorded(),
        "the new holder's end stands"
    );
    let report = stop(&shutdown, running).await;
    assert_eq!((report.stale, report.completed), (1, 0), "{report:?}");
}

/// A worker on `queue` (2 slots) holding a rerun that waits at a global limit: job 0 was
/// claimed, its lease expired and it was rescued; an outsider holds the limit's one unit;
/// the worker claimed the rerun, which cannot start. Its handler reports each start as
/// `(payload, attempt)`.
struct HeldRerun {
    rerun: DurableId,
    limit: GlobalConcurrency,
    outsider: Lease,
    starts: mpsc::UnboundedReceiver<(u64, u32)>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<WorkerReport>,
}

async fn hold_a_rerun<S: Store>(store: &S, queue: &str) -> HeldRerun {
    let limit = GlobalConcurrency::new(format!("kit-{queue}-units"), 1).expect("limit");
    let rerun = store
        .enqueue(NewJob::new(queue, json!(0)))
        .await
        .expect("enqueue")
        .id;
    let first = super::claim(store, queue, 1, super::SHORT_LEASE).await;
    assert_eq!(first.len(), 1);
    super::rescue_after(store, queue, super::SHORT_LEASE, 1).await;
    let outsider = Lease::new(DurableId::new(i64::MAX), FencingToken::new(1));
    assert!(
        store
            .acquire_units(&limit, outsider, 1, super::LONG_LEASE)
            .await
            .expect("acquire")
    );
    let (started, starts) = mpsc::unbounded_channel();
    let worker = Worker::builder(store.clone(), queue)
        .concurrency(2)
        .poll(Duration::from_millis(20))
        .concurrency_limit(limit.clone())
        .handle(move |n: u64, delivery: Delivery| {
            let started = started.clone();
            async move {
                let _ = started.send((n, delivery.attempt()));
                Ok::<(), String>(())
            }
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(store, queue, |counts| counts.running == 1).await;
    HeldRerun {
        rerun,
        limit,
        outsider,
        starts,
        shutdown,
        running,
    }
}

/// After claiming a rerun (a job past its first attempt), a worker claims nothing more until
/// that run has started. Jobs that came back together from a dead worker must not all land
/// on one worker again before the first of them runs, or a job that kills its worker takes
/// the same neighbours down with it on every attempt.
pub async fn worker_claims_nothing_more_until_a_rerun_starts<S: Store>(store: S) {
    let mut held = hold_a_rerun(&store, "rerun").await;
    let later = store
        .enqueue(NewJob::new("rerun", json!(1)))
        .await
        .expect("enqueue")
        .id;
    // Many poll intervals and a wake-up: a worker free to claim would have taken it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        (state(&store, held.rerun).await, state(&store, later).await),
        (JobState::Running, JobState::Available),
        "the worker claimed again before its rerun started"
    );
    store
        .release_units(&held.limit, held.outsider)
        .await
        .expect("release");
    let order = [
        tokio::time::timeout(PATIENCE, held.starts.recv()).await,
        tokio::time::timeout(PATIENCE, held.starts.recv()).await,
    ];
    assert_eq!(
        order.map(|start| start.expect("a start in time").expect("a start")),
        [(0, 2), (1, 1)]
    );
    wait_for(&store, "rerun", |counts| counts.completed == 2).await;
    stop(&held.shutdown, held.running).await;
}

/// A worker shutting down while its claim loop waits for a rerun to start (held at a
/// global limit that never frees) stops at once and gives the rerun back uncharged: the
/// grace period is for running jobs, not for claimed ones waiting at a limit.
pub async fn worker_shuts_down_while_a_rerun_waits_to_start<S: Store>(store: S) {
    let mut held = hold_a_rerun(&store, "held-rerun").await;
    let report = tokio::time::timeout(PATIENCE, stop(&held.shutdown, held.running))
        .await
        .expect("the worker stopped while its rerun waited to start");
    assert_eq!(report.released, 1, "{report:?}");
    assert!(held.starts.try_recv().is_err(), "the held rerun started");
    let record = store.job(held.rerun).await.expect("job").expect("exists");
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Available, 1),
        "given back, charged only for the rescued run"
    );
}

/// A payload the handler's type cannot decode is dead at once: no run could succeed.
pub async fn worker_refuses_undecodable_payloads<S: Store>(store: S) {
    let id = store
        .enqueue(NewJob::new("typed", json!({"not": "a number"})))
        .await
        .expect("enqueue")
        .id;
    let worker = Worker::builder(store.clone(), "typed")
        .handle(|_: u64, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(&store, "typed", |counts| counts.dead == 1).await;
    stop(&shutdown, running).await;
    let record = job_record(&store, id).await;
    assert!(
        record
            .last_error
            .is_some_and(|error| error.contains("decode"))
    );
}

/// A shutdown ends even when a run ignores its token: past the grace period and the wait
/// for stopped runs, the worker gives the job back uncharged, counts the run as
/// `unstopped` and returns without waiting for it, on both local pools. (The run keeps
/// its local worker until it returns; anything it records then is refused as stale.)
pub async fn worker_shutdown_leaves_a_deaf_run<S: Store>(store: S) {
    let queue = "deaf-async";
    let finish = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::clone(&finish);
    let (started, started_rx) = mpsc::unbounded_channel();
    let worker = deaf_worker(&store, queue).handle(move |_: serde_json::Value, _: Delivery| {
        let (started, gate) = (started.clone(), Arc::clone(&gate));
        async move {
            let _ = started.send(());
            gate.notified().await; // deaf to its token
            Ok::<(), String>(())
        }
    });
    stop_beside_a_deaf_run(&store, queue, worker.expect("worker"), started_rx).await;
    finish.notify_one();

    #[cfg(feature = "thread")]
    {
        let queue = "deaf-blocking";
        let finish = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = Arc::clone(&finish);
        let (started, started_rx) = mpsc::unbounded_channel();
        let worker =
            deaf_worker(&store, queue).handle_blocking(move |_: serde_json::Value, _: Delivery| {
                let _ = started.send(());
                while !gate.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5)); // deaf to its token
                }
                Ok::<(), String>(())
            });
        stop_beside_a_deaf_run(&store, queue, worker.expect("worker"), started_rx).await;
        finish.store(true, Ordering::SeqCst);
    }
}

fn deaf_worker<S: Store>(store: &S, queue: &str) -> crate::WorkerBuilder<S, String> {
    Worker::builder(store.clone(), queue)
        .concurrency(1)
        .grace(Duration::from_millis(100))
        .store_timeout(Duration::from_millis(200))
}

async fn stop_beside_a_deaf_run<S: Store>(
    store: &S,
    queue: &str,
    worker: Worker<S>,
    mut started: mpsc::UnboundedReceiver<()>,
) {
    let id = store
        .enqueue(NewJob::new(queue, json!(null)))
        .await
        .expect("enqueue")
        .id;
    let (shutdown, running) = start(worker);
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("job started");
    let report = tokio::time::timeout(PATIENCE, stop(&shutdown, running))
        .await
        .unwrap_or_else(|_| panic!("{queue}: the shutdown waited for a run deaf to its token"));
    assert_eq!(
        (report.released, report.unstopped),
        (1, 1),
        "{queue}: {report:?}"
    );
    let record = job_record(store, id).await;
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Available, 0),
        "{queue}: given back uncharged"
    );
}

/// A worker that could not work is refused when it is built, with the setting named: no
/// panic later, and no claim loop warning about a name the store refuses on every call.
pub async fn worker_builder_refuses_unworkable_settings<S: Store>(store: S) {
    let refused = |builder: crate::WorkerBuilder<S, String>| {
        builder
            .handle(|_: serde_json::Value, _: Delivery| async { Ok::<(), String>(()) })
            .err()
    };
    let setting = |error: Option<ConfigError>| match error {
        Some(ConfigError::OutOfRange { setting, .. }) => Some(setting),
        Some(ConfigError::ZeroWorkers) => Some("zero concurrency"),
        _ => None,
    };
    let builder = || Worker::builder(store.clone(), "settings");
    for (builder, expected) in [
        (builder().concurrency(0), "zero concurrency"),
        (builder().concurrency(MAX_CONCURRENCY + 1), "concurrency"),
        (builder().lease(Duration::MAX), "lease"),
        (builder().lease(Duration::from_millis(1)), "lease"),
        (builder().heartbeat(Duration::from_nanos(1)), "heartbeat"),
        (
            builder().heartbeat(MIN_HEARTBEAT - Duration::from_nanos(1)),
            "heartbeat",
        ),
        (builder().heartbeat(DEFAULT_LEASE / 2), "heartbeat"),
        (
            builder().store_timeout(Duration::from_nanos(1)),
            "store_timeout",
        ),
        (
            builder().store_timeout(MIN_STORE_TIMEOUT - Duration::from_nanos(1)),
            "store_timeout",
        ),
        (Worker::builder(store.clone(), ""), "queue name"),
    ] {
        assert_eq!(setting(refused(builder)), Some(expected));
    }
    // The longest waits a user may mean as "for good" build, and shut down.
    let patient = builder()
        .lease(MAX_LEASE)
        .grace(Duration::MAX)
        .store_timeout(Duration::MAX)
        .poll(Duration::MAX)
        .sweep(Duration::MAX);
    assert_eq!(refused(patient), None);
    // The shortest settings a worker takes build.
    let eager = builder()
        .lease(MIN_LEASE)
        .heartbeat(MIN_HEARTBEAT)
        .store_timeout(MIN_STORE_TIMEOUT);
    assert_eq!(refused(eager), None);

    // A name the store refuses on every call is refused here, for the queue, the limits
    // and the worker's id (every claim names it as the holder).
    assert_eq!(setting(refused(builder().worker_id(""))), Some("worker id"));
    for odd in ["odd{name}", "odd\0name"] {
        assert_eq!(
            FlakyStore::new(store.clone()).check_name(odd),
            store.check_name(odd),
            "a store with faults switched in takes the names its store takes"
        );
        if store.check_name(odd).is_ok() {
            continue;
        }
        let rate = GlobalRate::new(odd, 1, Duration::from_secs(1)).expect("rate");
        let units = GlobalConcurrency::new(odd, 1).expect("units");
        for (builder, expected) in [
            (Worker::builder(store.clone(), odd), "queue name"),
            (builder().rate_limit(rate), "global rate key"),
            (builder().concurrency_limit(units), "global concurrency key"),
            (builder().worker_id(odd), "worker id"),
        ] {
            assert_eq!(setting(refused(builder)), Some(expected));
        }
    }
}

/// A worker whose every setting is as long as it may be runs a job and shuts down: no
/// arithmetic on its durations overflows.
pub async fn worker_runs_with_the_longest_settings<S: Store>(store: S) {
    store
        .enqueue(NewJob::new("patient", json!(null)))
        .await
        .expect("enqueue");
    let worker = Worker::builder(store.clone(), "patient")
        .concurrency(2)
        .lease(MAX_LEASE)
        .grace(Duration::MAX)
        .store_timeout(Duration::MAX)
        .sweep(Duration::MAX)
        .handle(|_: serde_json::Value, _: Delivery| async { Ok::<(), String>(()) })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(&store, "patient", |counts| counts.completed == 1).await;
    let report = tokio::time::timeout(PATIENCE, stop(&shutdown, running))
        .await
        .expect("the worker stopped");
    assert_eq!((report.claimed, report.completed), (1, 1), "{report:?}");
}

/// A local layer that refuses every job.
struct RefuseAll;

impl<J, E> brigade_core::hooks::Middleware<J, E> for RefuseAll {
    fn admit(&self, _: &J, _: brigade_core::hooks::QueueState) -> brigade_core::hooks::Admission {
        brigade_core::hooks::Admission::Reject(brigade_core::Rejection::new("closed for lunch"))
    }
}

/// A run its local pool refuses (a local layer's decision) is a failed attempt, retried
/// after the policy's backoff and dead at its last attempt, not handed back and forth with
/// the store for good.
pub async fn worker_charges_runs_its_local_pool_refuses<S: Store>(store: S) {
    let id = store
        .enqueue(
            NewJob::new("refused", json!(null)).with_options(EnqueueOptions::new().max_attempts(3)),
        )
        .await
        .expect("enqueue")
        .id;
    let pool: brigade_tokio::BoxPool<(), String> = brigade_tokio::BoxPool::builder()
        .workers(1)
        .layer(RefuseAll)
        .build()
        .expect("pool");
    let retry = Retry::builder()
        .max_attempts(u32::MAX)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .build()
        .expect("retry");
    let worker = Worker::builder(store.clone(), "refused")
        .concurrency(1)
        .poll(Duration::from_millis(20))
        .retry(retry)
        .handle_on(pool, |_: serde_json::Value, _: Delivery| async {
            Ok::<(), String>(())
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(&store, "refused", |counts| counts.dead == 1).await;
    let report = stop(&shutdown, running).await;
    assert_eq!(
        (report.retried, report.dead, report.released),
        (2, 1, 0),
        "{report:?}"
    );
    let record = job_record(&store, id).await;
    assert_eq!(record.attempt, 3);
    assert!(
        record
            .last_error
            .is_some_and(|error| error.contains("closed for lunch")),
        "the layer's reason is the job's last error"
    );
}

/// A blocking pool with less room than the worker's concurrency makes claimed jobs wait
/// for room: each runs once, none goes back to the store.
#[cfg(feature = "thread")]
pub async fn worker_waits_for_room_in_a_small_blocking_pool<S: Store>(store: S) {
    let queue = Queue::<S, u64>::new(store.clone(), "small-pool");
    queue
        .enqueue_batch((0..12).collect())
        .await
        .expect("enqueue");
    let pool: brigade_thread::BoxPool<(), String> = brigade_thread::BoxPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .expect("pool");
    let worker = Worker::builder(store.clone(), "small-pool")
        .concurrency(6)
        .handle_blocking_on(pool, |_: u64, _: Delivery| {
            std::thread::sleep(Duration::from_millis(5));
            Ok::<(), String>(())
        })
        .expect("worker");
    let (shutdown, running) = start(worker);
    wait_for(&store, "small-pool", |counts| counts.completed == 12).await;
    let report = stop(&shutdown, running).await;
    assert_eq!(
        (report.claimed, report.completed, report.released),
        (12, 12, 0),
        "{report:?}"
    );
}
