//! The randomized accounting stress test, shared by both backends: jobs that succeed,
//! fail, panic or wait, random cancels, a backpressure drop policy, retry, dead-letter
//! and a timeout, and a shutdown of a random kind at a random moment. After it,
//! `Stats::is_balanced()` must hold with `dead_lettered` and `dropped` included, and every
//! handle must agree with the counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use brigade_core::hooks::{Layers, RunOutcome};
use brigade_core::testkit::Tally;
use brigade_core::{ErrorKind, Executor, JobContext, JobHandle, ShutdownReport, SubmitError};
use brigade_middleware::{
    Backoff, Backpressure, DeadLetterQueue, Jitter, MemorySink, Overflow, Retry, Timeout,
};

/// What a stress job does on each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Succeed,
    FailOnce,
    FailAlways,
    Panic,
    /// Waits on its token for a while: a random cancel or the timeout ends it.
    Wait,
}

/// What a run does, for the backend's own way of running it.
pub enum Step {
    Return(Result<u32, String>),
    Panic,
    Wait(Duration),
}

#[derive(Debug)]
pub struct StressJob {
    pub kind: Kind,
    pub runs: u32,
}

impl StressJob {
    pub fn step(&mut self, cx: &JobContext) -> Step {
        self.runs += 1;
        match self.kind {
            Kind::Succeed => Step::Return(Ok(cx.attempt())),
            Kind::FailOnce if self.runs == 1 => Step::Return(Err("transient".into())),
            Kind::FailOnce => Step::Return(Ok(cx.attempt())),
            Kind::FailAlways => Step::Return(Err("permanent".into())),
            Kind::Panic => Step::Panic,
            Kind::Wait => Step::Wait(Duration::from_millis(4)),
        }
    }
}

/// The message of the panics the jobs raise on purpose, kept out of the test's output.
pub const STRESS_PANIC: &str = "stress panic";

pub fn quiet_stress_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .unwrap_or_default();
            if message != STRESS_PANIC {
                default(info);
            }
        }));
    });
}

#[derive(Clone, Copy, Debug)]
enum ShutdownKind {
    Graceful,
    Deadline(Duration),
    Now,
}

/// An accepted job's handle, with whether the producer cancelled it.
type Submitted = (JobHandle<u32, String>, bool);

/// One pool's worth of the stress test.
#[derive(Debug)]
pub struct Round {
    pub seed: u64,
    pub jobs: usize,
    pub producers: usize,
    overflow: Overflow,
    shutdown: ShutdownKind,
    /// Shut down once this many submits were attempted (past `jobs`: after the last).
    shutdown_after: usize,
    sink_capacity: usize,
}

impl Round {
    pub fn random(seed: u64, jobs: usize) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        Round {
            seed,
            jobs,
            producers: 2,
            overflow: [
                Overflow::Block,
                Overflow::Reject,
                Overflow::DropNewest,
                Overflow::DropOldest,
            ][rng.usize(..4)],
            shutdown: match rng.u8(..3) {
                0 => ShutdownKind::Graceful,
                1 => ShutdownKind::Deadline(Duration::from_micros(rng.u64(0..3000))),
                _ => ShutdownKind::Now,
            },
            shutdown_after: rng.usize(jobs / 3..jobs + jobs / 3),
            sink_capacity: rng.usize(10..5000),
        }
    }
}

/// The pool's middleware for a round, and the handles on what it records.
pub struct Stack {
    pub layers: Layers<StressJob, String>,
    pub sink: MemorySink<StressJob>,
    pub dropped: Arc<AtomicU64>,
}

