use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime};

use crate::backend::{drop_quietly, job_errors, panic_message};
use crate::hooks::{AfterRun, DeadLetter, Layers, RunOutcome, RunReport};
use crate::{JobId, JobResult};

/// What one run of a job returned, as a backend caught it: its result or its panic.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::RunEnd;
///
/// let end: RunEnd<u8, String> = RunEnd::Panicked("boom".into());
/// assert!(!end.is_success());
/// ```
#[derive(Debug)]
pub enum RunEnd<T, E> {
    /// The job returned.
    Returned(Result<T, E>),
    /// The job panicked with this message.
    Panicked(String),
}

impl<T, E> RunEnd<T, E> {
    /// The end of a run that panicked with `payload`, as `catch_unwind` caught it: its
    /// message is kept and the payload dropped, containing a panic in the payload's own
    /// `Drop` (which would otherwise unwind through the worker that caught the first).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::RunEnd;
    ///
    /// struct Grumpy;
    /// impl Drop for Grumpy {
    ///     fn drop(&mut self) {
    ///         panic!("not today");
    ///     }
    /// }
    ///
    /// let payload = std::panic::catch_unwind(|| std::panic::panic_any(Grumpy)).unwrap_err();
    /// let end = RunEnd::<u8, String>::panicked(payload); // the second panic stays in here
    /// assert!(matches!(end, RunEnd::Panicked(message) if message.contains("non-string")));
    /// ```
    #[must_use]
    pub fn panicked(payload: Box<dyn Any + Send>) -> Self {
        let message = panic_message(&*payload);
        drop_quietly(payload);
        RunEnd::Panicked(message)
    }

    /// Whether the run produced the job's output.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::backend::RunEnd::<u8, ()>::Returned(Ok(1)).is_success());
    /// ```
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self, RunEnd::Returned(Ok(_)))
    }

    /// Whether the run returned an error (not a panic): the one end that reads differently
    /// when the job's token was cancelled or its deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::backend::RunEnd;
    ///
    /// assert!(RunEnd::<u8, &str>::Returned(Err("no")).is_error());
    /// assert!(!RunEnd::<u8, &str>::Panicked("boom".into()).is_error());
    /// ```
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(self, RunEnd::Returned(Err(_)))
    }

    /// The run's terminal result when no layer has a say: what the driver's settling of a
    /// run gives with no layers, by the same rules, without its clock readings. A
    /// backend's path for pools without middleware uses this. `attempt` is this run's
    /// number (1 for the first).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::ErrorKind;
    /// use brigade_core::backend::RunEnd;
    ///
    /// let end = RunEnd::<u8, String>::Returned(Err("stopped".into()));
    /// let error = end.into_result(1, true, false).unwrap_err();
    /// assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    /// ```
    pub fn into_result(
        self,
        attempt: u32,
        cancelled: bool,
        past_deadline: bool,
    ) -> JobResult<T, E> {
        terminal(self, attempt, cancelled, past_deadline, false)
    }
}

/// One job's life across its runs: which attempt is next, when it first failed, and
/// whether the layers already granted its next start (a job that waited for capacity).
/// Backends keep one next to each queued job, and move it with the job: a copy would
/// carry the grant twice.
///
/// # Examples
///
/// ```
/// let attempts = brigade_core::Attempts::default();
/// assert_eq!(attempts.next(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// `None` until a run ends without ending the job or a start is granted ahead, which
    /// is all most jobs ever carry. Boxed, so every queued job carries 8 bytes.
    history: Option<Box<History>>,
}

/// What a job carries beyond its first pass: runs that ended (a retry), and a start the
/// layers granted while it waited for capacity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct History {
    ran: u32,
    first_failure: Option<(Instant, SystemTime)>,
    start_granted: bool,
    /// Its token carries the pool's registration while it waits off the workers.
    cancel_watched: bool,
}

impl Attempts {
    /// The number the next run will have (1 for the first).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::Attempts::default().next(), 1);
    /// ```
    #[must_use]
    pub fn next(&self) -> u32 {
        self.ran() + 1
    }

    /// How many runs have ended.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_core::Attempts::default().ran(), 0);
    /// ```
    #[must_use]
    pub fn ran(&self) -> u32 {
        self.history.as_ref().map_or(0, |history| history.ran)
    }

    /// When the job first failed, if it has.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::Attempts::default().first_failure().is_none());
    /// ```
    #[must_use]
    pub fn first_failure(&self) -> Option<Instant> {
        self.first_failure_at().map(|(at, _)| at)
    }

