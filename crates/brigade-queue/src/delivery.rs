use std::sync::Arc;
use std::time::SystemTime;

use brigade_core::{CancellationToken, JobContext};

use crate::DurableId;

/// What a handler knows about the run it was given: which job, which run of how many, and
/// the run's cancellation token.
///
/// The token is cancelled when the worker shuts down past its grace period, when the lease
/// is lost (an operator cancelled the job, or the worker could not renew the lease and
/// fenced itself off before it expired), or by a local timeout layer. A handler that checks
/// it stops a run whose end would be refused anyway.
///
/// # Examples
///
/// ```
/// use brigade_queue::{Delivery, DurableId};
///
/// let delivery = Delivery::detached(DurableId::new(9), "emails", 2, 5);
/// assert_eq!(delivery.attempt(), 2);
/// assert!(!delivery.is_last_attempt());
/// assert!(!delivery.is_cancelled());
/// ```
#[derive(Clone, Debug)]
pub struct Delivery {
    id: DurableId,
    queue: Arc<str>,
    attempt: u32,
    max_attempts: u32,
    enqueued_at: SystemTime,
    cx: JobContext,
}

impl Delivery {
    pub(crate) fn new(
        id: DurableId,
        queue: Arc<str>,
        attempt: u32,
        max_attempts: u32,
        enqueued_at: SystemTime,
        cx: JobContext,
    ) -> Self {
        Self {
            id,
            queue,
            attempt,
            max_attempts,
            enqueued_at,
            cx,
        }
    }

    /// A delivery outside any worker, for calling a handler in a test.
    ///
    /// # Examples
    ///
    /// See [`Delivery`].
    #[must_use]
    pub fn detached(id: DurableId, queue: &str, attempt: u32, max_attempts: u32) -> Self {
        Self::new(
            id,
            queue.into(),
            attempt,
            max_attempts,
            SystemTime::now(),
            JobContext::detached(),
        )
    }

    /// The job's id in the store.
    ///
    /// # Examples
    ///
    /// See [`Delivery`].
    #[must_use]
    pub fn id(&self) -> DurableId {
        self.id
    }

    /// The queue it came from.
    ///
    /// # Examples
    ///
    /// ```
    /// let delivery = brigade_queue::Delivery::detached(brigade_queue::DurableId::new(1), "q", 1, 1);
    /// assert_eq!(delivery.queue(), "q");
    /// ```
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Which run this is, from 1; runs whose lease expired count.
    ///
    /// # Examples
    ///
    /// See [`Delivery`].
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The most runs the job gets.
    ///
    /// # Examples
    ///
    /// ```
    /// let delivery = brigade_queue::Delivery::detached(brigade_queue::DurableId::new(1), "q", 1, 3);
    /// assert_eq!(delivery.max_attempts(), 3);
    /// ```
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure now ends the job dead.
    ///
    /// # Examples
    ///
    /// See [`Delivery`].
    #[must_use]
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// When the store accepted the job.
    ///
    /// # Examples
    ///
    /// ```
    /// let delivery = brigade_queue::Delivery::detached(brigade_queue::DurableId::new(1), "q", 1, 1);
    /// assert!(delivery.enqueued_at() <= std::time::SystemTime::now());
    /// ```
    #[must_use]
    pub fn enqueued_at(&self) -> SystemTime {
        self.enqueued_at
    }

    /// The local pool's context for this run (its token, its deadline if a timeout layer
    /// set one).
    ///
    /// # Examples
    ///
    /// ```
    /// let delivery = brigade_queue::Delivery::detached(brigade_queue::DurableId::new(1), "q", 1, 1);
    /// assert!(delivery.context().deadline().is_none());
    /// ```
    #[must_use]
    pub fn context(&self) -> &JobContext {
        &self.cx
    }

    /// The run's cancellation token.
    ///
    /// # Examples
    ///
    /// ```
    /// let delivery = brigade_queue::Delivery::detached(brigade_queue::DurableId::new(1), "q", 1, 1);
    /// assert!(!delivery.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        self.cx.token()
    }

    /// Whether the run should stop.
    ///
    /// # Examples
    ///
    /// See [`Delivery`].
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cx.is_cancelled()
    }
}