pub fn stack(round: &Round) -> Stack {
    let sink = MemorySink::new(round.sink_capacity).unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&dropped);
    let layers = Layers::new()
        .with(
            Backpressure::new(round.overflow).on_drop(move |_job, _reason| {
                counted.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .with(Timeout::after(Duration::from_millis(2)).unwrap())
        .with(
            Retry::builder()
                .max_attempts(3)
                .backoff(
                    Backoff::exponential(Duration::from_micros(20))
                        .cap(Duration::from_micros(200))
                        .jitter(Jitter::Full),
                )
                .retry_if(|outcome| !matches!(outcome, RunOutcome::Cancelled(_)))
                .seed(round.seed)
                .build()
                .unwrap(),
        )
        .with(DeadLetterQueue::new(sink.clone()));
    Stack {
        layers,
        sink,
        dropped,
    }
}

/// Runs `round` on `pool` (built with [`stack`]'s layers and a small queue) and checks the
/// accounting.
pub fn run_round<P>(round: &Round, stack: &Stack, pool: &P) -> brigade_core::Stats
where
    P: Executor<StressJob, Output = u32, Error = String> + Sync,
{
    let attempted = AtomicUsize::new(0);
    let rejected = AtomicU64::new(0);
    let per_producer = round.jobs / round.producers;
    let (handles, report): (Vec<Vec<Submitted>>, ShutdownReport<StressJob>) =
        std::thread::scope(|scope| {
            let producers: Vec<_> = (0..round.producers)
                .map(|producer| {
                    let (attempted, rejected) = (&attempted, &rejected);
                    scope.spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(round.seed ^ (producer as u64 + 1));
                        let mut handles = Vec::with_capacity(per_producer);
                        for _ in 0..per_producer {
                            let kind = match rng.u8(..100) {
                                0..=59 => Kind::Succeed,
                                60..=74 => Kind::FailOnce,
                                75..=84 => Kind::FailAlways,
                                85..=92 => Kind::Panic,
                                _ => Kind::Wait,
                            };
                            attempted.fetch_add(1, Ordering::Relaxed);
                            match pool.submit(StressJob { kind, runs: 0 }) {
                                Ok(handle) => {
                                    let cancel = rng.u8(..100) < 3;
                                    if cancel {
                                        handle.cancel();
                                    }
                                    handles.push((handle, cancel));
                                }
                                Err(SubmitError::Rejected(..)) => {
                                    rejected.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(SubmitError::Closed(_)) => break,
                                Err(refused @ SubmitError::InAsyncContext(_)) => {
                                    unreachable!("producers are plain threads: {refused}")
                                }
                            }
                        }
                        handles
                    })
                })
                .collect();
            while attempted.load(Ordering::Relaxed)
                < round.shutdown_after.min(per_producer * round.producers)
                && !producers.iter().all(|p| p.is_finished())
            {
                std::thread::yield_now();
            }
            let report = match round.shutdown {
                ShutdownKind::Graceful => pool.shutdown(),
                ShutdownKind::Deadline(deadline) => pool.shutdown_timeout(deadline),
                ShutdownKind::Now => pool.shutdown_now(),
            }
            .expect("the stress test shuts down from a plain thread");
            let handles = producers
                .into_iter()
                .map(|p| p.join().expect("producer"))
                .collect();
            (handles, report)
        });

    let stats = pool.stats();
    let handles: Vec<_> = handles.into_iter().flatten().collect();
    let mut tally = Tally::new();
    for (handle, _) in handles.iter() {
        assert!(
            handle.is_finished(),
            "{round:?}: a handle is unresolved after shutdown"
        );
    }
    let mut cancelled_unasked = 0;
    for (handle, cancelled_by_us) in handles {
        let kind = tally.record(&handle.join());
        if kind == Some(ErrorKind::Cancelled) && !cancelled_by_us {
            cancelled_unasked += 1;
        }
    }
    tally.assert_agrees_with(&stats, &format!("{round:?}"));

    assert_eq!(
        stats.returned,
        report.unstarted.len() as u64,
        "{round:?}: {stats:?} {report:?}"
    );
    assert!(stats.is_balanced(), "{round:?}: {stats:?}");
    if matches!(round.shutdown, ShutdownKind::Graceful) {
        // Only a handle or a shutdown deadline cancels; a run past its own deadline ends
        // timed out (or goes on to retry and dead-letter), never cancelled.
        assert_eq!(
            cancelled_unasked, 0,
            "{round:?}: {stats:?}: jobs nobody cancelled ended cancelled"
        );
    }
    assert_eq!(
        stats.rejected,
        rejected.load(Ordering::Relaxed),
        "{round:?}: {stats:?}"
    );
    assert_eq!(
        stats.dropped,
        stack.dropped.load(Ordering::Relaxed),
        "{round:?}: every drop reached on_drop"
    );
    // Every letter the sink kept, a panicked job's included, ended dead-lettered.
    assert_eq!(
        stats.dead_lettered,
        stack.sink.len() as u64,
        "{round:?}: every dead letter is in the sink"
    );
    assert!(stack.sink.len() <= round.sink_capacity);
    if stack.sink.refused() > 0 {
        assert!(
            stats.failed + stats.panicked + stats.timed_out >= stack.sink.refused(),
            "{round:?}: {stats:?}"
        );
    }
    eprintln!("{round:?}\n  -> {stats:?}");
    stats
}

/// Runs rounds, each on a fresh pool from `build`, until at least `total` jobs were
/// accepted, and checks that the rounds together exercised every terminal state.
pub fn run_rounds<P>(seed: u64, total: u64, mut build: impl FnMut(&Stack, usize) -> P)
where
    P: Executor<StressJob, Output = u32, Error = String> + Sync,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut sum = brigade_core::Stats::default();
    let mut panics_seen = 0;
    while sum.submitted < total {
        let round = Round::random(rng.u64(..), 25_000);
        let stack = stack(&round);
        let pool = build(&stack, rng.usize(1..64));
        let stats = run_round(&round, &stack, &pool);
        // A panicked job ends `Panicked`, or `DeadLettered` when the sink keeps it.
        panics_seen += stats.panicked
            + stack.sink.inspect(|letters| {
                letters.iter().filter(|l| l.job.kind == Kind::Panic).count() as u64
            });
        sum.submitted += stats.submitted;
        sum.dead_lettered += stats.dead_lettered;
        sum.dropped += stats.dropped;
        sum.cancelled += stats.cancelled;
        sum.retried += stats.retried;
        sum.panicked += stats.panicked;
        sum.timed_out += stats.timed_out;
        sum.completed += stats.completed;
    }
    // Not a check of the pool: a check that the test exercised what it claims to.
    assert!(
        sum.completed > 0 && sum.retried > 0 && sum.dead_lettered > 0 && panics_seen > 0,
        "{sum:?}, {panics_seen} panics"
    );
}

/// The seed for a run: `BRIGADE_STRESS_SEED` to replay one, random otherwise (printed).
pub fn seed() -> u64 {
    let seed = std::env::var("BRIGADE_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("stress seed: {seed} (BRIGADE_STRESS_SEED={seed} to replay)");
    seed
}
