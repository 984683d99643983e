//! The contracts of brigade, each a function that checks one backend.
//!
//! Every check builds its own pools, panics with a message naming the broken contract, and
//! gives up after a generous [`PATIENCE`] rather than hang. None of them measures speed.

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::layers::{
    DeadLetterList, DeadlineAfter, DelayFirstStarts, FullQueuePolicy, RetryEvery, Units, WhenFull,
};
use super::{Backend, Behaviour, Gate, KitConfig, KitJob, Probe, Tally};
use crate::hooks::{DropReason, Layers, Middleware};
use crate::{
    ConfigError, ErrorKind, Executor, JobHandle, JobResult, Stats, SubmitError, SubmitTimeoutError,
    TrySubmitError,
};

/// Why a blocking call of the kit cannot meet [`InAsyncContext`](crate::InAsyncContext):
/// the checks call every pool from plain threads.
const OUTSIDE_ANY_RUNTIME: &str = "the kit calls pools outside any async runtime";

/// How long any wait in the kit may take before the check fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

type Handle = JobHandle<u64, String>;

fn join(handle: Handle) -> JobResult<u64, String> {
    match handle.join_timeout(PATIENCE) {
        Ok(result) => result,
        Err(handle) => panic!("job {} did not finish within {PATIENCE:?}", handle.id()),
    }
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn build<B: Backend>(backend: &B, config: KitConfig) -> B::Pool {
    build_with(backend, config, Layers::new())
}

fn build_with<B: Backend>(
    backend: &B,
    config: KitConfig,
    layers: Layers<B::Job, String>,
) -> B::Pool {
    backend
        .build(config, layers)
        .expect("the kit's configuration is valid")
}

fn with_layer<B: Backend>(
    backend: &B,
    config: KitConfig,
    layer: Arc<dyn Middleware<B::Job, String>>,
) -> B::Pool {
    build_with(backend, config, Layers::new().with_shared(layer))
}

fn submit<B: Backend>(backend: &B, pool: &B::Pool, behaviour: Behaviour) -> Handle {
    pool.submit(backend.job(KitJob::new(behaviour)))
        .expect("an open pool accepts the job")
}

fn submit_probed<B: Backend>(
    backend: &B,
    pool: &B::Pool,
    behaviour: Behaviour,
    probe: &Probe,
) -> Handle {
    pool.submit(backend.job(KitJob::new(behaviour).probed(probe)))
        .expect("an open pool accepts the job")
}

/// Occupies every worker of a fixed pool with gate jobs and waits until they all run.
fn occupy<B: Backend>(backend: &B, pool: &B::Pool, workers: usize) -> (Gate, Vec<Handle>) {
    let gate = Gate::new();
    let probe = Probe::new();
    let handles = (0..workers)
        .map(|_| submit_probed(backend, pool, Behaviour::Gate(gate.clone()), &probe))
        .collect();
    eventually("every worker starts a gate job", || {
        probe.started() == workers
    });
    (gate, handles)
}

fn quiescent<P: Executor<J>, J>(pool: &P) -> Stats {
    pool.wait_idle().expect(OUTSIDE_ANY_RUNTIME);
    let stats = pool.stats();
    assert!(stats.is_balanced(), "nothing lost: {stats:?}");
    stats
}

fn kind(result: &JobResult<u64, String>) -> Option<ErrorKind> {
    result.as_ref().err().map(crate::JobError::kind)
}

/// Every accepted job runs and its handle returns its output; the counters balance.
pub fn completes_every_job<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(4, 16));
    let producers = 4;
    let per_producer = 100u64;
    let handles: Vec<(u64, Handle)> = thread::scope(|scope| {
        let spawned: Vec<_> = (0..producers)
            .map(|producer| {
                let pool = &pool;
                scope.spawn(move || {
                    (0..per_producer)
                        .map(|i| {
                            let value = producer * 1000 + i;
                            (value, submit(backend, pool, Behaviour::Return(value)))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        spawned
            .into_iter()
            .flat_map(|producer| producer.join().expect("producer thread"))
            .collect()
    });
    for (value, handle) in handles {
        assert_eq!(
            join(handle),
            Ok(value),
            "each handle returns its own job's output"
        );
    }
    let stats = quiescent(&pool);
    assert_eq!(stats.submitted, producers * per_producer);
    assert_eq!(stats.completed, producers * per_producer);
}

/// A refused job comes back to the caller: full queue, timeout, closed pool.
pub fn hands_back_refused_jobs<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 1));
    let (gate, running) = occupy(backend, &pool, 1);
    let queued = submit(backend, &pool, Behaviour::Return(1));

    match pool.try_submit(backend.job(KitJob::new(Behaviour::Return(77)))) {
        Err(TrySubmitError::Full(job)) => assert_eq!(backend.spec(&job).value(), Some(77)),
        other => panic!("try_submit on a full queue must give the job back as Full, got {other:?}"),
    }
    let job = backend.job(KitJob::new(Behaviour::Return(78)));
    match pool.submit_timeout(job, Duration::from_millis(20)) {
        Err(SubmitTimeoutError::Timeout(job)) => assert_eq!(backend.spec(&job).value(), Some(78)),
        other => panic!("submit_timeout on a full queue must time out with the job, got {other:?}"),
    }

    gate.open();
    assert_eq!(join(queued), Ok(1));
    running
        .into_iter()
        .for_each(|handle| assert_eq!(join(handle), Ok(1)));
    let report = pool.shutdown().expect(OUTSIDE_ANY_RUNTIME);
    assert!(report.unstarted.is_empty());

    match pool.submit(backend.job(KitJob::new(Behaviour::Return(79)))) {
        Err(SubmitError::Closed(job)) => assert_eq!(backend.spec(&job).value(), Some(79)),
        other => panic!("submit after shutdown must give the job back as Closed, got {other:?}"),
    }
    match pool.try_submit(backend.job(KitJob::new(Behaviour::Return(80)))) {
        Err(TrySubmitError::Closed(job)) => assert_eq!(backend.spec(&job).value(), Some(80)),
        other => panic!("try_submit after shutdown must give the job back, got {other:?}"),
    }
    match pool.execute(backend.job(KitJob::new(Behaviour::Return(81)))) {
        Err(SubmitError::Closed(job)) => assert_eq!(backend.spec(&job).value(), Some(81)),
        other => panic!("execute after shutdown must give the job back, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!(
        stats.submitted, 2,
        "refused jobs are not counted as accepted"
    );
    assert!(stats.is_balanced(), "{stats:?}");
}

/// The queue holds at most its capacity; a fast producer is refused, not buffered.
pub fn queue_is_bounded<B: Backend>(backend: &B) {
    let capacity = 8;
    let pool = build(backend, KitConfig::fixed(1, capacity));
    let (gate, running) = occupy(backend, &pool, 1);
    let mut accepted = Vec::new();
    for i in 0..1000 {
        match pool.try_submit(backend.job(KitJob::new(Behaviour::Return(i)))) {
            Ok(handle) => accepted.push(handle),
            Err(TrySubmitError::Full(_)) => break,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!(
        accepted.len(),
        capacity,
        "the queue accepts exactly its capacity"
    );
    let stats = pool.stats();
    assert!(
        stats.queued <= capacity,
        "queued {} > capacity",
        stats.queued
    );
    gate.open();
    running.into_iter().chain(accepted).for_each(|handle| {
        join(handle).expect("job runs once there is room");
    });
    quiescent(&pool);
}

/// A panicking job is an outcome with its message; the pool keeps its workers.
pub fn contains_panics<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 32));
    let panics: Vec<_> = (0..10)
        .map(|i| {
            submit(
                backend,
                &pool,
                Behaviour::Panic(format!("job {i} exploded")),
            )
        })
        .collect();
    let fine: Vec<_> = (0..10)
        .map(|i| submit(backend, &pool, Behaviour::Return(i)))
        .collect();
    for (i, handle) in panics.into_iter().enumerate() {
        let error = join(handle).expect_err("a panic is an error");
        assert!(error.is_panic(), "{error:?}");
        assert_eq!(
            error.panic_message(),
            Some(format!("job {i} exploded").as_str())
        );
    }
    for (i, handle) in fine.into_iter().enumerate() {
        assert_eq!(join(handle), Ok(i as u64));
    }
    let stats = quiescent(&pool);
    assert_eq!(stats.panicked, 10);
    assert_eq!(stats.workers, 2, "panics cost no worker");
}

/// A job's own error comes back inside the opaque error, with its attempt count.
pub fn reports_failures<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 4));
    let error = join(submit(backend, &pool, Behaviour::Fail("disk full".into())))
        .expect_err("a failing job fails");
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert_eq!(error.error().map(String::as_str), Some("disk full"));
    assert_eq!(error.attempts(), 1);
    assert_eq!(quiescent(&pool).failed, 1);
}

