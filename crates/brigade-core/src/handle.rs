use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::backend::job_errors;
use crate::cancel::cancel_job;
use crate::completions::Inbox;
use crate::job_cell::{CellFactory, Listener, TypedCell};
use crate::sync::park;
use crate::thread_waker::current_thread_waker;
use crate::{CancellationToken, JobError, JobId};

/// The result of a job, once it has one.
pub type JobResult<T, E> = Result<T, JobError<E>>;

/// The caller's side of one submitted job: wait for its result, or cancel it.
///
/// Wait by blocking ([`join`](Self::join), [`join_timeout`](Self::join_timeout),
/// [`try_join`](Self::try_join)) or by `.await`ing the handle; the same type serves threads
/// and async code. Dropping a handle neither cancels the job nor leaks it: the job runs and
/// is counted as usual, and its result is dropped.
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobHandle, JobId};
/// use brigade_core::backend::job_handle;
///
/// let pool_token = CancellationToken::new();
/// let (handle, completer) = job_handle::<u32, String>(JobId::new(1), &pool_token);
/// std::thread::spawn(move || completer.complete(Ok(42)));
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
#[must_use = "dropping a handle discards the job's result (the job still runs)"]
pub struct JobHandle<T, E> {
    cell: TypedCell<T, E>,
}

/// The pool's side of one submitted job: where its result goes. A backend keeps it with the
/// job and calls [`complete`](Self::complete) exactly once.
///
/// Dropping it without completing resolves the handle as [`ErrorKind::Returned`]
/// (the job was handed back unstarted).
///
/// [`ErrorKind::Returned`]: crate::ErrorKind::Returned
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobHandle, JobId};
/// use brigade_core::backend::job_handle;
///
/// let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
/// drop(completer);
/// assert!(handle.join().unwrap_err().is_returned());
/// ```
pub struct Completer<T, E> {
    cell: Option<TypedCell<T, E>>,
}

/// Makes the handles of one pool's jobs, whose tokens are children of the pool's token: a
/// backend makes one when it builds the pool, and each handle from it costs one allocation
/// of four words (for a result of up to two words).
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobId};
/// use brigade_core::backend::JobHandles;
///
/// let pool = CancellationToken::new();
/// let handles = JobHandles::<u8, ()>::new(&pool);
/// let (handle, completer) = handles.make(JobId::new(1));
/// pool.cancel();
/// assert!(completer.is_cancelled());
/// completer.complete(Ok(3));
/// assert_eq!(handle.join().unwrap(), 3);
/// ```
pub struct JobHandles<T, E> {
    cells: CellFactory<T, E>,
}

impl<T: Send + 'static, E: Send + 'static> JobHandles<T, E> {
    /// Handles whose jobs' tokens are children of `pool_token`.
    ///
    /// # Examples
    ///
    /// ```
    /// let handles = brigade_core::backend::JobHandles::<(), ()>::new(
    ///     &brigade_core::CancellationToken::new(),
    /// );
    /// # drop(handles);
    /// ```
    #[must_use]
    pub fn new(pool_token: &CancellationToken) -> Self {
        JobHandles {
            cells: CellFactory::new(pool_token),
        }
    }

    /// The two ends of job `id`'s result: the [`JobHandle`] the submitter gets and the
    /// [`Completer`] the backend keeps with the job.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::{CancellationToken, JobId};
    /// use brigade_core::backend::JobHandles;
    ///
    /// let handles = JobHandles::<u8, ()>::new(&CancellationToken::new());
    /// let (handle, completer) = handles.make(JobId::new(7));
    /// assert_eq!((handle.id(), completer.id()), (JobId::new(7), JobId::new(7)));
    /// ```
    pub fn make(&self, id: JobId) -> (JobHandle<T, E>, Completer<T, E>) {
        let (handle, completer) = self.cells.make(id);
        (
            JobHandle { cell: handle },
            Completer {
                cell: Some(completer),
            },
        )
    }
}

impl<T, E> Clone for JobHandles<T, E> {
    fn clone(&self) -> Self {
        JobHandles {
            cells: self.cells.clone(),
        }
    }
}

impl<T, E> fmt::Debug for JobHandles<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandles").finish_non_exhaustive()
    }
}

