//! The middleware hooks driven by the thread pool, with tiny middlewares written here.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_core::hooks::{
    Admission, AfterRun, DeadLetter, DropReason, Middleware, QueueState, RunReport, Start,
};
use brigade_core::{BoxJob, CancellationToken, ErrorKind, Job, JobContext, Rejection, SubmitError};
use brigade_thread::ThreadPool;
use common::{PATIENCE, eventually};

type Log = Arc<Mutex<Vec<(u64, u32, Instant, bool)>>>;

/// A test job: fails its first `fail_first` attempts, may hold a gate, panic or wait for
/// cancellation, and logs `(value, attempt, start, token cancelled at the start)` of each
/// run.
#[derive(Default)]
struct Spec {
    value: u64,
    fail_first: u32,
    gate: Option<CancellationToken>,
    wait_for_cancel: bool,
    panic: bool,
    log: Option<Log>,
}

impl Spec {
    fn new(value: u64) -> Self {
        Spec {
            value,
            ..Default::default()
        }
    }
    fn failing(mut self, times: u32) -> Self {
        self.fail_first = times;
        self
    }
    fn logged(mut self, log: &Log) -> Self {
        self.log = Some(log.clone());
        self
    }
    fn gated(mut self, gate: &CancellationToken) -> Self {
        self.gate = Some(gate.clone());
        self
    }
}

impl Job for Spec {
    type Output = u64;
    type Error = String;

    fn run(&mut self, cx: &JobContext) -> Result<u64, String> {
        if let Some(log) = &self.log {
            log.lock()
                .unwrap()
                .push((self.value, cx.attempt(), Instant::now(), cx.is_cancelled()));
        }
        if let Some(gate) = &self.gate {
            gate.wait_timeout(PATIENCE);
        }
        if self.wait_for_cancel {
            cx.token().wait_timeout(PATIENCE);
            return Err("stopped".into());
        }
        if self.panic {
            panic!("spec {} panicked", self.value);
        }
        if cx.attempt() <= self.fail_first {
            return Err(format!("attempt {} failed", cx.attempt()));
        }
        Ok(self.value)
    }
}

fn pool_with(
    layer: impl Middleware<Spec, String>,
    workers: usize,
    capacity: usize,
) -> ThreadPool<Spec> {
    ThreadPool::builder()
        .name("hooks-test")
        .workers(workers)
        .queue_capacity(capacity)
        .layer(layer)
        .build()
        .unwrap()
}

/// Retries failed runs `backoff` later, up to `attempts` runs in all.
struct Retry {
    attempts: u32,
    backoff: Duration,
}

impl Middleware<Spec, String> for Retry {
    fn after_run(&self, _: &Spec, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        if !run.outcome.is_success() && run.attempt < self.attempts {
            AfterRun::RetryAt(now + self.backoff)
        } else {
            AfterRun::Done
        }
    }
}

#[test]
fn retry_runs_again_later_with_the_next_attempt_without_parking_a_worker() {
    let pool = pool_with(
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(400),
        },
        1,
        8,
    );
    let log = Log::default();
    let flaky = pool.submit(Spec::new(1).failing(2).logged(&log)).unwrap();
    eventually("the first attempt ran", || !log.lock().unwrap().is_empty());
    // One worker: this job runs while the flaky one waits out its backoff.
    let quick = pool.submit(Spec::new(2).logged(&log)).unwrap();
    assert_eq!(quick.join(), Ok(2));
    assert!(!flaky.is_finished(), "still waiting to run again");
    assert_eq!(pool.stats().delayed, 1);
    assert_eq!(flaky.join(), Ok(1));
    let log = log.lock().unwrap();
    let attempts: Vec<u32> = log
        .iter()
        .filter(|(v, ..)| *v == 1)
        .map(|(_, a, ..)| *a)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let starts: Vec<Instant> = log
        .iter()
        .filter(|(v, ..)| *v == 1)
        .map(|(_, _, t, _)| *t)
        .collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(400)),
        "backoff kept"
    );
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(
        (stats.retried, stats.completed, stats.delayed),
        (2, 2, 0),
        "{stats:?}"
    );
}