/// A job cancelled while queued never runs and ends cancelled.
pub fn cancels_before_start<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 4));
    let (gate, running) = occupy(backend, &pool, 1);
    let probe = Probe::new();
    let queued = submit_probed(backend, &pool, Behaviour::Return(1), &probe);
    queued.cancel();
    gate.open();
    let error = join(queued).expect_err("a cancelled job does not complete");
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(
        probe.started(),
        0,
        "a job cancelled before it started never runs"
    );
    running.into_iter().for_each(|handle| {
        join(handle).expect("gate job");
    });
    assert_eq!(quiescent(&pool).cancelled, 1);
}

/// Cancelling a running job cancels its token; a job that gives up ends cancelled.
pub fn cancels_running_jobs<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 4));
    let probe = Probe::new();
    let running = submit_probed(backend, &pool, Behaviour::UntilCancelled, &probe);
    eventually("the job starts", || probe.started() == 1);
    running.cancel();
    let error = join(running).expect_err("the job gave up");
    assert!(error.is_cancelled(), "{error:?}");
    assert_eq!(error.error().map(String::as_str), Some("cancelled"));
    assert_eq!(quiescent(&pool).cancelled, 1);
}

/// Dropping a handle neither cancels its job nor loses its count.
pub fn dropping_a_handle_keeps_the_job<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 4));
    let probe = Probe::new();
    drop(submit_probed(
        backend,
        &pool,
        Behaviour::Sleep(Duration::from_millis(10)),
        &probe,
    ));
    let stats = quiescent(&pool);
    assert_eq!(probe.started(), 1);
    assert_eq!(stats.completed, 1);
}

