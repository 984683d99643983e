use std::marker::PhantomData;

use serde::Serialize;

use crate::{EnqueueError, EnqueueOptions, Enqueued, NewJob, Store};

/// The producer side of one queue for one job type: enqueue typed jobs, one at a time or
/// in batches, with options and an optional depth cap.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(store: impl brigade_queue::Store) -> Result<(), Box<dyn std::error::Error>> {
/// use brigade_queue::{EnqueueOptions, Queue};
///
/// #[derive(serde::Serialize)]
/// struct Email {
///     to: String,
/// }
///
/// let emails = Queue::<_, Email>::new(store, "emails").max_depth(100_000);
/// let first = emails.enqueue(Email { to: "a@example.test".into() }).await?;
/// let later = emails
///     .enqueue_with(Email { to: "b@example.test".into() }, EnqueueOptions::new().priority(5))
///     .await?;
/// assert_ne!(first.id, later.id);
/// # Ok(())
/// # }
/// ```
pub struct Queue<S, T> {
    store: S,
    name: String,
    max_depth: Option<u64>,
    defaults: EnqueueOptions,
    job: PhantomData<fn(T)>,
}

impl<S: Clone, T> Clone for Queue<S, T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            name: self.name.clone(),
            max_depth: self.max_depth,
            defaults: self.defaults.clone(),
            job: PhantomData,
        }
    }
}

impl<S, T> std::fmt::Debug for Queue<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

impl<S: Store, T: Serialize> Queue<S, T> {
    /// The queue `name` in `store`, with no depth cap.
    ///
    /// # Examples
    ///
    /// See [`Queue`].
    #[must_use]
    pub fn new(store: S, name: impl Into<String>) -> Self {
        Self {
            store,
            name: name.into(),
            max_depth: None,
            defaults: EnqueueOptions::new(),
            job: PhantomData,
        }
    }

    /// Refuses an enqueue when the queue already holds `depth` live (waiting or running)
    /// jobs: backpressure at the producer, with the job handed back.
    ///
    /// # Examples
    ///
    /// See [`Queue`].
    #[must_use]
    pub fn max_depth(mut self, depth: u64) -> Self {
        self.max_depth = Some(depth);
        self
    }

    /// Options used by [`Queue::enqueue`] and [`Queue::enqueue_batch`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: impl brigade_queue::Store) {
    /// use brigade_queue::{EnqueueOptions, Queue};
    /// let reports = Queue::<_, u64>::new(store, "reports").defaults(EnqueueOptions::new().max_attempts(3));
    /// # }
    /// ```
    #[must_use]
    pub fn defaults(mut self, options: EnqueueOptions) -> Self {
        self.defaults = options;
        self
    }

    /// The queue's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: impl brigade_queue::Store) {
    /// assert_eq!(brigade_queue::Queue::<_, u64>::new(store, "q").name(), "q");
    /// # }
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store behind it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: impl brigade_queue::Store) {
    /// let queue = brigade_queue::Queue::<_, u64>::new(store, "q");
    /// let _same_store = queue.store().clone();
    /// # }
    /// ```
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The job as the store receives it: encoded, with `options` and this queue's cap.
    ///
    /// # Errors
    ///
    /// The job back, with the encoding error, when it does not serialize.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(store: impl brigade_queue::Store) {
    /// use brigade_queue::{EnqueueOptions, Queue};
    /// let queue = Queue::<_, u64>::new(store, "q").max_depth(10);
    /// let job = queue.encode(&7, EnqueueOptions::new()).unwrap();
    /// assert_eq!(job.max_depth(), Some(10));
    /// # }
    /// ```
    pub fn encode(&self, job: &T, options: EnqueueOptions) -> Result<NewJob, serde_json::Error> {
        let payload = serde_json::to_value(job)?;
        Ok(NewJob::new(self.name.clone(), payload)
            .with_options(options)
            .with_max_depth(self.max_depth))
    }

    /// Enqueues `job` with the queue's default options.
    ///
    /// # Errors
    ///
    /// The job handed back: [`EnqueueError::Full`] at the depth cap,
    /// [`EnqueueError::Encode`] when it does not serialize, [`EnqueueError::Store`] when the
    /// store failed.
    ///
    /// # Examples
    ///
    /// See [`Queue`].
    pub async fn enqueue(&self, job: T) -> Result<Enqueued, EnqueueError<T>> {
        let options = self.defaults.clone();
        self.enqueue_with(job, options).await
    }

    /// Enqueues `job` with `options`.
    ///
    /// # Errors
    ///
    /// As [`Queue::enqueue`].
    ///
    /// # Examples
    ///
    /// See [`Queue`].
    pub async fn enqueue_with(
        &self,
        job: T,
        options: EnqueueOptions,
    ) -> Result<Enqueued, EnqueueError<T>> {
        let new_job = match self.encode(&job, options) {
            Ok(new_job) => new_job,
            Err(error) => return Err(EnqueueError::Encode(job, error)),
        };
        self.store
            .enqueue(new_job)
            .await
            .map_err(|error| error.map(|_| job))
    }

    /// Enqueues every job in one step: all are kept or none is.
    ///
    /// # Errors
    ///
    /// As [`Queue::enqueue`], with every job handed back.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(store: impl brigade_queue::Store) -> Result<(), Box<dyn std::error::Error>> {
    /// let squares = brigade_queue::Queue::<_, u64>::new(store, "squares");
    /// let enqueued = squares.enqueue_batch((1..=100).collect()).await?;
    /// assert_eq!(enqueued.len(), 100);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue_batch(&self, jobs: Vec<T>) -> Result<Vec<Enqueued>, EnqueueError<Vec<T>>> {
        let mut encoded = Vec::with_capacity(jobs.len());
        for job in &jobs {
            match self.encode(job, self.defaults.clone()) {
                Ok(new_job) => encoded.push(new_job),
                Err(error) => return Err(EnqueueError::Encode(jobs, error)),
            }
        }
        self.store
            .enqueue_batch(encoded)
            .await
            .map_err(|error| error.map(|_| jobs))
    }
}
