use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use brigade_core::hooks::DeadLetter;
use brigade_core::{ConfigError, Executor, SubmitError};

use super::replay_report::ReplayReport;
use super::sink::{DeadLetterSink, SinkError};

/// A bounded in-memory dead-letter sink: inspect it, drain it, replay it.
///
/// When full it refuses new letters ([`SinkError::Full`]): the letter goes back to the
/// backend and the job ends as failed rather than dead-lettered, so a job is never lost
/// silently and memory stays bounded. [`refused`](Self::refused) counts those.
///
/// A cheap cloneable handle: keep a clone to look at the letters the layer stores.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use brigade_core::JobId;
/// use brigade_core::hooks::DeadLetter;
/// use brigade_middleware::{DeadLetterSink, MemorySink};
///
/// let sink = MemorySink::new(1)?;
/// let now = SystemTime::now();
/// let letter = |job: &'static str| DeadLetter {
///     job, id: JobId::new(1), error: "boom".into(), attempts: 3, first_failure: now, last_failure: now,
/// };
/// assert!(sink.store(letter("a")).is_ok());
/// let refused = sink.store(letter("b")).unwrap_err();
/// assert_eq!(refused.into_letter().job, "b"); // full: the letter comes back
/// assert_eq!(sink.drain()[0].job, "a");
/// assert!(sink.is_empty());
/// # Ok::<(), brigade_core::ConfigError>(())
/// ```
pub struct MemorySink<J> {
    inner: Arc<MemoryInner<J>>,
}

struct MemoryInner<J> {
    capacity: usize,
    letters: Mutex<VecDeque<DeadLetter<J>>>,
    refused: AtomicU64,
}

impl<J: Send + 'static> MemorySink<J> {
    /// A sink holding at most `capacity` letters.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroCapacity`] for a capacity of zero.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::MemorySink::<u8>::new(0).is_err());
    /// ```
    pub fn new(capacity: usize) -> Result<Self, ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        Ok(MemorySink {
            inner: Arc::new(MemoryInner {
                capacity,
                letters: Mutex::new(VecDeque::new()),
                refused: AtomicU64::new(0),
            }),
        })
    }

    fn letters(&self) -> MutexGuard<'_, VecDeque<DeadLetter<J>>> {
        self.inner
            .letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Letters held now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_middleware::MemorySink::<u8>::new(4)?.len(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.letters().len()
    }

    /// Whether it holds no letter.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::MemorySink::<u8>::new(4)?.is_empty());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.letters().is_empty()
    }

    /// The most letters it holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_middleware::MemorySink::<u8>::new(4)?.capacity(), 4);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Letters refused because the sink was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(brigade_middleware::MemorySink::<u8>::new(4)?.refused(), 0);
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Looks at the letters, oldest first, without taking them.
    ///
    /// # Examples
    ///
    /// ```
    /// let sink = brigade_middleware::MemorySink::<u8>::new(4)?;
    /// let errors: Vec<String> = sink.inspect(|letters| letters.iter().map(|l| l.error.clone()).collect());
    /// assert!(errors.is_empty());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn inspect<R>(&self, f: impl FnOnce(&[DeadLetter<J>]) -> R) -> R {
        let mut letters = self.letters();
        f(letters.make_contiguous())
    }

    /// Takes every letter, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::MemorySink::<u8>::new(4)?.drain().is_empty());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn drain(&self) -> Vec<DeadLetter<J>> {
        self.letters().drain(..).collect()
    }

    /// Takes the oldest letter.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_middleware::MemorySink::<u8>::new(4)?.pop().is_none());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn pop(&self) -> Option<DeadLetter<J>> {
        self.letters().pop_front()
    }

    /// Resubmits every letter's job to `pool`, oldest first. A letter leaves the sink only
    /// once the pool accepted its job; a refused one is put back. Letters that arrive
    /// during the replay wait for the next one.
    ///
    /// # Examples
    ///
    /// A job that failed once, replayed ([`JsonlSink::replay`](crate::JsonlSink::replay)
    /// works the same way, from a file):
    ///
    /// ```
    /// use brigade_core::{BoxJob, JobContext, job_fn};
    /// use brigade_middleware::{DeadLetterQueue, MemorySink};
    ///
    /// let sink = MemorySink::new(10)?;
    /// let pool = brigade_thread::BoxPool::<(), String>::builder()
    ///     .workers(1)
    ///     .layer(DeadLetterQueue::new(sink.clone()))
    ///     .build()?;
    /// let mut runs = 0;
    /// let flaky = BoxJob::new(job_fn(move |_| {
    ///     runs += 1;
    ///     if runs == 1 { Err("first run fails".to_string()) } else { Ok(()) }
    /// }));
    /// assert!(pool.submit(flaky).unwrap().join().is_err());
    /// assert_eq!(sink.len(), 1);
    ///
    /// let report = sink.replay(&pool);
    /// assert_eq!((report.replayed.len(), report.kept), (1, 0));
    /// for handle in report.replayed {
    ///     handle.join().unwrap(); // the same job, run again
    /// }
    /// assert!(sink.is_empty());
    /// # Ok::<(), brigade_core::ConfigError>(())
    /// ```
    pub fn replay<P: Executor<J>>(&self, pool: &P) -> ReplayReport<P::Output, P::Error> {
        let mut report = ReplayReport::default();
        let mut kept = Vec::new();
        // Only the letters here now: a replayed job that fails again may come back into
        // this sink while the replay runs, and must wait for the next replay.
        let waiting = self.len();
        for letter in std::iter::from_fn(|| self.pop()).take(waiting) {
            let DeadLetter {
                job,
                id,
                error,
                attempts,
                first_failure,
                last_failure,
            } = letter;
            let put_back = |job| DeadLetter {
                job,
                id,
                error,
                attempts,
                first_failure,
                last_failure,
            };
            match pool.submit(job) {
                Ok(handle) => report.replayed.push(handle),
                Err(SubmitError::Rejected(job, reason)) => {
                    report.rejections.push(reason);
                    kept.push(put_back(job));
                }
                Err(SubmitError::Closed(job)) => {
                    report.closed = true;
                    kept.push(put_back(job));
                    break;
                }
                Err(SubmitError::InAsyncContext(job)) => {
                    report.in_async_context = true;
                    kept.push(put_back(job));
                    break;
                }
            }
        }
        report.kept = waiting - report.replayed.len();
        let mut letters = self.letters();
        // Put the refused letters back in front, in their order, even past the capacity:
        // they were already counted as dead-lettered and must not be lost now.
        for letter in kept.into_iter().rev() {
            letters.push_front(letter);
        }
        report
    }
}

impl<J: Send + 'static> DeadLetterSink<J> for MemorySink<J> {
    fn store(&self, letter: DeadLetter<J>) -> Result<(), SinkError<J>> {
        let mut letters = self.letters();
        if letters.len() >= self.inner.capacity {
            drop(letters);
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return Err(SinkError::Full(letter));
        }
        letters.push_back(letter);
        Ok(())
    }
}

impl<J> Clone for MemorySink<J> {
    fn clone(&self) -> Self {
        MemorySink {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<J> fmt::Debug for MemorySink<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.inner.letters.lock().map_or(0, |letters| letters.len());
        f.debug_struct("MemorySink")
            .field("len", &len)
            .field("capacity", &self.inner.capacity)
            .field("refused", &self.inner.refused)
            .finish()
    }
}