/// Makes the two ends of job `id`'s result, whose token is a child of `pool_token`: the
/// [`JobHandle`] the submitter gets and the [`Completer`] the backend keeps with the job.
///
/// For one job on its own: a pool makes its handles with [`JobHandles`], which shares
/// what a pool's handles have in common.
///
/// # Examples
///
/// ```
/// use brigade_core::{CancellationToken, JobHandle, JobId};
/// use brigade_core::backend::job_handle;
///
/// let pool = CancellationToken::new();
/// let (handle, completer) = job_handle::<u8, ()>(JobId::new(9), &pool);
/// pool.cancel();
/// assert!(completer.token().is_cancelled());
/// # drop((handle, completer));
/// ```
pub fn job_handle<T: Send + 'static, E: Send + 'static>(
    id: JobId,
    pool_token: &CancellationToken,
) -> (JobHandle<T, E>, Completer<T, E>) {
    JobHandles::new(pool_token).make(id)
}

impl<T: Send + 'static, E: Send + 'static> JobHandle<T, E> {
    /// The job's token: cancelled by [`cancel`](Self::cancel) or by the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, _completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// assert!(!handle.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        CancellationToken::of_job(self.cell.erased().clone())
    }
}

impl<T, E> JobHandle<T, E> {
    /// The job's id in its pool.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, _completer) = job_handle::<(), ()>(JobId::new(4), &CancellationToken::new());
    /// assert_eq!(handle.id(), JobId::new(4));
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.cell.id()
    }

    /// Asks the job to stop: if it has not started it never will (it ends
    /// [`Cancelled`](crate::ErrorKind::Cancelled)); if it is running its token is cancelled
    /// and it stops when it next looks. A finished job is not affected.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// handle.cancel();
    /// assert!(completer.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        cancel_job(self.cell.erased());
    }

    /// Whether the job has reached its terminal state.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// assert!(!handle.is_finished());
    /// completer.complete(Ok(()));
    /// assert!(handle.is_finished());
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.cell.erased().is_finished()
    }

    /// Blocks until the job ends and returns its result.
    ///
    /// # Errors
    ///
    /// A [`JobError`] when the job failed, panicked, was cancelled, dead-lettered, dropped or
    /// handed back at shutdown.
    ///
    /// # Panics
    ///
    /// If the handle was awaited to its result first: the result is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId, JobError};
    /// # use brigade_core::backend::job_handle;
    /// use brigade_core::backend::job_errors;
    /// let (handle, completer) = job_handle::<(), &str>(JobId::new(1), &CancellationToken::new());
    /// completer.complete(Err(job_errors::failed("no", 1)));
    /// assert_eq!(handle.join().unwrap_err().into_error(), Some("no"));
    /// ```
    pub fn join(self) -> JobResult<T, E> {
        // A brief, bounded spin first: a short job ends before a futex round trip would.
        let backoff = Backoff::new();
        while !cfg!(brigade_loom) && !self.is_finished() && !backoff.is_completed() {
            backoff.snooze();
        }
        // A completer always delivers before it lets go of the cell: once it has, this
        // handle holds the cell alone and takes the result without the lock (a join that
        // comes after its job, as most do, spares the lock's two atomic writes).
        let cell = match self.cell.try_take_alone() {
            Ok(result) => return result,
            Err(shared) => shared,
        };
        // Made only when the result is not there: most joins after the spin need none.
        let mut waker = None;
        loop {
            let mut slot = cell.lock();
            if let Some(result) = slot.take_done() {
                return result;
            }
            let replaced = slot.wake_on_delivery(waker.get_or_insert_with(current_thread_waker));
            drop(slot);
            drop(replaced);
            // Delivery unparks after it stored the result: an unpark before this park
            // makes it return at once, and an early return only loops.
            park();
        }
    }

    /// Blocks for at most `timeout`; gives the handle back if the job has not ended by then.
    ///
    /// # Errors
    ///
    /// `Err(self)` when the job is still queued or running at the timeout.
    ///
    /// # Panics
    ///
    /// If the handle was awaited to its result first: the result is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// let handle = handle.join_timeout(Duration::from_millis(1)).unwrap_err();
    /// completer.complete(Ok(5));
    /// assert_eq!(handle.join_timeout(Duration::from_secs(1)).ok().unwrap().unwrap(), 5);
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<JobResult<T, E>, Self> {
        let deadline = Instant::now().checked_add(timeout);
        let mut waker = None;
        loop {
            let mut slot = self.cell.lock();
            if let Some(result) = slot.take_done() {
                return Ok(result);
            }
            let remaining = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            if remaining.is_some_and(|left| left.is_zero()) {
                // Nobody is to be unparked for this wait any more.
                let forgotten = slot.forget_waker();
                drop(slot);
                drop(forgotten);
                return Err(self);
            }
            let replaced = slot.wake_on_delivery(waker.get_or_insert_with(current_thread_waker));
            drop(slot);
            drop(replaced);
            match remaining {
                Some(left) => std::thread::park_timeout(left),
                None => park(),
            }
        }
    }

    /// Returns the result if the job has ended, or the handle back if not, without blocking.
    ///
    /// # Errors
    ///
    /// `Err(self)` when the job is still queued or running.
    ///
    /// # Panics
    ///
    /// If the handle was awaited to its result first: the result is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// let handle = handle.try_join().unwrap_err();
    /// completer.complete(Ok(5));
    /// assert_eq!(handle.try_join().ok().unwrap().unwrap(), 5);
    /// ```
    pub fn try_join(self) -> Result<JobResult<T, E>, Self> {
        let result = self.cell.lock().take_done();
        result.ok_or(self)
    }

    /// Sends this handle's [`key`](Self::key) to `inbox` when the job ends (at once if it
    /// already has).
    pub(crate) fn notify(&self, inbox: &Arc<Inbox>) {
        let mut slot = self.cell.lock();
        let replaced = slot.notify(Arc::clone(inbox));
        drop(slot);
        // A waker an earlier poll left is dropped after the lock, like every waker.
        if replaced.is_err() {
            inbox.push(self.key());
        }
    }

    /// What tells this handle apart from every other live one, whatever pool it came
    /// from (ids are per pool): its cell's address.
    pub(crate) fn key(&self) -> usize {
        self.cell.erased().address()
    }
}

