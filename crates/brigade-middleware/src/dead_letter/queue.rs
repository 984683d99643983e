use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Instant, SystemTime};

use brigade_core::JobId;
use brigade_core::hooks::{AfterRun, DeadLetter, Middleware, RunOutcome, RunReport};

use super::sink::DeadLetterSink;

type OnAlert = dyn Fn(&DeadLetterAlert) + Send + Sync;
type Label<J> = dyn Fn(&J) -> String + Send + Sync;

/// The dead-letter layer: a job whose run failed, panicked or timed out, and that no
/// earlier layer runs again, goes to a [`DeadLetterSink`] intact, with its last error,
/// its attempts and its first and last failure times.
///
/// Add it *after* a [`Retry`](crate::Retry) layer: the first layer that does not say
/// "done" decides, so retry keeps the job while attempts (and budget) remain and this
/// layer takes it afterwards. Cancelled runs are never dead-lettered.
///
/// Once the sink has kept a letter (for [`JsonlSink`](crate::JsonlSink): flushed and
/// synced), the backend counts the job in
/// [`Stats::dead_lettered`](brigade_core::Stats::dead_lettered) and the alert callback
/// runs. A sink that refuses gives the letter back and the job ends as failed. The label
/// and alert callbacks cannot change that: a panic in either is caught, counted in
/// [`alerts_panicked`](DeadLetterQueue::alerts_panicked), and the letter goes to the sink
/// regardless.
///
/// # Examples
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use brigade_core::JobId;
/// use brigade_core::hooks::{DeadLetter, Middleware};
/// use brigade_middleware::{DeadLetterQueue, MemorySink};
///
/// let sink = MemorySink::new(100)?;
/// let dlq = DeadLetterQueue::new(sink.clone())
///     .label(|job: &String| job.clone())
///     .on_alert(|alert| {
///         println!("*** DLQ ALERT: {} permanently failed: {} ***", alert.job, alert.error);
///     });
///
/// let now = SystemTime::now();
/// let letter = DeadLetter {
///     job: "task-3".to_string(), id: JobId::new(3), error: "random processing error".into(),
///     attempts: 3, first_failure: now, last_failure: now,
/// };
/// assert!(Middleware::<String, String>::dead_letter(&dlq, letter).is_ok());
/// assert_eq!(sink.len(), 1);
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct DeadLetterQueue<J, S> {
    sink: S,
    label: Option<Box<Label<J>>>,
    on_alert: Option<Box<OnAlert>>,
    stored: AtomicU64,
    refused: AtomicU64,
    alerts_panicked: AtomicU64,
}

/// What an alert says about a job that reached the dead-letter sink.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_core::JobId;
/// use brigade_middleware::DeadLetterAlert;
///
/// let now = SystemTime::now();
/// let alert = DeadLetterAlert {
///     id: JobId::new(4), job: "#4".into(), error: "boom".into(), attempts: 3,
///     first_failure: now, last_failure: now,
/// };
/// assert_eq!(alert.to_string(), "job #4 dead-lettered after 3 attempts: boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterAlert {
    /// The job's id in the pool it failed in.
    pub id: JobId,
    /// The job as the layer's [`label`](DeadLetterQueue::label) describes it (its id by default).
    pub job: String,
    /// The last error, as displayed.
    pub error: String,
    /// How many times the job ran.
    pub attempts: u32,
    /// When it first failed.
    pub first_failure: SystemTime,
    /// When it last failed.
    pub last_failure: SystemTime,
}

impl std::fmt::Display for DeadLetterAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job {} dead-lettered after {} attempts: {}",
            self.job, self.attempts, self.error
        )
    }
}