/// `execute` runs a job without a handle and counts its outcome.
pub fn executes_without_a_handle<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 8));
    let probe = Probe::new();
    for i in 0..20 {
        pool.execute(backend.job(KitJob::new(Behaviour::Return(i)).probed(&probe)))
            .expect("an open pool accepts the job");
    }
    pool.execute(backend.job(KitJob::new(Behaviour::Fail("no".into()))))
        .expect("accepted");
    let stats = quiescent(&pool);
    assert_eq!(probe.started(), 20);
    assert_eq!((stats.completed, stats.failed), (20, 1));
}

/// `wait_idle` returns only once nothing is queued or running, and the pool stays open.
pub fn waits_until_idle<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 64));
    let probe = Probe::new();
    for _ in 0..40 {
        drop(submit_probed(
            backend,
            &pool,
            Behaviour::Sleep(Duration::from_millis(1)),
            &probe,
        ));
    }
    pool.wait_idle().expect(OUTSIDE_ANY_RUNTIME);
    let stats = pool.stats();
    assert_eq!(
        (stats.queued, stats.busy, stats.delayed),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.completed, 40);
    assert_eq!(
        join(submit(backend, &pool, Behaviour::Return(5))),
        Ok(5),
        "still open"
    );
}

/// A graceful shutdown runs everything accepted and reports nothing handed back.
pub fn shutdown_runs_everything<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 64));
    let handles: Vec<_> = (0..50)
        .map(|_| submit(backend, &pool, Behaviour::Sleep(Duration::from_millis(1))))
        .collect();
    let report = pool.shutdown().expect(OUTSIDE_ANY_RUNTIME);
    assert!(report.is_clean(), "{report:?}");
    handles
        .into_iter()
        .for_each(|handle| assert_eq!(join(handle), Ok(0)));
    let stats = pool.stats();
    assert_eq!(stats.completed, 50);
    assert!(stats.is_balanced(), "{stats:?}");
    assert!(
        pool.shutdown().expect(OUTSIDE_ANY_RUNTIME).is_clean(),
        "a second shutdown is harmless"
    );
}