#[test]
fn retries_exhausted_end_failed_with_every_attempt_counted() {
    let pool = pool_with(
        Retry {
            attempts: 3,
            backoff: Duration::from_millis(1),
        },
        2,
        8,
    );
    let error = pool
        .submit(Spec::new(1).failing(10))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert_eq!(error.attempts(), 3);
    assert_eq!(error.error().map(String::as_str), Some("attempt 3 failed"));
}

#[test]
fn retries_re_enter_even_when_the_queue_is_full() {
    let pool = pool_with(
        Retry {
            attempts: 2,
            backoff: Duration::from_millis(20),
        },
        1,
        1,
    );
    let log = Log::default();
    let flaky = pool.submit(Spec::new(1).failing(1).logged(&log)).unwrap();
    eventually("the first attempt failed", || pool.stats().delayed == 1);
    let gate = CancellationToken::new();
    let holder = pool.submit(Spec::new(2).gated(&gate)).unwrap();
    eventually("the worker is held", || {
        pool.stats().queued == 0 && pool.stats().busy == 1
    });
    let queued = pool.submit(Spec::new(3)).unwrap();
    // The ready queue (capacity 1) is full; the retry still comes back at its time.
    eventually("the retry re-entered", || {
        let stats = pool.stats();
        stats.delayed == 0 && stats.queued == 2
    });
    gate.cancel();
    assert_eq!(
        (flaky.join(), holder.join(), queued.join()),
        (Ok(1), Ok(2), Ok(3))
    );
}

#[test]
fn graceful_shutdown_waits_for_delayed_retries() {
    let pool = pool_with(
        Retry {
            attempts: 2,
            backoff: Duration::from_millis(100),
        },
        1,
        8,
    );
    let flaky = pool.submit(Spec::new(5).failing(1)).unwrap();
    eventually("waiting to retry", || pool.stats().delayed == 1);
    let report = pool.shutdown();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(flaky.join(), Ok(5));
}

#[test]
fn shutdown_now_hands_back_delayed_retries() {
    let pool = pool_with(
        Retry {
            attempts: 2,
            backoff: Duration::from_secs(30),
        },
        1,
        8,
    );
    let flaky = pool.submit(Spec::new(5).failing(1)).unwrap();
    eventually("waiting to retry", || pool.stats().delayed == 1);
    let started = Instant::now();
    let report = pool.shutdown_now();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not wait for the backoff"
    );
    assert_eq!(report.unstarted.len(), 1);
    assert_eq!(report.unstarted[0].value, 5);
    let error = flaky.join().unwrap_err();
    assert!(error.is_returned());
    assert_eq!(error.attempts(), 1);
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.retried), (1, 1));
    assert!(stats.is_balanced());
}

/// Defers the first start of jobs whose value is odd by `delay`.
struct DeferOdd {
    delay: Duration,
    deferred: Mutex<HashSet<u64>>,
}

impl Middleware<Spec, String> for DeferOdd {
    fn before_start(&self, job: &Spec, now: Instant) -> Start {
        if job.value % 2 == 1 && self.deferred.lock().unwrap().insert(job.value) {
            Start::NotBefore(now + self.delay)
        } else {
            Start::Now
        }
    }
}

#[test]
fn not_before_delays_a_start_without_holding_a_worker() {
    let delay = Duration::from_millis(400);
    let pool = pool_with(
        DeferOdd {
            delay,
            deferred: Mutex::default(),
        },
        1,
        8,
    );
    let log = Log::default();
    let submitted = Instant::now();
    let deferred = pool.submit(Spec::new(1).logged(&log)).unwrap();
    let prompt = pool.submit(Spec::new(2).logged(&log)).unwrap();
    assert_eq!(prompt.join(), Ok(2));
    assert!(!deferred.is_finished());
    assert_eq!(deferred.join(), Ok(1));
    let log = log.lock().unwrap();
    assert_eq!(log.iter().map(|(v, ..)| *v).collect::<Vec<_>>(), [2, 1]);
    assert!(log[1].2 - submitted >= delay);
    assert_eq!(log[1].1, 1, "a deferred start is not a new attempt");
}