impl<J, S> DeadLetterQueue<J, S>
where
    J: Send + 'static,
    S: DeadLetterSink<J>,
{
    /// A layer that dead-letters into `sink`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// let dlq = DeadLetterQueue::<u32, _>::new(MemorySink::new(10)?);
    /// assert_eq!(dlq.stored(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn new(sink: S) -> Self {
        DeadLetterQueue {
            sink,
            label: None,
            on_alert: None,
            stored: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            alerts_panicked: AtomicU64::new(0),
        }
    }

    /// How alerts name the job (its pool id, `#7`, by default). A label that panics
    /// names the job by its id instead and counts in
    /// [`alerts_panicked`](Self::alerts_panicked); the letter is stored all the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// struct Email { to: String }
    /// let dlq = DeadLetterQueue::new(MemorySink::<Email>::new(10)?).label(|job: &Email| job.to.clone());
    /// # let _ = dlq;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn label(mut self, label: impl Fn(&J) -> String + Send + Sync + 'static) -> Self {
        self.label = Some(Box::new(label));
        self
    }

    /// Calls `on_alert` for every letter the sink kept, after it kept it, on the worker
    /// that ran the job: keep it short. A panic in it is caught and counted in
    /// [`alerts_panicked`](Self::alerts_panicked); the letter stays stored.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// let dlq = DeadLetterQueue::new(MemorySink::<u32>::new(10)?)
    ///     .on_alert(|alert| eprintln!("*** DLQ ALERT: {alert} ***"));
    /// # let _ = dlq;
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn on_alert(mut self, on_alert: impl Fn(&DeadLetterAlert) + Send + Sync + 'static) -> Self {
        self.on_alert = Some(Box::new(on_alert));
        self
    }

    /// Sends an alert for every letter kept to `alerts` (the seeds' monitored DLQ channel).
    /// Replaces any [`on_alert`](Self::on_alert) callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// let (alerts, monitor) = mpsc::channel();
    /// let dlq = DeadLetterQueue::new(MemorySink::<u32>::new(10)?).alerts_to(alerts);
    /// drop(dlq);
    /// assert!(monitor.recv().is_err()); // the layer (and its sender) is gone
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn alerts_to(self, alerts: mpsc::Sender<DeadLetterAlert>) -> Self {
        let alerts = Mutex::new(alerts);
        self.on_alert(move |alert| {
            // A monitor that hung up no longer wants alerts; the letter is kept regardless.
            let _ = alerts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(alert.clone());
        })
    }

    /// The sink letters go to.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// let dlq = DeadLetterQueue::<u32, _>::new(MemorySink::new(10)?);
    /// assert!(dlq.sink().is_empty());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Letters the sink kept so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// assert_eq!(DeadLetterQueue::<u32, _>::new(MemorySink::new(1)?).stored(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Letters the sink refused so far (their jobs ended as failed).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// assert_eq!(DeadLetterQueue::<u32, _>::new(MemorySink::new(1)?).refused(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// How many alerts panicked, in the [`label`](Self::label) or in the
    /// [`on_alert`](Self::on_alert) callback (once per letter). Their letters were stored all
    /// the same, and their jobs ended dead-lettered.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    /// assert_eq!(DeadLetterQueue::<u32, _>::new(MemorySink::new(1)?).alerts_panicked(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn alerts_panicked(&self) -> u64 {
        self.alerts_panicked.load(Ordering::Relaxed)
    }

    /// The alert for `letter`, and whether its label panicked (the alert then names the
    /// job by its id). Taken before the sink takes the letter, which owns the job from then
    /// on; a panicking label must not keep the letter from the sink.
    fn alert_for(&self, letter: &DeadLetter<J>) -> (DeadLetterAlert, bool) {
        let label = self
            .label
            .as_ref()
            .map(|label| catch_unwind(AssertUnwindSafe(|| label(&letter.job))).map_err(drop));
        let (job, label_panicked) = match label {
            Some(Ok(label)) => (label, false),
            Some(Err(())) => (letter.id.to_string(), true),
            None => (letter.id.to_string(), false),
        };
        let alert = DeadLetterAlert {
            id: letter.id,
            job,
            error: letter.error.clone(),
            attempts: letter.attempts,
            first_failure: letter.first_failure,
            last_failure: letter.last_failure,
        };
        (alert, label_panicked)
    }
}

