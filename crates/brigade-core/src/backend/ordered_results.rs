//! Results in submission order without a handle per job: how a bulk run
//! (`ThreadPool::map`, `TokioPool::map`) takes its jobs' results.
//!
//! A [`JobHandle`](crate::JobHandle) costs each job a cell of its own: an allocation at
//! the submit, a free at the join, and a cancellation token. `map` needs none of that: it
//! keeps at most a fixed number of jobs in flight, never cancels one alone, and takes
//! their results in the order it submitted them. [`OrderedResults`] keeps a cell per job
//! in flight and issues it again once its result is taken; each job carries a [`ResultSlot`] (a reference to its turn's cell) that
//! delivers into it, and the caller takes the results oldest first, waiting for each as
//! `join` does (a brief spin, then parked until the delivery wakes it) or, from a stream,
//! as a handle's `await` does (the task's waker woken by the delivery). A cell is issued
//! again only after its result was taken, so it holds one job's result at a time.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::Backoff;

use crate::backend::job_errors;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, lock, park};
use crate::thread_waker::current_thread_waker;
use crate::{JobId, JobResult};

/// The caller's side: result cells issued to jobs one turn each and taken back in the
/// order they were issued.
///
/// # Examples
///
/// ```
/// use brigade_core::JobId;
/// use brigade_core::backend::OrderedResults;
///
/// let mut results = OrderedResults::<u32, String>::new();
/// let first = results.issue();
/// let second = results.issue();
/// first.bind(JobId::new(1));
/// second.deliver(Ok(2)); // out of order: kept for its turn
/// std::thread::spawn(move || first.deliver(Ok(1)));
/// assert_eq!(results.take().unwrap().unwrap(), 1);
/// assert_eq!(results.take().unwrap().unwrap(), 2);
/// assert!(results.take().is_none());
/// ```
pub struct OrderedResults<T, E> {
    /// The cells of the turns issued and not yet taken, oldest first.
    in_flight: VecDeque<Arc<Cell<T, E>>>,
    /// Cells whose result was taken, to be issued again: made as turns need them, so a run
    /// holds only as many as it keeps in flight.
    spare: Vec<Arc<Cell<T, E>>>,
}

/// The job's side: where one job's result goes, in its turn. A backend keeps it with the
/// job and delivers into it once; dropped undelivered, it delivers
/// [`Returned`](crate::ErrorKind::Returned) (the job was handed back unstarted).
///
/// # Examples
///
/// ```
/// use brigade_core::backend::OrderedResults;
///
/// let mut results = OrderedResults::<(), String>::new();
/// drop(results.issue());
/// assert!(results.take().unwrap().unwrap_err().is_returned());
/// ```
pub struct ResultSlot<T, E> {
    /// `None` once delivered.
    cell: Option<Arc<Cell<T, E>>>,
}

struct Cell<T, E> {
    /// Set with the result and cleared when it is taken: what a take spins on before it
    /// parks.
    full: AtomicBool,
    /// The job the turn belongs to, for its traces; set when the pool accepts the job.
    id: AtomicU64,
    state: Mutex<State<T, E>>,
}

enum State<T, E> {
    /// Nobody waits yet.
    Open,
    /// The thread blocked in `take` (a waker that unparks it), or the task polling
    /// `poll_take`, is woken on delivery.
    Waiting(Waker),
    Done(JobResult<T, E>),
}

impl<T, E> OrderedResults<T, E> {
    /// No turn issued yet. Cells are made as turns need them.
    ///
    /// # Examples
    ///
    /// ```
    /// let results = brigade_core::backend::OrderedResults::<(), ()>::new();
    /// assert!(results.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        OrderedResults {
            in_flight: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// How many turns are issued and not yet taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut results = brigade_core::backend::OrderedResults::<(), ()>::new();
    /// let _slot = results.issue();
    /// assert_eq!(results.len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether every issued turn was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(brigade_core::backend::OrderedResults::<(), ()>::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// The next turn's slot. The caller bounds how many turns it keeps in flight: each
    /// holds a cell until its result is taken.
    ///
    /// # Examples
    ///
    /// See [`OrderedResults`].
    pub fn issue(&mut self) -> ResultSlot<T, E> {
        let cell = self.spare.pop().unwrap_or_else(|| {
            Arc::new(Cell {
                full: AtomicBool::new(false),
                id: AtomicU64::new(0),
                state: Mutex::new(State::Open),
            })
        });
        self.in_flight.push_back(Arc::clone(&cell));
        ResultSlot { cell: Some(cell) }
    }