/// At a shutdown deadline, running jobs are cancelled and unstarted ones handed back.
pub fn shutdown_deadline_cancels_and_hands_back<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 16));
    let probe = Probe::new();
    let running: Vec<_> = (0..2)
        .map(|_| submit_probed(backend, &pool, Behaviour::UntilCancelled, &probe))
        .collect();
    eventually("both workers run", || probe.started() == 2);
    let queued: Vec<_> = (0..5)
        .map(|i| submit(backend, &pool, Behaviour::Return(i)))
        .collect();

    let report = pool
        .shutdown_timeout(Duration::from_millis(50))
        .expect(OUTSIDE_ANY_RUNTIME);
    assert!(report.deadline_passed, "{report:?}");
    assert_eq!(report.cancelled, 2, "{report:?}");
    let mut returned: Vec<_> = report
        .unstarted
        .iter()
        .filter_map(|job| backend.spec(job).value())
        .collect();
    returned.sort_unstable();
    assert_eq!(
        returned,
        vec![0, 1, 2, 3, 4],
        "unstarted jobs come back intact"
    );

    for handle in running {
        assert_eq!(kind(&join(handle)), Some(ErrorKind::Cancelled));
    }
    for handle in queued {
        assert_eq!(kind(&join(handle)), Some(ErrorKind::Returned));
    }
    let stats = pool.stats();
    assert_eq!((stats.cancelled, stats.returned), (2, 5), "{stats:?}");
    assert!(stats.is_balanced(), "{stats:?}");
}

/// An immediate shutdown hands back every unstarted job at once.
pub fn shutdown_now_hands_back_unstarted<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(1, 16));
    let probe = Probe::new();
    let running = submit_probed(backend, &pool, Behaviour::UntilCancelled, &probe);
    eventually("the worker runs", || probe.started() == 1);
    let queued: Vec<_> = (0..10)
        .map(|i| submit(backend, &pool, Behaviour::Return(i)))
        .collect();
    let report = pool.shutdown_now().expect(OUTSIDE_ANY_RUNTIME);
    assert_eq!(report.unstarted.len(), 10, "{report:?}");
    assert_eq!(report.cancelled, 1, "{report:?}");
    assert_eq!(kind(&join(running)), Some(ErrorKind::Cancelled));
    for handle in queued {
        assert_eq!(kind(&join(handle)), Some(ErrorKind::Returned));
    }
    let stats = pool.stats();
    assert_eq!(stats.returned, 10);
    assert!(stats.is_balanced(), "{stats:?}");
}

/// Dropping a pool shuts it down gracefully: every accepted job still runs.
pub fn dropping_the_pool_drains_it<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(2, 64));
    let handles: Vec<_> = (0..30)
        .map(|i| submit(backend, &pool, Behaviour::Return(i)))
        .collect();
    drop(pool);
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join(handle), Ok(i as u64));
    }
}