impl<J, E, S> Middleware<J, E> for DeadLetterQueue<J, S>
where
    J: Send + 'static,
    E: 'static,
    S: DeadLetterSink<J>,
{
    fn name(&self) -> &'static str {
        "dead-letter"
    }

    fn after_run(&self, _job: &J, run: &RunReport<'_, E>, _now: Instant) -> AfterRun {
        match run.outcome {
            RunOutcome::Failed(_) | RunOutcome::Panicked(_) | RunOutcome::TimedOut(_) => {
                AfterRun::DeadLetter
            }
            // Success, cancellation, and any outcome added later: the run's end stands.
            _ => AfterRun::Done,
        }
    }

    /// A dead letter records when the job failed, never when its run started.
    fn times_runs(&self) -> bool {
        false
    }

    fn sees_successes(&self) -> bool {
        false
    }

    /// No `before_start`: starts need not come here.
    fn sees_starts(&self) -> bool {
        false
    }

    /// No `deadline`: runs start without asking it for one.
    fn sets_deadlines(&self) -> bool {
        false
    }

    /// No `admit`: submits need not come here.
    fn sees_submits(&self) -> bool {
        false
    }

    fn dead_letter(&self, letter: DeadLetter<J>) -> Result<(), DeadLetter<J>> {
        // The alert is prepared before the sink takes the letter (by value, job and all)
        // and sent only once the sink has kept it. The user's callbacks are contained: the
        // letter's fate is the sink's answer alone, whatever the label or the alert do.
        let alert = self.on_alert.as_ref().map(|_| self.alert_for(&letter));
        match self.sink.store(letter) {
            Ok(()) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
                if let (Some(on_alert), Some((alert, label_panicked))) = (&self.on_alert, alert) {
                    let alerted = catch_unwind(AssertUnwindSafe(|| on_alert(&alert)));
                    if label_panicked || alerted.is_err() {
                        self.alerts_panicked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
            Err(error) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(error.into_letter())
            }
        }
    }
}