/// Awaiting a handle waits for the job without blocking a thread.
///
/// # Panics
///
/// Polling again after the handle returned its result panics, as for most futures.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future is dropping the handle; the job keeps running.
impl<T, E> Future for JobHandle<T, E> {
    type Output = JobResult<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.cell.lock();
        if !slot.is_pending() {
            return Poll::Ready(
                slot.take_done()
                    .expect("JobHandle polled after it returned its result"),
            );
        }
        let replaced = slot.wake_on_delivery(cx.waker());
        drop(slot);
        drop(replaced);
        Poll::Pending
    }
}

impl<T, E> fmt::Debug for JobHandle<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.cell.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T: Send + 'static, E: Send + 'static> Completer<T, E> {
    /// The job's cancellation token, for its [`JobContext`](crate::JobContext).
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// handle.cancel();
    /// assert!(completer.token().is_cancelled());
    /// ```
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        CancellationToken::of_job(self.cell().erased().clone())
    }
}

impl<T, E> Completer<T, E> {
    fn cell(&self) -> &TypedCell<T, E> {
        self.cell
            .as_ref()
            .expect("a completer holds its cell until it completes")
    }

    /// The job's id.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (_handle, completer) = job_handle::<(), ()>(JobId::new(2), &CancellationToken::new());
    /// assert_eq!(completer.id(), JobId::new(2));
    /// ```
    #[must_use]
    pub fn id(&self) -> JobId {
        self.cell().id()
    }

    /// Whether the job's token (or the pool's) was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (_handle, completer) = job_handle::<(), ()>(JobId::new(1), &CancellationToken::new());
    /// assert!(!completer.is_cancelled());
    /// ```
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cell().erased().is_cancelled()
    }

    /// Delivers the job's result to its handle and wakes whoever waits on it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use brigade_core::{CancellationToken, JobHandle, JobId};
    /// # use brigade_core::backend::job_handle;
    /// let (handle, completer) = job_handle::<u8, ()>(JobId::new(1), &CancellationToken::new());
    /// completer.complete(Ok(1));
    /// assert_eq!(handle.join().unwrap(), 1);
    /// ```
    pub fn complete(mut self, result: JobResult<T, E>) {
        if let Some(cell) = self.cell.take() {
            deliver(&cell, result);
        }
    }
}

fn deliver<T, E>(cell: &TypedCell<T, E>, result: JobResult<T, E>) {
    let listener = cell.lock().deliver(result);
    match listener {
        Some(Listener::Waker(waker)) => waker.wake(),
        Some(Listener::Inbox(inbox)) => inbox.push(cell.erased().address()),
        None => {}
    }
}

