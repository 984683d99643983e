//! The hooks through which backends drive middleware policies.
//!
//! A middleware is a small policy with no thread, timer or runtime of its own: the backend
//! calls it at three points of a job's life, passing the current time, and acts on its
//! decision with its own clock and timer.
//!
//! | hook | when | decides |
//! | --- | --- | --- |
//! | [`admit`](Middleware::admit) | at submit, queue full or not | accept · reject · drop newest · evict oldest |
//! | [`before_start`](Middleware::before_start) | a worker took the job | start now · not before `T` · when capacity frees |
//! | [`after_run`](Middleware::after_run) | a run ended | done · run again not before `T` · dead-letter |
//!
//! Layers compose in the order they are added; [`Layers`] writes the rules down.

mod decisions;
mod layers;

pub use decisions::{
    Admission, AfterRun, DeadLetter, DropReason, QueueState, RunOutcome, RunReport, Start,
};
pub use layers::Layers;

use std::time::Instant;

/// A policy a backend consults at a job's admission, start and end.
///
/// Every hook has a do-nothing default, so a policy writes only the hooks it needs.
/// `J` is the pool's job type and `E` its error type; policies are usually generic over
/// both, or bound `J` by a trait of their own (a key, a weight, `Serialize`).
///
/// # Examples
///
/// A policy that gives every job one more chance 10 ms after its first failure:
///
/// ```
/// use std::time::{Duration, Instant};
/// use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
///
/// struct OneMoreTry;
///
/// impl<J, E: 'static> Middleware<J, E> for OneMoreTry {
///     fn after_run(&self, _job: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
///         match run.outcome {
///             RunOutcome::Failed(_) if run.attempt == 1 => {
///                 AfterRun::RetryAt(now + Duration::from_millis(10))
///             }
///             _ => AfterRun::Done,
///         }
///     }
/// }
/// # let _ = OneMoreTry;
/// ```
pub trait Middleware<J, E>: Send + Sync + 'static {
    /// A short name for traces.
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// Decides whether a submitted job enters the queue. `queue` is the queue as the
    /// submitter found it; [`Admission::Accept`] on a full queue means "wait for room"
    /// (`submit`) or "refuse as full" (`try_submit`).
    fn admit(&self, job: &J, queue: QueueState) -> Admission {
        let _ = (job, queue);
        Admission::Accept
    }

    /// Decides whether a job a worker took may start now.
    ///
    /// A layer that grants [`Start::Now`] and holds something for the run (units of a
    /// weighted limit) gets [`release`](Self::release) once the run ends or a later layer
    /// defers the start; one whose grant is spent at once says so with
    /// [`holds_until_release`](Self::holds_until_release).
    fn before_start(&self, job: &J, now: Instant) -> Start {
        let _ = (job, now);
        Start::Now
    }

    /// Gives back what [`before_start`](Self::before_start) took for a start it granted.
    fn release(&self, job: &J) {
        let _ = job;
    }

    /// When a run starting at `started` must stop: the backend cancels the job's token then,
    /// and a run that gives up after it ends [`TimedOut`](crate::ErrorKind::TimedOut).
    fn deadline(&self, job: &J, started: Instant) -> Option<Instant> {
        let _ = (job, started);
        None
    }

    /// Decides what happens after a run. Called after every run, successful or not (unless
    /// [`sees_successes`](Self::sees_successes) says otherwise), so a policy can keep its
    /// own tallies; the decision only counts for a run that did not succeed and was not
    /// cancelled.
    fn after_run(&self, job: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
        let _ = (job, run, now);
        AfterRun::Done
    }

    /// Whether [`after_run`](Self::after_run) is to see runs that succeeded. A layer that
    /// acts only on failures (a retry, a dead-letter queue), or has no `after_run` at all,
    /// says `false`: when no layer of a pool wants them, a successful run ends without the
    /// after-run hooks and without the clock read their `now` costs. `true` by default, so
    /// a layer that does not say sees every run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
    ///
    /// /// Retries every failure once, a second later; successes are none of its business.
    /// struct RetryOnce;
    /// impl<J, E> Middleware<J, E> for RetryOnce {
    ///     fn after_run(&self, _: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
    ///         match run.outcome {
    ///             RunOutcome::Failed(_) if run.attempt == 1 => {
    ///                 AfterRun::RetryAt(now + Duration::from_secs(1))
    ///             }
    ///             _ => AfterRun::Done,
    ///         }
    ///     }
    ///
    ///     fn sees_successes(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::sees_successes(&RetryOnce));
    /// ```
    fn sees_successes(&self) -> bool {
        true
    }

    /// Whether [`admit`](Self::admit) is to see submitted jobs. A layer whose `admit`
    /// accepts every job (it has none, or it is a backpressure policy that waits for room,
    /// which a full queue does anyway) says `false`: when no layer of a pool wants them, a
    /// submit skips admission and the read of the queue's length it costs (a line the
    /// workers write). `true` by default, so a layer that does not say sees every submit.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::hooks::{Middleware, Start};
    ///
    /// /// Holds every start back until a fixed time; admission is none of its business.
    /// struct NotBefore(Instant);
    /// impl<J, E> Middleware<J, E> for NotBefore {
    ///     fn before_start(&self, _: &J, now: Instant) -> Start {
    ///         if now < self.0 { Start::NotBefore(self.0) } else { Start::Now }
    ///     }
    ///
    ///     fn sees_submits(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::sees_submits(&NotBefore(Instant::now())));
    /// ```
    fn sees_submits(&self) -> bool {
        true
    }

    /// Whether [`before_start`](Self::before_start) and [`release`](Self::release) are to
    /// see starts. A layer that never holds a start back nor takes anything for one (a
    /// retry, a dead-letter queue, a timeout) says `false`: a pool asks only the layers
    /// that do, so a job's start costs no call into the others. `true` by default, so a
    /// layer that does not say sees every start.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::hooks::Middleware;
    ///
    /// /// Counts nothing and limits nothing: starts are none of its business.
    /// struct Quiet;
    /// impl<J, E> Middleware<J, E> for Quiet {
    ///     fn sees_starts(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::sees_starts(&Quiet));
    /// ```
    fn sees_starts(&self) -> bool {
        true
    }

    /// Whether a start this layer grants holds something until the run ends (a weighted
    /// limit's units), so that [`release`](Self::release) must be called for it. A layer
    /// whose grant is spent at the start (a rate limit's token) says `false`: a pool then
    /// ends its runs without the call. `true` by default, so a layer that does not say is
    /// released after every start it granted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::hooks::{Middleware, Start};
    ///
    /// /// Holds starts back until a fixed time; a start it lets through takes nothing.
    /// struct NotBefore(Instant);
    /// impl<J, E> Middleware<J, E> for NotBefore {
    ///     fn before_start(&self, _: &J, now: Instant) -> Start {
    ///         if now < self.0 { Start::NotBefore(self.0) } else { Start::Now }
    ///     }
    ///
    ///     fn holds_until_release(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::holds_until_release(&NotBefore(Instant::now())));
    /// ```
    fn holds_until_release(&self) -> bool {
        true
    }

    /// Whether [`deadline`](Self::deadline) may set one. A layer without deadlines says
    /// `false`, and a pool whose layers all say so starts runs without asking. `true` by
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::hooks::{Middleware, Start};
    ///
    /// /// Holds starts back until a fixed time, and never sets a deadline.
    /// struct NotBefore(Instant);
    /// impl<J, E> Middleware<J, E> for NotBefore {
    ///     fn before_start(&self, _: &J, now: Instant) -> Start {
    ///         if now < self.0 { Start::NotBefore(self.0) } else { Start::Now }
    ///     }
    ///
    ///     fn sets_deadlines(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::sets_deadlines(&NotBefore(Instant::now())));
    /// ```
    fn sets_deadlines(&self) -> bool {
        true
    }

    /// Whether [`after_run`](Self::after_run) reads [`RunReport::started`], the time the run
    /// started. A layer that never does (a retry, a dead-letter queue: they act on how a
    /// run ended and when) says `false`, and a pool whose layers all say so, none of which
    /// [sees starts](Self::sees_starts) or [sets deadlines](Self::sets_deadlines), starts
    /// its runs without reading the clock (a clock read is a tenth of a trivial job's cost
    /// on a thread pool). `started` then holds the time the run ended. `true` by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use brigade_core::hooks::{AfterRun, Middleware, RunOutcome, RunReport};
    ///
    /// /// Logs failures with the time they happened; how long the run took is not asked.
    /// struct LogFailures;
    /// impl<J, E: std::fmt::Display> Middleware<J, E> for LogFailures {
    ///     fn after_run(&self, _: &J, run: &RunReport<'_, E>, now: Instant) -> AfterRun {
    ///         if let RunOutcome::Failed(error) = &run.outcome {
    ///             eprintln!("job {} failed at {now:?}: {error}", run.id.get());
    ///         }
    ///         AfterRun::Done
    ///     }
    ///
    ///     fn times_runs(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Middleware::<(), String>::times_runs(&LogFailures));
    /// ```
    fn times_runs(&self) -> bool {
        true
    }

    /// Takes a job this layer chose to dead-letter. A sink that cannot take it (its file
    /// cannot be written) gives it back, and the job ends as failed instead.
    ///
    /// # Errors
    ///
    /// The letter, given back, when the sink could not store it.
    fn dead_letter(&self, letter: DeadLetter<J>) -> Result<(), DeadLetter<J>> {
        Err(letter)
    }

    /// Takes a job this layer chose to drop at admission. The backend has already counted
    /// and traced it.
    fn dropped(&self, job: J, reason: DropReason) {
        let _ = (job, reason);
    }
}