impl<J, S: fmt::Debug> fmt::Debug for DeadLetterQueue<J, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("sink", &self.sink)
            .field("stored", &self.stored)
            .field("refused", &self.refused)
            .field("alerts_panicked", &self.alerts_panicked)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySink;

    fn letter(job: u32) -> DeadLetter<u32> {
        let now = SystemTime::now();
        DeadLetter {
            job,
            id: JobId::new(job.into()),
            error: "boom".into(),
            attempts: 3,
            first_failure: now,
            last_failure: now,
        }
    }

    #[test]
    fn a_panicking_alert_leaves_the_letter_stored_and_taken() {
        let sink = MemorySink::new(4).unwrap();
        let dlq = DeadLetterQueue::new(sink.clone()).on_alert(|_| panic!("pager down"));
        let taken = Middleware::<u32, String>::dead_letter(&dlq, letter(7));
        assert!(taken.is_ok(), "the sink kept it: the job is dead-lettered");
        assert_eq!((dlq.stored(), dlq.alerts_panicked()), (1, 1));
        assert_eq!(sink.len(), 1);
    }

    #[test]
    fn a_panicking_label_leaves_the_letter_stored_and_the_alert_named_by_id() {
        let sink = MemorySink::new(4).unwrap();
        let (alerts, monitor) = mpsc::channel();
        let dlq = DeadLetterQueue::new(sink.clone())
            .label(|_: &u32| panic!("label bug"))
            .alerts_to(alerts);
        let taken = Middleware::<u32, String>::dead_letter(&dlq, letter(7));
        assert!(taken.is_ok(), "the sink kept it: the job is dead-lettered");
        assert_eq!(
            (dlq.stored(), dlq.refused(), dlq.alerts_panicked()),
            (1, 0, 1)
        );
        assert_eq!(sink.len(), 1);
        let alert = monitor.try_recv().expect("the alert still goes out");
        assert_eq!(alert.job, JobId::new(7).to_string());
    }

    #[test]
    fn a_panicking_label_of_a_refused_letter_gives_the_letter_back() {
        let sink = MemorySink::new(1).unwrap();
        let dlq = DeadLetterQueue::new(sink.clone())
            .label(|_: &u32| panic!("label bug"))
            .on_alert(|_| {});
        assert!(Middleware::<u32, String>::dead_letter(&dlq, letter(1)).is_ok());
        let refused = Middleware::<u32, String>::dead_letter(&dlq, letter(2)).unwrap_err();
        assert_eq!(refused.job, 2);
        assert_eq!(
            (dlq.stored(), dlq.refused(), dlq.alerts_panicked()),
            (1, 1, 1)
        );
    }

    #[cfg(feature = "retry")]
    #[test]
    fn retry_then_dead_letter_compose_in_order() {
        use crate::{Backoff, Retry};
        use brigade_core::hooks::{AfterRun, Layers};
        use std::time::Duration;

        let sink = MemorySink::new(4).unwrap();
        let layers = Layers::<u32, String>::new()
            .with(
                Retry::builder()
                    .max_attempts(3)
                    .backoff(Backoff::exponential(Duration::from_millis(100)))
                    .build()
                    .unwrap(),
            )
            .with(DeadLetterQueue::new(sink.clone()));
        let now = Instant::now();
        let error = "boom".to_string();
        let run = |attempt| RunReport {
            id: JobId::new(1),
            outcome: RunOutcome::Failed(&error),
            attempt,
            started: now,
            first_failure: Some(now),
        };
        assert_eq!(
            layers.after_run(&1, &run(1), now),
            (AfterRun::RetryAt(now + Duration::from_millis(100)), Some(0))
        );
        assert_eq!(
            layers.after_run(&1, &run(2), now),
            (AfterRun::RetryAt(now + Duration::from_millis(200)), Some(0))
        );
        assert_eq!(
            layers.after_run(&1, &run(3), now),
            (AfterRun::DeadLetter, Some(1))
        );
        assert!(layers.dead_letter(1, letter(1)).is_ok());
        assert_eq!(sink.len(), 1);
    }

    #[test]
    fn alerts_follow_only_kept_letters() {
        let sink = MemorySink::new(1).unwrap();
        let (alerts, monitor) = mpsc::channel();
        let dlq = DeadLetterQueue::new(sink.clone())
            .label(|job: &u32| format!("Job {job}"))
            .alerts_to(alerts);
        let dlq: &dyn Middleware<u32, String> = &dlq;
        assert!(dlq.dead_letter(letter(7)).is_ok());
        // Full: the letter comes back, no alert.
        let refused = dlq.dead_letter(letter(8)).unwrap_err();
        assert_eq!(refused.job, 8);
        let received: Vec<_> = monitor.try_iter().collect();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].job, "Job 7");
        assert_eq!(sink.refused(), 1);
    }

    #[test]
    fn cancelled_and_successful_runs_are_never_dead_lettered() {
        let dlq = DeadLetterQueue::new(MemorySink::<u32>::new(1).unwrap());
        let now = Instant::now();
        for outcome in [RunOutcome::Succeeded, RunOutcome::Cancelled(None)] {
            let run = RunReport::<String> {
                id: JobId::new(1),
                outcome,
                attempt: 1,
                started: now,
                first_failure: None,
            };
            assert_eq!(
                Middleware::<u32, String>::after_run(&dlq, &1, &run, now),
                AfterRun::Done
            );
        }
        let run = RunReport::<String> {
            id: JobId::new(1),
            outcome: RunOutcome::Panicked("p"),
            attempt: 1,
            started: now,
            first_failure: None,
        };
        assert_eq!(
            Middleware::<u32, String>::after_run(&dlq, &1, &run, now),
            AfterRun::DeadLetter
        );
    }
}