    fn first_failure_at(&self) -> Option<(Instant, SystemTime)> {
        self.history.as_ref()?.first_failure
    }

    /// Notes that the layers granted the next start: the job waited for capacity and was
    /// offered it, so its start must not ask them again.
    pub(crate) fn grant_start(&mut self) {
        self.history.get_or_insert_default().start_granted = true;
    }

    /// Whether the layers granted the next start, forgetting it: a grant is used once.
    pub(crate) fn take_granted_start(&mut self) -> bool {
        self.history
            .as_mut()
            .is_some_and(|history| std::mem::take(&mut history.start_granted))
    }

    /// Notes that the job's token carries the pool's cancel registration (it waits off
    /// the workers), to be removed when it comes back.
    pub(crate) fn cancel_watched(&mut self) {
        self.history.get_or_insert_default().cancel_watched = true;
    }

    /// Whether the job's token carries the pool's cancel registration, forgetting it.
    pub(crate) fn take_cancel_watched(&mut self) -> bool {
        self.history
            .as_mut()
            .is_some_and(|history| std::mem::take(&mut history.cancel_watched))
    }
}

/// What a backend does with a job after a run, decided once for every backend by
/// [`settle`].
///
#[derive(Debug)]
#[must_use]
pub(crate) enum Settled<J, T, E> {
    /// The job reached its terminal state: complete its handle with this result and count
    /// it (`Ok` as completed, `Err` by [`JobError::kind`]). The job itself was dropped
    /// (through `drop_job`) or taken by a dead-letter sink.
    Finished(JobResult<T, E>),
    /// Run the job again, not before `at`; count a retry. It waits in a delay queue,
    /// never on a worker.
    Retry {
        /// The job, intact.
        job: J,
        /// Its attempts so far, to keep with it.
        attempts: Attempts,
        /// When it may run again.
        at: Instant,
    },
}

/// Everything a backend knows about a run that just ended.
///
#[derive(Debug)]
pub(crate) struct FinishedRun<T, E> {
    /// The job's id.
    pub(crate) id: JobId,
    /// What the run returned.
    pub(crate) end: RunEnd<T, E>,
    /// The job's attempts before this run.
    pub(crate) attempts: Attempts,
    /// When the run started.
    pub(crate) started: Instant,
    /// Whether the job's token was cancelled when the run ended.
    pub(crate) cancelled: bool,
    /// Whether the run's deadline had passed (the backend cancelled the token for it).
    pub(crate) past_deadline: bool,
}