/// Dead-letters failed runs into a list, or refuses them when `accept` is false.
#[derive(Default)]
struct DeadLetters {
    accept: bool,
    letters: Mutex<Vec<DeadLetter<Spec>>>,
}

impl Middleware<Spec, String> for Arc<DeadLetters> {
    fn after_run(&self, _: &Spec, run: &RunReport<'_, String>, _: Instant) -> AfterRun {
        if run.outcome.is_success() {
            AfterRun::Done
        } else {
            AfterRun::DeadLetter
        }
    }

    fn dead_letter(&self, letter: DeadLetter<Spec>) -> Result<(), DeadLetter<Spec>> {
        if self.accept {
            self.letters.lock().unwrap().push(letter);
            Ok(())
        } else {
            Err(letter)
        }
    }
}

#[test]
fn dead_letter_after_the_last_retry_keeps_the_job_and_its_story() {
    let sink = Arc::new(DeadLetters {
        accept: true,
        ..Default::default()
    });
    let pool: ThreadPool<Spec> = ThreadPool::builder()
        .workers(2)
        .layer(Retry {
            attempts: 3,
            backoff: Duration::from_millis(5),
        })
        .layer(sink.clone())
        .build()
        .unwrap();
    let error = pool
        .submit(Spec::new(9).failing(10))
        .unwrap()
        .join()
        .unwrap_err();
    assert!(error.is_dead_lettered(), "{error:?}");
    assert_eq!(error.error().map(String::as_str), Some("attempt 3 failed"));
    assert_eq!(error.attempts(), 3);
    assert_eq!(
        pool.submit(Spec::new(1)).unwrap().join(),
        Ok(1),
        "successes are not letters"
    );
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(
        (stats.dead_lettered, stats.retried, stats.completed),
        (1, 2, 1)
    );
    let letters = sink.letters.lock().unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!((letter.job.value, letter.attempts), (9, 3));
    assert_eq!(letter.error, "attempt 3 failed");
    assert!(letter.first_failure <= letter.last_failure);
    assert!(
        letter
            .last_failure
            .duration_since(letter.first_failure)
            .unwrap()
            >= Duration::from_millis(10)
    );
}

#[test]
fn a_dead_lettered_panic_keeps_its_message() {
    let sink = Arc::new(DeadLetters {
        accept: true,
        ..Default::default()
    });
    let pool = pool_with(sink.clone(), 1, 4);
    let error = pool
        .submit(Spec {
            panic: true,
            ..Spec::new(4)
        })
        .unwrap()
        .join()
        .unwrap_err();
    assert!(error.is_dead_lettered(), "{error:?}");
    assert_eq!(error.panic_message(), Some("spec 4 panicked"));
    pool.wait_idle();
    assert_eq!((pool.stats().dead_lettered, pool.stats().panicked), (1, 0));
    assert_eq!(sink.letters.lock().unwrap()[0].error, "spec 4 panicked");
}

#[test]
fn a_refused_dead_letter_ends_failed() {
    let sink = Arc::new(DeadLetters::default());
    let pool = pool_with(sink, 1, 4);
    let error = pool
        .submit(Spec::new(9).failing(1))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    pool.wait_idle();
    assert_eq!((pool.stats().failed, pool.stats().dead_lettered), (1, 0));
}

/// Admission by job value: 13 is rejected; when full, `policy` decides.
struct Admit {
    policy: Admission,
    dropped: Mutex<Vec<(u64, DropReason)>>,
}