impl<T, E> Drop for Completer<T, E> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            deliver(&cell, Err(job_errors::returned(0)));
        }
    }
}

impl<T, E> fmt::Debug for Completer<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer")
            .field("id", &self.cell.as_ref().map(TypedCell::id))
            .finish()
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use std::task::Waker;
    use std::thread;

    use super::*;
    use crate::cancel::tests::CancelsOnDrop;

    #[test]
    fn a_blocked_join_wakes_when_the_job_completes() {
        for _ in 0..50 {
            let (handle, completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let finisher = thread::spawn(move || {
                thread::sleep(Duration::from_millis(1));
                completer.complete(Ok(9));
            });
            assert_eq!(handle.join(), Ok(9));
            finisher.join().unwrap();
        }
    }

    /// A join after the completer let go holds the cell alone and skips the lock; a token
    /// of the job still held elsewhere shares the cell, and the join takes the lock.
    #[test]
    fn a_join_takes_the_result_whether_or_not_a_token_shares_the_cell() {
        for keep_token in [false, true] {
            let (handle, completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let token = keep_token.then(|| handle.token());
            completer.complete(Ok(3));
            assert_eq!(handle.join(), Ok(3));
            drop(token);
        }
    }

    #[test]
    #[should_panic(expected = "JobHandle used after it returned its result")]
    fn a_handle_awaited_to_its_result_then_joined_panics() {
        let (mut handle, completer) =
            job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
        completer.complete(Ok(1));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(Pin::new(&mut handle).poll(&mut cx), Poll::Ready(Ok(1)));
        let _ = handle.join();
    }

    #[test]
    fn a_join_after_a_poll_is_the_one_woken() {
        let (mut handle, completer) =
            job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
        let finisher = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            completer.complete(Ok(5));
        });
        // Bounded, so that a wake-up going to the poll's waker fails instead of hanging.
        assert_eq!(
            handle.join_timeout(Duration::from_secs(30)).ok(),
            Some(Ok(5))
        );
        finisher.join().unwrap();
    }

    /// A replaced waker whose drop cancels the job must be dropped after the handle's poll
    /// let go of the slot's lock.
    #[test]
    fn a_replaced_waker_is_dropped_outside_the_cell_lock() {
        let (finished_tx, finished_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let (mut handle, _completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let cancels = Waker::from(Arc::new(CancelsOnDrop(handle.token())));
            let pending = Pin::new(&mut handle).poll(&mut Context::from_waker(&cancels));
            assert!(pending.is_pending());
            drop(cancels);
            // The poll's clone was the last: replacing it cancels the job's token.
            let pending = Pin::new(&mut handle).poll(&mut Context::from_waker(Waker::noop()));
            assert!(pending.is_pending());
            let _ = finished_tx.send(handle.token().is_cancelled());
        });
        let cancelled = finished_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the second poll returned (no lock taken twice)");
        assert!(cancelled);
    }

    /// A job's token keeps its waiters in its pool's table, by cell: a cancel wakes the
    /// job's own waiters, and a cancel of another job of the pool wakes none of them.
    #[test]
    fn a_cancel_wakes_the_waiters_of_its_job_alone() {
        let handles = JobHandles::<u32, ()>::new(&CancellationToken::new());
        let (first, _first_completer) = handles.make(JobId::new(1));
        let (second, second_completer) = handles.make(JobId::new(2));
        let waiting = second_completer.token();
        let waiter = thread::spawn(move || waiting.wait_timeout(Duration::from_secs(60)));
        thread::sleep(Duration::from_millis(20));
        first.cancel();
        assert!(!second.token().is_cancelled());
        second.cancel();
        assert!(waiter.join().unwrap(), "the waiter heard its job's cancel");
        // A token that outlives its job still hears a cancel of the pool.
        let kept = second.token();
        drop((second, second_completer));
        assert!(kept.is_cancelled());
    }

    #[test]
    fn a_job_token_hears_its_pools_cancel_after_the_job_ended() {
        let pool = CancellationToken::new();
        let (handle, completer) = job_handle::<u32, ()>(JobId::new(1), &pool);
        let token = handle.token();
        completer.complete(Ok(1));
        assert_eq!(handle.join(), Ok(1));
        let waiter = thread::spawn(move || token.wait_timeout(Duration::from_secs(60)));
        thread::sleep(Duration::from_millis(20));
        pool.cancel();
        assert!(waiter.join().unwrap());
    }

    /// Jobs completed or handed back on one thread while their handles are joined,
    /// cancelled, waited on through their tokens or dropped on another: every joined
    /// handle gets its job's one result, and once every end is gone every cell is freed.
    #[test]
    fn stress_every_joined_result_arrives_once_and_every_cell_is_freed() {
        use std::sync::mpsc;

        let jobs: u64 = if cfg!(miri) { 40 } else { 50_000 };
        let handles = JobHandles::<u64, ()>::new(&CancellationToken::new());
        let (joined_tx, joined_rx) = mpsc::channel();
        thread::scope(|scope| {
            let (to_worker, completers) = mpsc::channel::<Completer<u64, ()>>();
            scope.spawn(move || {
                for completer in completers {
                    // One job in seven is handed back unstarted.
                    let id = completer.id().get();
                    if id % 7 != 0 {
                        completer.complete(Ok(id));
                    }
                }
            });
            let (to_joiner, waits) = mpsc::channel::<(JobHandle<u64, ()>, CancellationToken)>();
            scope.spawn(move || {
                for (handle, token) in waits {
                    let id = handle.id().get();
                    match id % 4 {
                        0 => drop(handle),
                        1 => joined_tx.send((id, handle.join())).unwrap(),
                        2 => {
                            assert!(!token.wait_timeout(Duration::ZERO) || token.is_cancelled());
                            handle.cancel();
                        }
                        _ => {
                            handle.cancel();
                            joined_tx.send((id, handle.join())).unwrap();
                        }
                    }
                    drop(token);
                }
            });
            for id in 1..=jobs {
                let (handle, completer) = handles.make(JobId::new(id));
                let token = completer.token();
                to_worker.send(completer).unwrap();
                to_joiner.send((handle, token)).unwrap();
            }
        });
        let mut joined = 0;
        for (id, result) in joined_rx {
            joined += 1;
            if id % 7 == 0 {
                assert!(result.unwrap_err().is_returned(), "job {id}");
            } else {
                assert_eq!(result, Ok(id));
            }
        }
        assert_eq!(joined, jobs / 2);
        assert_eq!(handles.cells.cells_alive(), 0, "a cell was never freed");
    }

    #[test]
    fn a_timed_out_join_leaves_the_handle_usable() {
        let (handle, completer) = job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
        let handle = handle
            .join_timeout(Duration::from_millis(5))
            .expect_err("not finished yet");
        let finisher = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            completer.complete(Ok(3));
        });
        assert_eq!(
            handle.join_timeout(Duration::from_secs(30)).ok(),
            Some(Ok(3))
        );
        finisher.join().unwrap();
    }
}