/// Turns a finished run and the layers' decision into what the backend does next: the one
/// place where "a run ended" becomes a terminal state, a retry, or a dead letter, so every
/// backend classifies runs the same way.
///
/// The rules:
///
/// - a run that returned its output ends completed (even if its token was cancelled late);
/// - an error after the job's own token was cancelled (by its handle or its pool) is
///   [`Cancelled`](crate::ErrorKind::Cancelled), even past the deadline: a cancelled job
///   is never retried or dead-lettered; otherwise an error after the deadline passed is
///   [`TimedOut`](crate::ErrorKind::TimedOut); otherwise `Failed`; a panic is `Panicked`;
/// - the layers then see the run ([`Layers::after_run`], skipped when there are none):
///   `RetryAt` gives [`Settled::Retry`]; `DeadLetter` builds a [`DeadLetter`] and hands it to
///   the deciding layer's sink: taken, the job ends
///   [`DeadLettered`](crate::ErrorKind::DeadLettered); given back, it ends with its own
///   outcome (`Failed`, `Panicked`, ...). A dead-lettered panic keeps its message.
/// - a layer that panics in `after_run` has no say (the layers after it still decide), and
///   a sink that panics in `dead_letter` gives the letter back: the panic is caught and the
///   job ends with its own outcome, so a policy bug can never make a job vanish from the
///   books.
///
/// `now` is the backend's clock reading at the end of the run. What the backend no longer
/// needs is handed back to it to drop instead of being dropped here: `drop_job` gets the
/// job once it has ended and no dead-letter sink took it, `drop_end` what the run returned
/// when the job goes on to a retry. A backend that contains panics in `Drop`
/// implementations passes its own containment; each is called at most once.
///
pub(crate) fn settle<J: 'static, T, E: std::fmt::Display + 'static>(
    layers: &Layers<J, E>,
    job: J,
    run: FinishedRun<T, E>,
    now: Instant,
    drop_job: impl FnOnce(J),
    drop_end: impl FnOnce(RunEnd<T, E>),
) -> Settled<J, T, E> {
    let FinishedRun {
        id,
        end,
        attempts,
        started,
        cancelled,
        past_deadline,
    } = run;
    let attempt = attempts.next();
    let decision = if layers.is_empty() {
        (AfterRun::Done, None)
    } else {
        let outcome = match &end {
            RunEnd::Returned(Ok(_)) => RunOutcome::Succeeded,
            RunEnd::Returned(Err(error)) if cancelled => RunOutcome::Cancelled(Some(error)),
            RunEnd::Returned(Err(error)) if past_deadline => RunOutcome::TimedOut(Some(error)),
            RunEnd::Returned(Err(error)) => RunOutcome::Failed(error),
            RunEnd::Panicked(message) => RunOutcome::Panicked(message),
        };
        let report = RunReport {
            id,
            outcome,
            attempt,
            started,
            first_failure: attempts.first_failure(),
        };
        // A panicking policy has no say (`Layers::after_run` contains each layer): the job
        // goes on as the others decide, or ends with its own outcome.
        layers.after_run(&job, &report, now)
    };
    // Needed only by a job that goes on (a retry) or a dead letter.
    let first_failure = |end: &RunEnd<T, E>| match (end, attempts.first_failure_at()) {
        (RunEnd::Returned(Ok(_)), first) => first,
        (_, Some(first)) => Some(first),
        (_, None) => Some((now, SystemTime::now())),
    };
    match decision {
        (AfterRun::RetryAt(at), _) => {
            let history = History {
                ran: attempt,
                first_failure: first_failure(&end),
                start_granted: false,
                cancel_watched: false,
            };
            drop_end(end);
            Settled::Retry {
                job,
                attempts: Attempts {
                    history: Some(Box::new(history)),
                },
                at,
            }
        }
        (AfterRun::DeadLetter, Some(index)) if !end.is_success() => {
            let error = match &end {
                // The error's `Display` is the job's code: a panic there is contained like
                // the job's own, and the letter carries a placeholder instead.
                RunEnd::Returned(Err(error)) => {
                    catch_unwind(AssertUnwindSafe(|| error.to_string()))
                        .unwrap_or_else(|_| "the job's error panicked while displayed".to_owned())
                }
                RunEnd::Panicked(message) => message.clone(),
                RunEnd::Returned(Ok(_)) => unreachable!("guarded by is_success"),
            };
            let first_failure = first_failure(&end).map_or_else(SystemTime::now, |(_, at)| at);
            let letter = DeadLetter {
                job,
                id,
                error,
                attempts: attempt,
                first_failure,
                last_failure: SystemTime::now(),
            };
            // A sink that panics took the job down with it; the job still ends, with its
            // own outcome, as when a sink hands the letter back.
            let taken = match catch_unwind(AssertUnwindSafe(|| layers.dead_letter(index, letter))) {
                Ok(Ok(())) => true,
                Ok(Err(letter)) => {
                    drop_job(letter.job);
                    false
                }
                Err(_) => false,
            };
            Settled::Finished(terminal(end, attempt, cancelled, past_deadline, taken))
        }
        _ => {
            drop_job(job);
            Settled::Finished(terminal(end, attempt, cancelled, past_deadline, false))
        }
    }
}