impl Middleware<Spec, String> for Arc<Admit> {
    fn admit(&self, job: &Spec, queue: QueueState) -> Admission {
        if job.value == 13 {
            Admission::Reject(Rejection::new("unlucky"))
        } else if queue.is_full() {
            self.policy.clone()
        } else {
            Admission::Accept
        }
    }

    fn dropped(&self, job: Spec, reason: DropReason) {
        self.dropped.lock().unwrap().push((job.value, reason));
    }
}

fn admission_pool(policy: Admission) -> (ThreadPool<Spec>, Arc<Admit>, CancellationToken) {
    let admit = Arc::new(Admit {
        policy,
        dropped: Mutex::default(),
    });
    let pool = pool_with(admit.clone(), 1, 1);
    let gate = CancellationToken::new();
    std::mem::forget(pool.submit(Spec::new(0).gated(&gate)).unwrap());
    eventually("the worker is held", || {
        pool.stats().busy == 1 && pool.stats().queued == 0
    });
    (pool, admit, gate)
}

#[test]
fn admission_reject_hands_the_job_back_and_counts_it() {
    let (pool, _, gate) = admission_pool(Admission::Accept);
    match pool.submit(Spec::new(13)) {
        Err(SubmitError::Rejected(job, reason)) => {
            assert_eq!(job.value, 13);
            assert_eq!(reason.reason(), "unlucky");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(pool.execute(Spec::new(13)).is_err());
    assert!(pool.try_submit(Spec::new(13)).is_err());
    gate.cancel();
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.rejected, stats.submitted), (3, 1), "{stats:?}");
    assert!(stats.is_balanced());
}

#[test]
fn admission_drop_newest_resolves_the_new_handle_dropped() {
    let (pool, admit, gate) = admission_pool(Admission::DropNewest);
    let oldest = pool.submit(Spec::new(1)).unwrap();
    let newest = pool.submit(Spec::new(2)).unwrap();
    assert_eq!(newest.join().unwrap_err().kind(), ErrorKind::Dropped);
    pool.execute(Spec::new(3)).unwrap();
    gate.cancel();
    assert_eq!(oldest.join(), Ok(1));
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.dropped, stats.completed), (2, 2));
    assert!(stats.is_balanced());
    assert_eq!(
        *admit.dropped.lock().unwrap(),
        [(2, DropReason::Newest), (3, DropReason::Newest)]
    );
}

#[test]
fn admission_evict_oldest_drops_the_queued_job_for_the_new_one() {
    let (pool, admit, gate) = admission_pool(Admission::EvictOldest);
    let oldest = pool.submit(Spec::new(1)).unwrap();
    let newest = pool.submit(Spec::new(2)).unwrap();
    assert_eq!(oldest.join().unwrap_err().kind(), ErrorKind::Dropped);
    gate.cancel();
    assert_eq!(newest.join(), Ok(2));
    pool.wait_idle();
    assert_eq!(pool.stats().dropped, 1);
    assert!(pool.stats().is_balanced());
    assert_eq!(*admit.dropped.lock().unwrap(), [(1, DropReason::Evicted)]);
}

/// One unit of capacity: a job starts only while it holds the unit.
#[derive(Default)]
struct OneUnit {
    taken: AtomicBool,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Middleware<Spec, String> for Arc<OneUnit> {
    fn before_start(&self, _: &Spec, _: Instant) -> Start {
        if self.taken.swap(true, Ordering::SeqCst) {
            Start::WhenCapacityFrees
        } else {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            Start::Now
        }
    }

    fn release(&self, _: &Spec) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.taken.store(false, Ordering::SeqCst);
    }
}

#[test]
fn when_capacity_frees_waits_without_parking_workers() {
    let unit = Arc::new(OneUnit::default());
    let pool = pool_with(unit.clone(), 4, 32);
    let log = Log::default();
    let handles: Vec<_> = (0..12)
        .map(|i| pool.submit(Spec::new(i).logged(&log)).unwrap())
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(), Ok(i as u64));
    }
    assert_eq!(unit.peak.load(Ordering::SeqCst), 1);
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.delayed), (12, 0));
}

