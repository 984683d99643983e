use crate::backend::{Completer, JobHandles, ResultSlot, job_errors};
use crate::{Attempts, CancellationToken, JobHandle, JobId, JobResult};

/// Where a job's result goes: its handle, its turn in a bulk run's ordered results
/// (`map`), or nowhere (`execute`). The detached variant carries only the id and the slot
/// only a reference to a cell made for the whole run, so a job run without a handle
/// allocates nothing of its own.
///
/// # Examples
///
/// ```
/// use brigade_core::backend::Done;
/// use brigade_core::{CancellationToken, JobHandle, JobId};
/// use brigade_core::backend::job_handle;
///
/// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
/// let done = Done::Handle(completer);
/// assert_eq!(done.id(), JobId::new(1));
/// done.deliver(Ok(5));
/// assert_eq!(handle.join().unwrap(), 5);
/// ```
pub enum Done<T, E> {
    /// A handle waits for the result.
    Handle(Completer<T, E>),
    /// A bulk run takes the result in its turn, through
    /// [`OrderedResults`](super::OrderedResults).
    Slot(ResultSlot<T, E>),
    /// Nobody waits: the result is dropped.
    Detached(JobId),
}

impl<T: Send + 'static, E: Send + 'static> Done<T, E> {
    /// The job's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// use brigade_core::backend::Done;
    ///
    /// assert_eq!(Done::<(), ()>::Detached(JobId::new(3)).id(), JobId::new(3));
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        match self {
            Done::Handle(completer) => completer.id(),
            Done::Slot(slot) => slot.id(),
            Done::Detached(id) => *id,
        }
    }

    /// Whether the job was cancelled: through its handle, or with the pool for a job without
    /// one (a bulk run's jobs are cancelled only with the pool).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobId};
    /// use brigade_core::backend::Done;
    ///
    /// let pool = CancellationToken::new();
    /// let done = Done::<(), ()>::Detached(JobId::new(1));
    /// pool.cancel();
    /// assert!(done.is_cancelled(&pool));
    /// ```
    #[must_use]
    pub fn is_cancelled(&self, pool_token: &CancellationToken) -> bool {
        self.is_cancelled_or(|| pool_token.is_cancelled())
    }

    /// [`is_cancelled`](Self::is_cancelled), asking `pool_cancelled` for a job without a
    /// handle: the driver reads its own token's state without a virtual call.
    #[inline]
    pub(crate) fn is_cancelled_or(&self, pool_cancelled: impl FnOnce() -> bool) -> bool {
        match self {
            Done::Handle(completer) => completer.is_cancelled(),
            Done::Slot(_) | Done::Detached(_) => pool_cancelled(),
        }
    }

    /// The job's token: its handle's, or the pool's for a job without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobId};
    /// use brigade_core::backend::Done;
    ///
    /// let pool = CancellationToken::new();
    /// let token = Done::<(), ()>::Detached(JobId::new(1)).token(&pool);
    /// pool.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self, pool_token: &CancellationToken) -> CancellationToken {
        match self {
            Done::Handle(completer) => completer.token(),
            Done::Slot(_) | Done::Detached(_) => pool_token.clone(),
        }
    }

    /// Delivers the result, if anyone is listening.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// use brigade_core::backend::Done;
    ///
    /// Done::<u8, ()>::Detached(JobId::new(1)).deliver(Ok(1)); // dropped
    /// ```
    pub fn deliver(self, result: JobResult<T, E>) {
        match self {
            Done::Handle(completer) => completer.complete(result),
            Done::Slot(slot) => slot.deliver(result),
            Done::Detached(_) => drop(result),
        }
    }
}

/// What a submit asks for its job's result, before the pool accepts the job and gives it
/// an id: a handle, a turn in a bulk run's ordered results, or nothing (`execute`).
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobId};
/// use brigade_core::backend::{JobHandles, Reply};
///
/// let handles = JobHandles::new(&CancellationToken::new());
/// let (handle, done) = Reply::<u8, ()>::Handle.accept(JobId::new(4), &handles);
/// assert_eq!(done.id(), JobId::new(4));
/// done.deliver(Ok(2));
/// assert_eq!(handle.unwrap().join().unwrap(), 2);
/// ```
pub enum Reply<T, E> {
    /// A [`JobHandle`] for the submitter.
    Handle,
    /// The job's turn in a bulk run.
    Slot(ResultSlot<T, E>),
    /// Nobody waits for the result.
    Detached,
}