/// Settings a pool cannot work with are typed errors, never panics.
pub fn rejects_bad_configuration<B: Backend>(backend: &B) {
    let bad = [
        (KitConfig::fixed(0, 4), "zero workers"),
        (
            KitConfig {
                min_workers: 3,
                max_workers: 2,
                ..KitConfig::fixed(2, 4)
            },
            "min above max",
        ),
        (KitConfig::fixed(2, 0), "zero capacity"),
    ];
    for (config, what) in bad {
        assert!(
            backend.build(config, Layers::new()).is_err(),
            "{what} must be a configuration error"
        );
    }
    let pool = build(backend, KitConfig::fixed(1, 4));
    assert!(
        matches!(pool.resize(3, 2), Err(ConfigError::MinAboveMax { .. })),
        "resize validates"
    );
    assert!(
        pool.resize(0, 0).is_err(),
        "resize to no workers is an error"
    );
}

/// An elastic pool grows while work outruns its workers and retires idle workers.
pub fn grows_and_shrinks<B: Backend>(backend: &B) {
    let config = KitConfig {
        min_workers: 1,
        max_workers: 4,
        queue_capacity: 64,
        keep_alive: Duration::from_millis(50),
    };
    let pool = build(backend, config);
    let gate = Gate::new();
    let handles: Vec<_> = (0..16)
        .map(|_| submit(backend, &pool, Behaviour::Gate(gate.clone())))
        .collect();
    eventually("the pool grows to its maximum", || {
        pool.stats().workers == 4
    });
    gate.open();
    handles.into_iter().for_each(|handle| {
        join(handle).expect("gate job");
    });
    eventually("idle workers retire down to the minimum", || {
        pool.stats().workers == 1
    });
    quiescent(&pool);
}

/// The elastic range changes at run time.
pub fn resizes_at_run_time<B: Backend>(backend: &B) {
    let config = KitConfig {
        keep_alive: Duration::from_millis(50),
        ..KitConfig::fixed(1, 16)
    };
    let pool = build(backend, config);
    pool.resize(3, 3).expect("a valid range");
    eventually("the pool grows to the new minimum", || {
        pool.stats().workers == 3
    });
    let probe = Probe::new();
    let gate = Gate::new();
    let handles: Vec<_> = (0..3)
        .map(|_| submit_probed(backend, &pool, Behaviour::Gate(gate.clone()), &probe))
        .collect();
    eventually("three jobs run at once", || probe.running() == 3);
    gate.open();
    handles.into_iter().for_each(|handle| {
        join(handle).expect("gate job");
    });
    pool.resize(1, 1).expect("a valid range");
    eventually("the pool shrinks to the new maximum", || {
        pool.stats().workers == 1
    });
    quiescent(&pool);
}

/// Under mixed outcomes, cancels and an immediate shutdown, each job ends exactly once and
/// the handles agree with the counters.
pub fn accounts_for_every_job<B: Backend>(backend: &B) {
    let pool = build(backend, KitConfig::fixed(3, 32));
    let mut handles = Vec::new();
    for i in 0..450u64 {
        let behaviour = match i % 6 {
            0 => Behaviour::Return(i),
            1 => Behaviour::Fail("failed".into()),
            2 => Behaviour::Panic("panicked".into()),
            3 => Behaviour::Sleep(Duration::from_micros(200)),
            4 => Behaviour::UntilCancelled,
            _ => Behaviour::Return(i),
        };
        let handle = submit(backend, &pool, behaviour);
        if i % 6 == 4 || i % 7 == 0 {
            handle.cancel();
        }
        handles.push(handle);
    }
    let report = pool.shutdown_now().expect(OUTSIDE_ANY_RUNTIME);
    let mut tally = Tally::new();
    for handle in handles {
        tally.record(&join(handle));
    }
    let allowed = [
        None,
        Some(ErrorKind::Failed),
        Some(ErrorKind::Panicked),
        Some(ErrorKind::Cancelled),
        Some(ErrorKind::Returned),
    ];
    if let Err(other) = tally.only_kinds(&allowed) {
        panic!("no middleware, yet a job ended {other:?}");
    }
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    tally.assert_agrees_with(&stats, "accounts_for_every_job");
    assert_eq!(report.unstarted.len() as u64, stats.returned);
}