fn terminal<T, E>(
    end: RunEnd<T, E>,
    attempt: u32,
    cancelled: bool,
    past_deadline: bool,
    dead_lettered: bool,
) -> JobResult<T, E> {
    match end {
        RunEnd::Returned(Ok(output)) => Ok(output),
        RunEnd::Returned(Err(error)) if dead_lettered => {
            Err(job_errors::dead_lettered(error, attempt))
        }
        RunEnd::Returned(Err(error)) if cancelled => {
            Err(job_errors::cancelled(Some(error), attempt))
        }
        RunEnd::Returned(Err(error)) if past_deadline => {
            Err(job_errors::timed_out(Some(error), attempt))
        }
        RunEnd::Returned(Err(error)) => Err(job_errors::failed(error, attempt)),
        RunEnd::Panicked(message) if dead_lettered => {
            Err(job_errors::dead_lettered_panic(message, attempt))
        }
        RunEnd::Panicked(message) => Err(job_errors::panicked(message, attempt)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::ErrorKind;
    use crate::hooks::{AfterRun, Middleware};

    fn run(end: RunEnd<u8, String>, attempts: Attempts) -> FinishedRun<u8, String> {
        FinishedRun {
            id: JobId::new(1),
            end,
            attempts,
            started: Instant::now(),
            cancelled: false,
            past_deadline: false,
        }
    }

    struct RetryOnce;
    impl Middleware<u8, String> for RetryOnce {
        fn after_run(&self, _: &u8, run: &RunReport<'_, String>, now: Instant) -> AfterRun {
            if run.attempt == 1 {
                AfterRun::RetryAt(now + Duration::from_millis(5))
            } else {
                AfterRun::Done
            }
        }
    }

    #[derive(Default)]
    struct Sink(Mutex<Vec<DeadLetter<u8>>>);
    impl Middleware<u8, String> for Arc<Sink> {
        fn after_run(&self, _: &u8, _: &RunReport<'_, String>, _: Instant) -> AfterRun {
            AfterRun::DeadLetter
        }
        fn dead_letter(&self, letter: DeadLetter<u8>) -> Result<(), DeadLetter<u8>> {
            self.0.lock().unwrap().push(letter);
            Ok(())
        }
    }

    /// An error whose `Display` panics: the job's own code, run while dead-lettering.
    struct Unprintable;
    impl std::fmt::Display for Unprintable {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Display exploded")
        }
    }

    #[derive(Default)]
    struct ErrorTexts(Mutex<Vec<String>>);
    impl Middleware<u8, Unprintable> for Arc<ErrorTexts> {
        fn after_run(&self, _: &u8, _: &RunReport<'_, Unprintable>, _: Instant) -> AfterRun {
            AfterRun::DeadLetter
        }
        fn dead_letter(&self, letter: DeadLetter<u8>) -> Result<(), DeadLetter<u8>> {
            self.0.lock().unwrap().push(letter.error);
            Ok(())
        }
    }

    #[test]
    fn an_error_that_panics_while_displayed_is_still_dead_lettered() {
        let sink = Arc::new(ErrorTexts::default());
        let layers = Layers::new().with(Arc::clone(&sink));
        let finished = FinishedRun::<u8, Unprintable> {
            id: JobId::new(1),
            end: RunEnd::Returned(Err(Unprintable)),
            attempts: Attempts::default(),
            started: Instant::now(),
            cancelled: false,
            past_deadline: false,
        };
        let Settled::Finished(Err(error)) =
            settle(&layers, 9, finished, Instant::now(), drop, drop)
        else {
            panic!("expected the job's end");
        };
        assert!(error.is_dead_lettered());
        let texts = sink.0.lock().unwrap();
        assert_eq!(texts.len(), 1);
        assert!(texts[0].contains("panicked while displayed"), "{texts:?}");
    }

    #[test]
    fn a_queued_job_carries_a_pointer_of_attempts() {
        assert_eq!(size_of::<Attempts>(), size_of::<usize>());
    }

    #[test]
    fn a_retry_keeps_the_job_and_counts_the_attempt() {
        let layers = Layers::new().with(RetryOnce);
        let now = Instant::now();
        let end = RunEnd::Returned(Err("flaky".into()));
        let Settled::Retry { job, attempts, at } =
            settle(&layers, 7, run(end, Attempts::default()), now, drop, drop)
        else {
            panic!("expected a retry");
        };
        assert_eq!((job, attempts.next()), (7, 2));
        assert!(at > now);
        assert!(attempts.first_failure().is_some());
        let end = RunEnd::Returned(Err("flaky".into()));
        let Settled::Finished(Err(error)) =
            settle(&layers, job, run(end, attempts), now, drop, drop)
        else {
            panic!("the second failure ends the job");
        };
        assert_eq!((error.kind(), error.attempts()), (ErrorKind::Failed, 2));
    }

    #[test]
    fn a_dead_letter_taken_by_the_sink_ends_dead_lettered() {
        let sink = Arc::new(Sink::default());
        let layers = Layers::new().with(Arc::clone(&sink));
        let end = RunEnd::Returned(Err("bad input".into()));
        let Settled::Finished(Err(error)) = settle(
            &layers,
            9,
            run(end, Attempts::default()),
            Instant::now(),
            drop,
            drop,
        ) else {
            panic!("expected a terminal state");
        };
        assert!(error.is_dead_lettered());
        let letters = sink.0.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].job, letters[0].error.as_str()),
            (9, "bad input")
        );
    }

    #[test]
    fn what_the_backend_no_longer_needs_goes_to_its_drop_hooks() {
        let layers = Layers::new().with(RetryOnce);
        let mut dropped_end = None;
        let end = RunEnd::Returned(Err("flaky".into()));
        let settled = settle(
            &layers,
            7,
            run(end, Attempts::default()),
            Instant::now(),
            |_| panic!("a retried job is kept"),
            |end| dropped_end = Some(end),
        );
        let Settled::Retry { job, attempts, .. } = settled else {
            panic!("expected a retry");
        };
        assert!(matches!(dropped_end, Some(RunEnd::Returned(Err(ref e))) if e == "flaky"));
        let mut dropped_job = None;
        let end = RunEnd::Returned(Err("flaky".into()));
        let settled = settle(
            &layers,
            job,
            run(end, attempts),
            Instant::now(),
            |job| dropped_job = Some(job),
            |_| panic!("the run's end is the job's result"),
        );
        assert!(matches!(settled, Settled::Finished(Err(_))));
        assert_eq!(dropped_job, Some(7));
    }

    /// A dead-letter sink that gives every letter back.
    struct Refusing;
    impl Middleware<u8, String> for Refusing {
        fn after_run(&self, _: &u8, _: &RunReport<'_, String>, _: Instant) -> AfterRun {
            AfterRun::DeadLetter
        }
    }

    #[test]
    fn a_dead_letter_given_back_goes_to_the_job_drop_hook() {
        let layers = Layers::new().with(Refusing);
        let mut dropped_job = None;
        let end = RunEnd::Panicked("boom".into());
        let settled = settle(
            &layers,
            5,
            run(end, Attempts::default()),
            Instant::now(),
            |job| dropped_job = Some(job),
            |_| panic!("no retry"),
        );
        let Settled::Finished(Err(error)) = settled else {
            panic!("expected a terminal state");
        };
        assert_eq!(error.kind(), ErrorKind::Panicked);
        assert_eq!(dropped_job, Some(5));
    }

    #[test]
    fn a_run_without_layers_ends_as_settle_would_end_it() {
        let layers = Layers::<u8, String>::new();
        let ends = || -> [RunEnd<u8, String>; 3] {
            [
                RunEnd::Returned(Ok(1)),
                RunEnd::Returned(Err("e".into())),
                RunEnd::Panicked("p".into()),
            ]
        };
        for (cancelled, past_deadline) in [(false, false), (true, false), (true, true)] {
            for (end, same) in ends().into_iter().zip(ends()) {
                let mut finished = run(end, Attempts::default());
                finished.cancelled = cancelled;
                finished.past_deadline = past_deadline;
                let Settled::Finished(settled) =
                    settle(&layers, 1, finished, Instant::now(), drop, drop)
                else {
                    panic!("no layers, no retry");
                };
                let plain = same.into_result(1, cancelled, past_deadline);
                assert_eq!(
                    format!("{plain:?}"),
                    format!("{settled:?}"),
                    "cancelled {cancelled}, past deadline {past_deadline}"
                );
            }
        }
    }

    #[test]
    fn errors_after_a_deadline_or_a_cancel_are_classified() {
        let layers = Layers::<u8, String>::new();
        let mut timed_out = run(RunEnd::Returned(Err("slow".into())), Attempts::default());
        timed_out.past_deadline = true;
        let Settled::Finished(Err(error)) =
            settle(&layers, 1, timed_out, Instant::now(), drop, drop)
        else {
            panic!("expected a terminal state");
        };
        assert!(error.is_timeout());
        // Cancelled by its caller, then past its deadline too: the cancel decides.
        let mut both = run(RunEnd::Returned(Err("stop".into())), Attempts::default());
        both.past_deadline = true;
        both.cancelled = true;
        let Settled::Finished(Err(error)) = settle(&layers, 1, both, Instant::now(), drop, drop)
        else {
            panic!("expected a terminal state");
        };
        assert!(error.is_cancelled());
        let mut cancelled = run(RunEnd::Returned(Err("stop".into())), Attempts::default());
        cancelled.cancelled = true;
        let Settled::Finished(Err(error)) =
            settle(&layers, 1, cancelled, Instant::now(), drop, drop)
        else {
            panic!("expected a terminal state");
        };
        assert!(error.is_cancelled());
        let mut late_success = run(RunEnd::Returned(Ok(4)), Attempts::default());
        late_success.cancelled = true;
        assert!(matches!(
            settle(&layers, 1, late_success, Instant::now(), drop, drop),
            Settled::Finished(Ok(4))
        ));
    }
}