/// Every run gets `limit` from its start.
struct Deadline(Duration);

impl Middleware<Spec, String> for Deadline {
    fn deadline(&self, _: &Spec, started: Instant) -> Option<Instant> {
        Some(started + self.0)
    }
}

#[test]
fn a_run_past_its_deadline_is_cancelled_and_times_out() {
    let pool = pool_with(Deadline(Duration::from_millis(50)), 2, 8);
    let slow = Spec {
        wait_for_cancel: true,
        ..Spec::new(1)
    };
    let started = Instant::now();
    let error = pool.submit(slow).unwrap().join().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.error().map(String::as_str), Some("stopped"));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(pool.submit(Spec::new(2)).unwrap().join(), Ok(2));
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.timed_out, stats.completed), (1, 1));
}

#[test]
fn a_retry_after_a_timeout_gets_a_fresh_deadline() {
    let limit = Duration::from_millis(40);
    let pool: ThreadPool<Spec> = ThreadPool::builder()
        .workers(1)
        .layer(Deadline(limit))
        .layer(Retry {
            attempts: 2,
            backoff: Duration::from_millis(1),
        })
        .build()
        .unwrap();
    let log = Log::default();
    let slow = Spec {
        wait_for_cancel: true,
        ..Spec::new(4)
    }
    .logged(&log);
    let submitted = Instant::now();
    let error = pool.submit(slow).unwrap().join().unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(error.attempts(), 2);
    // Had the first deadline cancelled the job's own token, the retry would have started
    // with its token cancelled, and stopped at once instead of at its own deadline.
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(!log[1].3, "the retry started with its token cancelled");
    assert!(submitted.elapsed() >= limit * 2);
}

/// Panics in `before_start` for value 66, in `after_run` for value 67, and in its
/// dead-letter sink for value 68.
struct Faulty;

impl Middleware<Spec, String> for Faulty {
    fn before_start(&self, job: &Spec, _: Instant) -> Start {
        assert!(job.value != 66, "before_start exploded");
        Start::Now
    }

    fn after_run(&self, job: &Spec, _: &RunReport<'_, String>, _: Instant) -> AfterRun {
        assert!(job.value != 67, "after_run exploded");
        if job.value == 68 {
            AfterRun::DeadLetter
        } else {
            AfterRun::Done
        }
    }

    fn dead_letter(&self, _: DeadLetter<Spec>) -> Result<(), DeadLetter<Spec>> {
        panic!("the dead-letter sink exploded");
    }
}

#[test]
fn a_panicking_hook_costs_no_worker_no_accounting_and_no_job() {
    let pool = pool_with(Faulty, 1, 8);
    // Before the start: the job never ran, so it is handed back and kept for the report.
    let before = pool.submit(Spec::new(66)).unwrap().join().unwrap_err();
    assert!(before.is_returned(), "{before:?}");
    // After the run: the policy has no say; the job ends with its own outcome.
    assert_eq!(pool.submit(Spec::new(67)).unwrap().join(), Ok(67));
    let sink = pool
        .submit(Spec::new(68).failing(1))
        .unwrap()
        .join()
        .unwrap_err();
    assert_eq!(sink.kind(), ErrorKind::Failed, "{sink:?}");
    assert_eq!(pool.submit(Spec::new(1)).unwrap().join(), Ok(1));
    // An uncounted job would make `wait_idle`, and the pool's drop, wait forever.
    let deadline = Instant::now() + PATIENCE;
    while pool.stats().in_flight() != 0 {
        if Instant::now() > deadline {
            let stats = pool.stats();
            std::mem::forget(pool);
            panic!("a job was never counted: {stats:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.completed, stats.failed, stats.workers),
        (1, 2, 1, 1),
        "{stats:?}"
    );
    assert!(stats.is_balanced(), "{stats:?}");
    let report = pool.shutdown();
    let back: Vec<u64> = report.unstarted.iter().map(|job| job.value).collect();
    assert_eq!(
        back,
        [66],
        "the job whose hook panicked before its start comes back"
    );
    assert_eq!(report.finished, 0);
}

/// A value whose `Drop` panics.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("dropped a grenade");
    }
}