/// An after-run "retry at T" runs the job again with the next attempt number.
pub fn hook_retries_failed_runs<B: Backend>(backend: &B) {
    let layer = Arc::new(RetryEvery {
        backoff: Duration::from_millis(5),
        max_attempts: 3,
    });
    let pool = with_layer(backend, KitConfig::fixed(1, 4), layer);
    assert_eq!(
        join(submit(backend, &pool, Behaviour::FailUntilAttempt(3))),
        Ok(3)
    );
    let error = join(submit(backend, &pool, Behaviour::FailUntilAttempt(9)))
        .expect_err("three attempts are not enough");
    assert_eq!(error.attempts(), 3);
    assert_eq!(error.error().map(String::as_str), Some("attempt 3 failed"));
    let stats = quiescent(&pool);
    assert_eq!((stats.retried, stats.completed, stats.failed), (4, 1, 1));
}

/// An after-run "dead-letter" hands the intact job to the layer's sink.
pub fn hook_dead_letters<B: Backend>(backend: &B) {
    let layer = Arc::new(DeadLetterList {
        letters: Mutex::new(Vec::new()),
    });
    let pool = with_layer(backend, KitConfig::fixed(1, 4), layer.clone());
    let error =
        join(submit(backend, &pool, Behaviour::Fail("bounced".into()))).expect_err("dead-lettered");
    assert!(error.is_dead_lettered(), "{error:?}");
    assert_eq!(error.error().map(String::as_str), Some("bounced"));
    let stats = quiescent(&pool);
    assert_eq!(stats.dead_lettered, 1);
    let letters = layer.letters.lock().expect("not poisoned");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, "bounced");
    assert_eq!(letters[0].attempts, 1);
    assert!(
        matches!(backend.spec(&letters[0].job).behaviour(), Behaviour::Fail(e) if e == "bounced")
    );
}

/// Admission policies: reject gives the job back, drop newest and evict oldest count the
/// dropped job and hand it to the layer.
pub fn hook_admission_policies<B: Backend>(backend: &B) {
    for when_full in [
        WhenFull::Reject,
        WhenFull::DropNewest,
        WhenFull::EvictOldest,
    ] {
        let layer = Arc::new(FullQueuePolicy {
            when_full,
            dropped: Mutex::new(Vec::new()),
        });
        let pool = with_layer(backend, KitConfig::fixed(1, 1), layer.clone());
        let (gate, running) = occupy(backend, &pool, 1);
        let oldest = submit(backend, &pool, Behaviour::Return(1));
        let newest = pool.submit(backend.job(KitJob::new(Behaviour::Return(2))));
        gate.open();
        running.into_iter().for_each(|handle| {
            join(handle).expect("gate job");
        });
        let stats = quiescent(&pool);
        let dropped = layer.dropped.lock().expect("not poisoned");
        match when_full {
            WhenFull::Reject => {
                match newest {
                    Err(SubmitError::Rejected(job, reason)) => {
                        assert_eq!(backend.spec(&job).value(), Some(2));
                        assert_eq!(reason.reason(), "queue full");
                    }
                    other => panic!("a rejecting policy gives the job back, got {other:?}"),
                }
                assert_eq!(join(oldest), Ok(1));
                assert_eq!((stats.rejected, stats.dropped), (1, 0));
            }
            WhenFull::DropNewest => {
                let newest = newest.expect("a dropped job was accepted, then dropped");
                assert_eq!(kind(&join(newest)), Some(ErrorKind::Dropped));
                assert_eq!(join(oldest), Ok(1));
                assert_eq!(stats.dropped, 1);
                assert_eq!(dropped.len(), 1);
                assert_eq!(backend.spec(&dropped[0].0).value(), Some(2));
                assert_eq!(dropped[0].1, DropReason::Newest);
            }
            WhenFull::EvictOldest => {
                let newest = newest.expect("the newest job was accepted");
                assert_eq!(kind(&join(oldest)), Some(ErrorKind::Dropped));
                assert_eq!(join(newest), Ok(2));
                assert_eq!(stats.dropped, 1);
                assert_eq!(dropped.len(), 1);
                assert_eq!(backend.spec(&dropped[0].0).value(), Some(1));
                assert_eq!(dropped[0].1, DropReason::Evicted);
            }
        }
    }
}

