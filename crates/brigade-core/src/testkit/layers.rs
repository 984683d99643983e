//! Small middlewares the kit uses to check that backends drive each hook.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Rejection;
use crate::hooks::{
    Admission, AfterRun, DeadLetter, DropReason, Middleware, QueueState, RunOutcome, RunReport,
    Start,
};

/// Retries every failed run after `backoff` until `max_attempts`.
#[derive(Debug)]
pub(crate) struct RetryEvery {
    pub(crate) backoff: Duration,
    pub(crate) max_attempts: u32,
}

impl<J: 'static, E: 'static> Middleware<J, E> for RetryEvery {
    fn after_run(&self, _: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) if run.attempt < self.max_attempts => {
                AfterRun::RetryAt(crate::instant_after(now, self.backoff))
            }
            _ => AfterRun::Done,
        }
    }
}

/// Dead-letters every failure into a list.
#[derive(Debug)]
pub(crate) struct DeadLetterList<J> {
    pub(crate) letters: Mutex<Vec<DeadLetter<J>>>,
}

impl<J: Send + 'static, E: 'static> Middleware<J, E> for DeadLetterList<J> {
    fn after_run(&self, _: &J, run: &RunReport<'_, E>, _: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) | RunOutcome::Panicked(_) => AfterRun::DeadLetter,
            _ => AfterRun::Done,
        }
    }

    fn dead_letter(&self, letter: DeadLetter<J>) -> Result<(), DeadLetter<J>> {
        self.letters.lock().expect("not poisoned").push(letter);
        Ok(())
    }
}

/// What to do with a job that finds the queue full.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WhenFull {
    Reject,
    DropNewest,
    EvictOldest,
}

/// Applies a [`WhenFull`] policy and keeps the jobs it dropped.
#[derive(Debug)]
pub(crate) struct FullQueuePolicy<J> {
    pub(crate) when_full: WhenFull,
    pub(crate) dropped: Mutex<Vec<(J, DropReason)>>,
}

impl<J: Send + 'static, E: 'static> Middleware<J, E> for FullQueuePolicy<J> {
    fn admit(&self, _: &J, queue: QueueState) -> Admission {
        if !queue.is_full() {
            return Admission::Accept;
        }
        match self.when_full {
            WhenFull::Reject => Admission::Reject(Rejection::new("queue full")),
            WhenFull::DropNewest => Admission::DropNewest,
            WhenFull::EvictOldest => Admission::EvictOldest,
        }
    }

    fn dropped(&self, job: J, reason: DropReason) {
        self.dropped
            .lock()
            .expect("not poisoned")
            .push((job, reason));
    }
}

/// Defers the first `defer` starts by `delay`, then lets everything start.
#[derive(Debug)]
pub(crate) struct DelayFirstStarts {
    pub(crate) defer: usize,
    pub(crate) delay: Duration,
    pub(crate) asked: AtomicUsize,
}

impl<J: 'static, E: 'static> Middleware<J, E> for DelayFirstStarts {
    fn before_start(&self, _: &J, now: Instant) -> Start {
        if self.asked.fetch_add(1, Ordering::SeqCst) < self.defer {
            Start::NotBefore(crate::instant_after(now, self.delay))
        } else {
            Start::Now
        }
    }
}

/// Gives every run a deadline `after` its start.
#[derive(Debug)]
pub(crate) struct DeadlineAfter {
    pub(crate) after: Duration,
}

impl<J: 'static, E: 'static> Middleware<J, E> for DeadlineAfter {
    fn deadline(&self, _: &J, started: Instant) -> Option<Instant> {
        Some(crate::instant_after(started, self.after))
    }
}

/// A layer that lets at most `units` runs hold a unit at once; the others wait for
/// capacity ([`Start::WhenCapacityFrees`]) and are offered a start as runs end: the
/// smallest weighted limit, for a backend's tests of parked starts.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use brigade_core::hooks::{Middleware, Start};
/// use brigade_core::testkit::Units;
///
/// let one = Units::new(1);
/// let now = Instant::now();
/// assert_eq!(Middleware::<(), ()>::before_start(&one, &(), now), Start::Now);
/// assert_eq!(Middleware::<(), ()>::before_start(&one, &(), now), Start::WhenCapacityFrees);
/// Middleware::<(), ()>::release(&one, &());
/// assert_eq!(Middleware::<(), ()>::before_start(&one, &(), now), Start::Now);
/// ```
#[derive(Debug)]
pub struct Units {
    units: usize,
    pub(crate) used: AtomicUsize,
}

impl Units {
    /// A layer of `units` units, none held.
    ///
    /// # Examples
    ///
    /// See [`Units`].
    #[must_use]
    pub fn new(units: usize) -> Self {
        Units {
            units,
            used: AtomicUsize::new(0),
        }
    }
}

impl<J: 'static, E: 'static> Middleware<J, E> for Units {
    fn before_start(&self, _: &J, _: Instant) -> Start {
        let taken = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used < self.units).then_some(used + 1)
            });
        match taken {
            Ok(_) => Start::Now,
            Err(_) => Start::WhenCapacityFrees,
        }
    }

    fn release(&self, _: &J) {
        self.used.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A layer that retries every failed run `after` its end, for as many attempts as it
/// takes: with a long `after`, a job that stays in the backend's delay queue, for a
/// backend's tests of what waits there (a cancel, a shutdown, a runtime going away).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::JobId;
/// use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
/// use brigade_core::testkit::RetryAfter;
///
/// let later = RetryAfter(Duration::from_secs(3600));
/// let now = Instant::now();
/// let error = "no";
/// let failed = RunReport {
///     id: JobId::new(1),
///     outcome: RunOutcome::Failed(&error),
///     attempt: 1,
///     started: now,
///     first_failure: None,
/// };
/// assert_eq!(
///     Middleware::<(), &str>::after_run(&later, &(), &failed, now),
///     AfterRun::RetryAt(now + Duration::from_secs(3600)),
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RetryAfter(pub Duration);

impl<J: 'static, E: 'static> Middleware<J, E> for RetryAfter {
    fn after_run(&self, _: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
        if run.outcome.is_success() {
            AfterRun::Done
        } else {
            AfterRun::RetryAt(crate::instant_after(now, self.0))
        }
    }
}

/// A layer that defers every start it is asked about to `after` the asking (a rate
/// limit's deferral, always): with a long `after`, a job that stays in the backend's
/// delay queue.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::hooks::{Middleware, Start};
/// use brigade_core::testkit::StartAfter;
///
/// let later = StartAfter(Duration::from_secs(3600));
/// let now = Instant::now();
/// assert_eq!(
///     Middleware::<(), ()>::before_start(&later, &(), now),
///     Start::NotBefore(now + Duration::from_secs(3600)),
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StartAfter(pub Duration);

impl<J: 'static, E: 'static> Middleware<J, E> for StartAfter {
    fn before_start(&self, _: &J, now: Instant) -> Start {
        Start::NotBefore(crate::instant_after(now, self.0))
    }
}