/// Has no say at any hook; makes the pool take its layered path.
struct Bystander;

impl<J, E> Middleware<J, E> for Bystander {}

#[test]
fn a_job_panicking_in_its_drop_still_delivers_its_result_through_the_layers() {
    let pool: ThreadPool<BoxJob<u64, String>> = ThreadPool::builder()
        .workers(1)
        .layer(Bystander)
        .build()
        .unwrap();
    let grenade = Grenade;
    let job = BoxJob::new(move |_: &JobContext| {
        let _held = &grenade;
        Ok(5)
    });
    assert_eq!(pool.submit(job).unwrap().join(), Ok(5));
    let grenade = Grenade;
    let job = BoxJob::new(move |_: &JobContext| {
        let _held = &grenade;
        Err("no".to_string())
    });
    let error = pool.submit(job).unwrap().join().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    pool.wait_idle();
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.failed, stats.workers), (1, 1, 1));
    assert!(stats.is_balanced(), "{stats:?}");
}

/// A job whose output is a witness: it is freed only when nothing holds the job's result.
struct Witnessed(Arc<()>);

impl Job for Witnessed {
    type Output = Arc<()>;
    type Error = String;

    fn run(&mut self, _: &JobContext) -> Result<Arc<()>, String> {
        Ok(self.0.clone())
    }
}

struct LongDeadline;

impl Middleware<Witnessed, String> for LongDeadline {
    fn deadline(&self, _: &Witnessed, started: Instant) -> Option<Instant> {
        Some(started + Duration::from_secs(3600))
    }
}

#[test]
fn a_run_that_beats_its_deadline_leaves_nothing_behind_in_the_timer() {
    let pool = ThreadPool::builder()
        .workers(2)
        .layer(LongDeadline)
        .build()
        .unwrap();
    let witness = Arc::new(());
    for _ in 0..50 {
        // Dropped at once: only the pool (and a lingering deadline) could keep the result.
        drop(pool.submit(Witnessed(witness.clone())).unwrap());
    }
    pool.wait_idle();
    eventually("every result is freed long before the deadlines", || {
        Arc::strong_count(&witness) == 1
    });
}

/// Retries every failed run once, `backoff` later.
struct RetryOnce(Duration);

impl<J> Middleware<J, String> for RetryOnce {
    fn after_run(&self, _: &J, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
        if !run.outcome.is_success() && run.attempt < 2 {
            AfterRun::RetryAt(now + self.0)
        } else {
            AfterRun::Done
        }
    }
}

#[test]
fn a_job_that_shuts_down_its_own_pool_and_fails_comes_back_instead_of_waiting_forever() {
    let pool: Arc<ThreadPool<BoxJob<u64, String>>> = Arc::new(
        ThreadPool::builder()
            .name("self-shutdown")
            .workers(1)
            .layer(RetryOnce(Duration::from_millis(1)))
            .build()
            .unwrap(),
    );
    let inner = Arc::downgrade(&pool);
    let handle = pool
        .submit(BoxJob::new(move |_: &JobContext| {
            if let Some(pool) = inner.upgrade() {
                let _report = pool.shutdown();
            }
            Err("failed after shutting its pool down".to_string())
        }))
        .unwrap();
    let error = handle
        .join_timeout(PATIENCE)
        .expect("the handle resolves: the retry has nowhere to run")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Returned);
    let stats = pool.stats();
    assert!(stats.is_balanced(), "{stats:?}");
    assert_eq!(stats.delayed, 0, "{stats:?}");
}