/// A before-start "not before T" delays the job without losing it.
pub fn hook_delays_starts<B: Backend>(backend: &B) {
    let layer = Arc::new(DelayFirstStarts {
        defer: 3,
        delay: Duration::from_millis(20),
        asked: AtomicUsize::new(0),
    });
    let pool = with_layer(backend, KitConfig::fixed(1, 8), layer.clone());
    let start = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|i| submit(backend, &pool, Behaviour::Return(i)))
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join(handle), Ok(i as u64));
    }
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "deferred jobs do not start before their time"
    );
    assert_eq!(layer.asked.load(std::sync::atomic::Ordering::SeqCst), 6);
    quiescent(&pool);
}

/// A before-start "when capacity frees" holds jobs back until a run ends.
pub fn hook_waits_for_capacity<B: Backend>(backend: &B) {
    let layer = Arc::new(Units::new(1));
    let pool = with_layer(backend, KitConfig::fixed(3, 16), layer.clone());
    let probe = Probe::new();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            submit_probed(
                backend,
                &pool,
                Behaviour::Sleep(Duration::from_millis(5)),
                &probe,
            )
        })
        .collect();
    handles
        .into_iter()
        .for_each(|handle| assert_eq!(join(handle), Ok(0)));
    assert_eq!(probe.max_running(), 1, "one unit, one run at a time");
    assert_eq!(
        layer.used.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "units released"
    );
    quiescent(&pool);
}

/// A deadline cancels the run's token; a run that gives up after it ends timed out.
pub fn hook_deadline_times_out<B: Backend>(backend: &B) {
    let layer = Arc::new(DeadlineAfter {
        after: Duration::from_millis(20),
    });
    let pool = with_layer(backend, KitConfig::fixed(1, 4), layer);
    let error = join(submit(backend, &pool, Behaviour::UntilCancelled)).expect_err("timed out");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(join(submit(backend, &pool, Behaviour::Return(3))), Ok(3));
    let stats = quiescent(&pool);
    assert_eq!((stats.timed_out, stats.completed), (1, 1));
}

/// Every accepted job is counted once even when many producers race a shutdown.
pub fn submit_racing_shutdown_loses_nothing<B: Backend>(backend: &B) {
    for _ in 0..20 {
        let pool = build(backend, KitConfig::fixed(2, 4));
        let accepted = Mutex::new(Vec::new());
        let refused = AtomicUsize::new(0);
        thread::scope(|scope| {
            for producer in 0..3u64 {
                let (pool, accepted, refused) = (&pool, &accepted, &refused);
                scope.spawn(move || {
                    for i in 0..50 {
                        match pool
                            .submit(backend.job(KitJob::new(Behaviour::Return(producer * 100 + i))))
                        {
                            Ok(handle) => accepted.lock().expect("not poisoned").push(handle),
                            Err(SubmitError::Closed(_)) => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(other) => panic!("unexpected refusal {other:?}"),
                        }
                    }
                });
            }
            thread::sleep(Duration::from_micros(300));
            pool.shutdown().expect(OUTSIDE_ANY_RUNTIME);
        });
        let accepted = accepted.into_inner().expect("not poisoned");
        let mut ids = HashSet::new();
        for handle in accepted {
            assert!(ids.insert(handle.id()), "ids are unique");
            join(handle).expect("an accepted job runs during a graceful shutdown");
        }
        let stats = pool.stats();
        assert_eq!(stats.submitted, ids.len() as u64);
        assert_eq!(
            ids.len() + refused.load(std::sync::atomic::Ordering::SeqCst),
            150,
            "every job was accepted or handed back"
        );
        assert!(stats.is_balanced(), "{stats:?}");
    }
}