    /// The oldest issued turn's result, blocking until it is delivered; `None` when no
    /// turn is issued.
    ///
    /// # Examples
    ///
    /// See [`OrderedResults`].
    pub fn take(&mut self) -> Option<JobResult<T, E>> {
        let cell = self.in_flight.pop_front()?;
        let result = cell.wait_and_take();
        self.spare.push(cell);
        Some(result)
    }

    /// The oldest issued turn's result if it was delivered; otherwise `cx`'s waker is woken
    /// when it is. `Ready(None)` when no turn is issued. The async side of
    /// [`take`](Self::take), for a stream of results.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// use brigade_core::backend::OrderedResults;
    ///
    /// let mut results = OrderedResults::<u32, String>::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let slot = results.issue();
    /// assert!(results.poll_take(&mut cx).is_pending());
    /// slot.deliver(Ok(7));
    /// assert!(matches!(results.poll_take(&mut cx), Poll::Ready(Some(Ok(7)))));
    /// assert!(matches!(results.poll_take(&mut cx), Poll::Ready(None)));
    /// ```
    pub fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Option<JobResult<T, E>>> {
        let Some(cell) = self.in_flight.front() else {
            return Poll::Ready(None);
        };
        match cell.take_or_wake(cx.waker()) {
            Some(result) => {
                self.spare.extend(self.in_flight.pop_front());
                Poll::Ready(Some(result))
            }
            None => Poll::Pending,
        }
    }
}

impl<T, E> Cell<T, E> {
    fn wait_and_take(&self) -> JobResult<T, E> {
        // A brief, bounded spin first: a short job ends before a futex round trip would.
        let backoff = Backoff::new();
        while !cfg!(brigade_loom) && !self.full.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        // Made only when the result is not there: most takes after the spin need none.
        let mut waker = None;
        loop {
            let mut state = lock(&self.state);
            match std::mem::replace(&mut *state, State::Open) {
                State::Done(result) => {
                    self.full.store(false, Ordering::Relaxed);
                    return result;
                }
                // A waker left by this thread's earlier wait (it unparks this thread), or
                // nobody yet: wait to be woken by the delivery.
                State::Open | State::Waiting(_) => {
                    *state = State::Waiting(waker.get_or_insert_with(current_thread_waker).clone());
                }
            }
            drop(state);
            // The delivery unparks after it stored the result: an unpark before this park
            // makes it return at once, and an early return only loops.
            park();
        }
    }

    /// The result if it is there; otherwise `waker` is woken when it comes.
    fn take_or_wake(&self, waker: &Waker) -> Option<JobResult<T, E>> {
        let mut state = lock(&self.state);
        let replaced = match std::mem::replace(&mut *state, State::Open) {
            State::Done(result) => {
                self.full.store(false, Ordering::Relaxed);
                return Some(result);
            }
            State::Waiting(existing) if existing.will_wake(waker) => {
                *state = State::Waiting(existing);
                None
            }
            other => {
                *state = State::Waiting(waker.clone());
                Some(other)
            }
        };
        drop(state);
        // A waker's drop is its executor's code: run with the cell unlocked.
        drop(replaced);
        None
    }

    fn deliver(&self, result: JobResult<T, E>) {
        let mut state = lock(&self.state);
        let waiting = std::mem::replace(&mut *state, State::Done(result));
        self.full.store(true, Ordering::Release);
        drop(state);
        if let State::Waiting(waker) = waiting {
            waker.wake();
        }
    }
}

impl<T, E> ResultSlot<T, E> {
    /// Records the id the pool gave the job, for [`id`](Self::id).
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_core::JobId;
    /// let mut results = brigade_core::backend::OrderedResults::<(), ()>::new();
    /// let slot = results.issue();
    /// slot.bind(JobId::new(9));
    /// assert_eq!(slot.id(), JobId::new(9));
    /// ```
    pub fn bind(&self, id: JobId) {
        if let Some(cell) = &self.cell {
            // Read by the worker that runs the job, which the queue's hand-over orders
            // after this store.
            cell.id.store(id.get(), Ordering::Relaxed);
        }
    }