/// Models: a blocked `join` racing the job's delivery always gets the result (the waker
/// stored under the slot's lock, the unpark after it), whichever comes first; a wait on
/// the job's token racing the handle's cancel always hears of it (the token's waiters
/// kept under the same lock as the slot).
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use std::pin::pin;
    use std::task::{Wake, Waker};

    use crate::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct WokenFlag(AtomicBool);

    impl Wake for WokenFlag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn loom_a_wait_on_the_job_token_racing_its_cancel_hears_of_it() {
        loom::model(|| {
            let (handle, completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let token = completer.token();
            let canceller = loom::thread::spawn(move || handle.cancel());
            let woken = Arc::new(WokenFlag(AtomicBool::new(false)));
            let waker = Waker::from(Arc::clone(&woken));
            let mut cancelled = pin!(token.cancelled());
            let ready = cancelled
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            canceller.join().unwrap();
            assert!(ready || woken.0.load(Ordering::SeqCst));
            drop(completer);
        });
    }

    #[test]
    fn loom_a_join_racing_the_delivery_gets_the_result() {
        loom::model(|| {
            let (handle, completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let worker = loom::thread::spawn(move || completer.complete(Ok(7)));
            assert_eq!(handle.join(), Ok(7));
            worker.join().unwrap();
        });
    }

    #[test]
    fn loom_a_join_racing_a_dropped_completer_gets_returned() {
        loom::model(|| {
            let (handle, completer) =
                job_handle::<u32, ()>(JobId::new(1), &CancellationToken::new());
            let worker = loom::thread::spawn(move || drop(completer));
            assert!(handle.join().unwrap_err().is_returned());
            worker.join().unwrap();
        });
    }
}