impl<T: Send + 'static, E: Send + 'static> Reply<T, E> {
    /// Where the result of the job accepted as `id` goes, and its handle when one was asked
    /// for: the only allocation a submit makes for its result, a handle's cell, made with
    /// the pool's `handles`.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobId};
    /// use brigade_core::backend::{JobHandles, Reply};
    ///
    /// let handles = JobHandles::new(&CancellationToken::new());
    /// let (handle, done) = Reply::<(), ()>::Detached.accept(JobId::new(1), &handles);
    /// assert!(handle.is_none());
    /// assert_eq!(done.id(), JobId::new(1));
    /// ```
    #[must_use]
    pub fn accept(
        self,
        id: JobId,
        handles: &JobHandles<T, E>,
    ) -> (Option<JobHandle<T, E>>, Done<T, E>) {
        match self {
            Reply::Handle => {
                let (handle, completer) = handles.make(id);
                (Some(handle), Done::Handle(completer))
            }
            Reply::Slot(slot) => {
                slot.bind(id);
                (None, Done::Slot(slot))
            }
            Reply::Detached => (None, Done::Detached(id)),
        }
    }
}

impl<T, E> std::fmt::Debug for Reply<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Handle => f.write_str("Reply::Handle"),
            Reply::Slot(_) => f.write_str("Reply::Slot"),
            Reply::Detached => f.write_str("Reply::Detached"),
        }
    }
}

/// A job a pool accepted, with where its result goes and its runs so far: what travels
/// through a backend's queues.
///
/// # Examples
///
/// ```
/// use brigade_core::JobId;
/// use brigade_core::backend::{Done, Task};
///
/// let task = Task::new("resize photo", Done::<(), String>::Detached(JobId::new(1)));
/// assert_eq!(task.attempts.next(), 1);
/// assert_eq!(task.id(), JobId::new(1));
/// ```
pub struct Task<J, T, E> {
    /// The job.
    pub job: J,
    /// Where its result goes.
    pub done: Done<T, E>,
    /// Its runs so far, and whether the layers already granted its next start.
    pub attempts: Attempts,
    /// When the pool accepted it, for the queue-wait histogram.
    #[cfg(feature = "metrics")]
    pub(crate) submitted_at: super::metrics::Stamp,
}

impl<J, T: Send + 'static, E: Send + 'static> Task<J, T, E> {
    /// A job that has not run yet. With the `metrics` feature it also notes the time, as
    /// the job's submit (for the queue-wait histogram): make it when the job is accepted.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// use brigade_core::backend::{Done, Task};
    ///
    /// let task = Task::new(7u8, Done::<(), ()>::Detached(JobId::new(2)));
    /// assert_eq!(task.job, 7);
    /// ```
    pub fn new(job: J, done: Done<T, E>) -> Self {
        Task {
            job,
            done,
            attempts: Attempts::default(),
            #[cfg(feature = "metrics")]
            submitted_at: super::metrics::stamp(),
        }
    }

    /// The job's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// use brigade_core::backend::{Done, Task};
    ///
    /// assert_eq!(Task::new((), Done::<(), ()>::Detached(JobId::new(4))).id(), JobId::new(4));
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.done.id()
    }

    /// Ends the job unstarted as [`Returned`](crate::ErrorKind::Returned) and gives the job
    /// back (for a shutdown report). Counting it is the caller's business; see
    /// [`JobDriver::hand_back`](super::JobDriver::hand_back).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobHandle, JobId};
    /// use brigade_core::backend::{Done, Task};
    /// use brigade_core::backend::job_handle;
    ///
    /// let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// assert_eq!(Task::new("job", Done::Handle(completer)).return_unstarted(), "job");
    /// assert!(handle.join().unwrap_err().is_returned());
    /// ```
    pub fn return_unstarted(self) -> J {
        let runs = self.attempts.ran();
        self.done.deliver(Err(job_errors::returned(runs)));
        self.job
    }
}

impl<T, E> std::fmt::Debug for Done<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Handle(_) => f.write_str("Done::Handle"),
            Done::Slot(slot) => f.debug_tuple("Done::Slot").field(&slot.id()).finish(),
            Done::Detached(id) => f.debug_tuple("Done::Detached").field(id).finish(),
        }
    }
}

impl<J, T, E> std::fmt::Debug for Task<J, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("done", &self.done)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(feature = "metrics")))]
mod tests {
    use super::*;

    /// What a queue slot holds for every job beyond the job itself (the metrics' submit
    /// stamp aside): where its result goes (the handle's cell or the id, and which) and
    /// its attempts, three words.
    #[test]
    fn a_task_is_its_job_and_three_words() {
        assert_eq!(
            std::mem::size_of::<Task<[u64; 3], u64, String>>(),
            24 + 3 * 8
        );
    }
}