    /// The job's id, as [`bind`](Self::bind) recorded it.
    ///
    /// # Examples
    ///
    /// See [`bind`](Self::bind).
    #[must_use]
    pub fn id(&self) -> JobId {
        JobId::new(
            self.cell
                .as_ref()
                .map_or(0, |cell| cell.id.load(Ordering::Relaxed)),
        )
    }

    /// Delivers the job's result into its turn, waking the caller if it waits for it.
    ///
    /// # Examples
    ///
    /// See [`OrderedResults`].
    pub fn deliver(mut self, result: JobResult<T, E>) {
        if let Some(cell) = self.cell.take() {
            cell.deliver(result);
        }
    }
}

impl<T, E> Drop for ResultSlot<T, E> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.deliver(Err(job_errors::returned(0)));
        }
    }
}

impl<T, E> fmt::Debug for OrderedResults<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedResults")
            .field("in_flight", &self.len())
            .finish()
    }
}

impl<T, E> fmt::Debug for ResultSlot<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultSlot")
            .field("id", &self.id())
            .finish()
    }
}

#[cfg(all(test, not(brigade_loom)))]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_turn_order_whatever_order_they_end_in() {
        let mut results = OrderedResults::<usize, String>::new();
        let slots: Vec<_> = (0..8).map(|_| results.issue()).collect();
        let delivering: Vec<_> = slots
            .into_iter()
            .enumerate()
            .rev()
            .map(|(turn, slot)| std::thread::spawn(move || slot.deliver(Ok(turn))))
            .collect();
        let taken: Vec<usize> = (0..8).map(|_| results.take().unwrap().unwrap()).collect();
        assert_eq!(taken, (0..8).collect::<Vec<_>>());
        for thread in delivering {
            thread.join().unwrap();
        }
    }

    #[test]
    fn a_cell_is_issued_again_once_its_result_is_taken() {
        let mut results = OrderedResults::<u32, String>::new();
        for turn in 0..100 {
            let slot = results.issue();
            let worker = std::thread::spawn(move || slot.deliver(Ok(turn)));
            assert_eq!(results.take().unwrap().unwrap(), turn);
            worker.join().unwrap();
        }
        assert_eq!(results.spare.len(), 1, "one cell served every turn");
    }

    #[test]
    fn a_result_left_untaken_is_dropped_with_the_last_reference() {
        let mut results = OrderedResults::<Arc<()>, String>::new();
        let tracked = Arc::new(());
        results.issue().deliver(Ok(Arc::clone(&tracked)));
        drop(results);
        assert_eq!(Arc::strong_count(&tracked), 1);
    }
}

/// Model: a take (blocking or polled) racing the delivery of its turn never misses the
/// wake-up, and a cell issued again holds the next turn's result, not the last one's.
#[cfg(all(test, brigade_loom))]
mod loom_models {
    use super::*;

    #[test]
    fn loom_a_take_racing_the_delivery_gets_each_result_in_turn() {
        loom::model(|| {
            let mut results = OrderedResults::<u32, ()>::new();
            let first = results.issue();
            let worker = loom::thread::spawn(move || first.deliver(Ok(1)));
            assert_eq!(results.take().unwrap().unwrap(), 1);
            let second = results.issue();
            let worker2 = loom::thread::spawn(move || drop(second));
            assert!(results.take().unwrap().unwrap_err().is_returned());
            worker.join().unwrap();
            worker2.join().unwrap();
        });
    }

    #[test]
    fn loom_a_poll_racing_the_delivery_is_ready_or_woken() {
        loom::model(|| {
            let mut results = OrderedResults::<u32, ()>::new();
            let slot = results.issue();
            let worker = loom::thread::spawn(move || slot.deliver(Ok(1)));
            // Polled as an executor would: parked between polls until the waker unparks.
            let waker = current_thread_waker();
            let mut cx = Context::from_waker(&waker);
            let taken = loop {
                match results.poll_take(&mut cx) {
                    Poll::Ready(taken) => break taken,
                    Poll::Pending => park(),
                }
            };
            assert_eq!(taken.unwrap().unwrap(), 1);
            worker.join().unwrap();
        });
    }
}

impl<T, E> Default for OrderedResults<T, E> {
    fn default() -> Self {
        Self::new()
    }
}
