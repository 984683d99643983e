//! The state one pool's submitters, workers and timer share.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use brigade_core::backend::{Backend, DelayQueue, Done, JobDriver};
use brigade_core::middleware::{Admission, DropReason, Layers, QueueState};
use brigade_core::{AsyncJob, Gauges, JobHandle, JobId, Rejection, Stats};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio_util::task::TaskTracker;

pub(crate) type Output<J> = <J as AsyncJob>::Output;
pub(crate) type Error<J> = <J as AsyncJob>::Error;
pub(crate) type Handle_<J> = JobHandle<Output<J>, Error<J>>;
/// Where an accepted job's result goes: its handle, or nowhere (`execute`).
pub(crate) type JobDone<J> = Done<Output<J>, Error<J>>;

/// One accepted job on its way through the pool.
pub(crate) type Task<J> = brigade_core::backend::Task<J, Output<J>, Error<J>>;

pub(crate) struct State<J: AsyncJob> {
    pub(crate) queue: VecDeque<Task<J>>,
    /// Jobs waiting for a time (retry backoff, a start deferred by a rate limit).
    pub(crate) delayed: DelayQueue<Task<J>>,
    /// When the timer offers the parked jobs (core's driver keeps them) their start again,
    /// when no run in progress will.
    pub(crate) offer_parked_at: Option<Instant>,
    pub(crate) workers: usize,
    pub(crate) busy: usize,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) closed: bool,
    pub(crate) timer_running: bool,
    /// Counts idle moments: a `wait_idle` caller leaves when this moves past what it saw
    /// when it began, even if the pool is busy again by the time it runs (another caller,
    /// released first, may have submitted more work already).
    pub(crate) idle_generation: u64,
}

impl<J: AsyncJob> State<J> {
    /// Whether nothing is queued, delayed or running; `parked` jobs wait for capacity.
    pub(crate) fn is_idle(&self, parked: usize) -> bool {
        self.queue.is_empty() && self.delayed.is_empty() && parked == 0 && self.busy == 0
    }

    /// Whether nothing is left for a worker to do once the pool is closed.
    pub(crate) fn is_drained(&self, parked: usize) -> bool {
        self.closed && self.queue.is_empty() && self.delayed.is_empty() && parked == 0
    }
}

pub(crate) struct Shared<J: AsyncJob> {
    /// The per-job logic and the books, core's, as on every backend.
    pub(crate) driver: JobDriver<J, Output<J>, Error<J>>,
    pub(crate) state: Mutex<State<J>>,
    pub(crate) capacity: usize,
    /// Wakes idle workers: a job was queued, the range shrank, or the pool closed.
    pub(crate) job_ready: Notify,
    /// Wakes submitters waiting for room.
    pub(crate) room: Notify,
    /// Wakes `wait_idle` callers.
    pub(crate) became_idle: Notify,
    /// Wakes the timer: an earlier time was added, or the pool may be done.
    pub(crate) timer_wake: Notify,
    pub(crate) tracker: TaskTracker,
    pub(crate) runtime: Handle,
    next_id: AtomicU64,
}

/// What happened to an offered job.
pub(crate) enum Offer<J: AsyncJob> {
    /// Accepted, with a handle when one was asked for.
    Accepted(Option<Handle_<J>>),
    Full(J),
    Closed(J),
    Rejected(J, Rejection),
}

impl<J: AsyncJob> Shared<J> {
    pub(crate) fn new(
        name: Arc<str>,
        capacity: usize,
        (min, max, keep_alive): (usize, usize, Duration),
        layers: Layers<J, Error<J>>,
        runtime: Handle,
    ) -> Arc<Self> {
        Arc::new(Shared {
            driver: JobDriver::new(name, layers),
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(1024)),
                delayed: DelayQueue::new(),
                offer_parked_at: None,
                workers: 0,
                busy: 0,
                min,
                max,
                keep_alive,
                closed: false,
                timer_running: false,
                idle_generation: 0,
            }),
            capacity,
            job_ready: Notify::new(),
            room: Notify::new(),
            became_idle: Notify::new(),
            timer_wake: Notify::new(),
            tracker: TaskTracker::new(),
            runtime,
            next_id: AtomicU64::new(1),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<J>> {
        // No code panics while holding the lock (jobs and middleware run outside it), so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers `job` to the queue. When the queue is full and `room` is given, `room` is
    /// registered before the lock is released, so a slot freed in between is not missed.
    pub(crate) fn offer(
        self: &Arc<Self>,
        job: J,
        room: Option<Pin<&mut Notified<'_>>>,
        with_handle: bool,
    ) -> Offer<J> {
        let mut state = self.lock();
        if state.closed {
            return Offer::Closed(job);
        }
        let mut evicted = None;
        if !self.driver.layers().is_empty() {
            let queue = QueueState {
                len: state.queue.len(),
                capacity: self.capacity,
            };
            match self.driver.admit(&job, queue) {
                (Admission::Accept, _) => {}
                (Admission::Reject(reason), _) => return Offer::Rejected(job, reason),
                (Admission::DropNewest, index) => {
                    let (handle, done) = self.accept(with_handle);
                    drop(state);
                    self.driver.counters().record_submitted();
                    let task = Task::new(job, done);
                    self.driver.drop_admitted(
                        &Engine::outside(self),
                        task,
                        index,
                        DropReason::Newest,
                    );
                    return Offer::Accepted(handle);
                }
                (Admission::EvictOldest, index) => {
                    if state.queue.len() >= self.capacity {
                        evicted = state.queue.pop_front().map(|oldest| (index, oldest));
                    }
                }
            }
        }
        // A job that evicted the oldest takes its place even when the queue holds more than
        // its capacity (retries re-entering at their time are never refused): the queue
        // does not grow, and the evicted job is always accounted for below.
        if evicted.is_none() && state.queue.len() >= self.capacity {
            if let Some(room) = room {
                room.enable();
            }
            return Offer::Full(job);
        }
        let (handle, done) = self.accept(with_handle);
        self.driver.counters().record_submitted();
        self.enqueue(&mut state, Task::new(job, done));
        drop(state);
        if let Some((index, oldest)) = evicted {
            self.driver
                .drop_admitted(&Engine::outside(self), oldest, index, DropReason::Evicted);
        }
        Offer::Accepted(handle)
    }

    /// Gives an accepted job its id, and a handle when wanted (`execute` needs none, and
    /// allocates nothing for it).
    fn accept(&self, with_handle: bool) -> (Option<Handle_<J>>, JobDone<J>) {
        let id = JobId::new(self.next_id.fetch_add(1, Ordering::Relaxed));
        if with_handle {
            let (handle, completer) = JobHandle::new(id, self.driver.token());
            (Some(handle), Done::Handle(completer))
        } else {
            (None, Done::Detached(id))
        }
    }

    /// Puts a job in the ready queue, starting a worker if none is free to take it.
    pub(crate) fn enqueue(self: &Arc<Self>, state: &mut State<J>, task: Task<J>) {
        state.queue.push_back(task);
        self.grow_for_queue(state);
        self.job_ready.notify_one();
    }

    /// Starts workers while the queue holds more jobs than there are idle workers to take
    /// them, up to the maximum.
    pub(crate) fn grow_for_queue(self: &Arc<Self>, state: &mut State<J>) {
        // Workers not running a job are idle (or just started) and will take one.
        while state.workers - state.busy < state.queue.len() && state.workers < state.max {
            self.spawn_worker(state);
        }
    }

    /// Starts workers up to the minimum.
    pub(crate) fn grow_to_min(self: &Arc<Self>, state: &mut State<J>) {
        while state.workers < state.min {
            self.spawn_worker(state);
        }
    }

    fn spawn_worker(self: &Arc<Self>, state: &mut State<J>) {
        state.workers += 1;
        self.tracker
            .spawn_on(crate::worker::work(Arc::clone(self)), &self.runtime);
    }

    /// Puts a job aside until `at`, in the delay queue the timer task serves.
    pub(crate) fn delay(self: &Arc<Self>, state: &mut State<J>, at: Instant, task: Task<J>) {
        let earliest = state.delayed.push(at, task);
        self.ensure_timer(state);
        if earliest {
            self.timer_wake.notify_one();
        }
    }

    fn ensure_timer(self: &Arc<Self>, state: &mut State<J>) {
        if !state.timer_running {
            state.timer_running = true;
            self.tracker
                .spawn_on(crate::timer::serve(Arc::clone(self)), &self.runtime);
        }
    }

    /// Wakes `wait_idle` callers if nothing is queued, delayed or running.
    pub(crate) fn check_idle(&self, state: &mut State<J>) {
        if state.is_idle(self.driver.parked()) {
            state.idle_generation += 1;
            self.became_idle.notify_waiters();
        }
    }

    /// Closes intake; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut state = self.lock();
        let first = !state.closed;
        state.closed = true;
        drop(state);
        self.tracker.close();
        self.job_ready.notify_waiters();
        self.room.notify_waiters();
        self.timer_wake.notify_one();
        first
    }

    /// Takes every unstarted job out of the pool, in queue order (ready, then waiting for
    /// capacity, then delayed by time), and reports how many jobs were running.
    pub(crate) fn take_unstarted(&self) -> (Vec<Task<J>>, usize) {
        let mut state = self.lock();
        let mut unstarted: Vec<_> = state.queue.drain(..).collect();
        unstarted.extend(self.driver.take_parked());
        unstarted.extend(state.delayed.take_all());
        let running = state.busy;
        self.check_idle(&mut state);
        drop(state);
        self.job_ready.notify_waiters();
        self.timer_wake.notify_one();
        (unstarted, running)
    }

    pub(crate) fn stats(&self) -> Stats {
        let state = self.lock();
        let gauges = Gauges {
            workers: state.workers,
            busy: state.busy,
            queued: state.queue.len(),
            delayed: state.delayed.len() + self.driver.parked(),
        };
        drop(state);
        self.driver.counters().snapshot(gauges)
    }
}

/// The tokio clock as a std instant, the form middleware takes. Under a paused test clock it
/// moves with `tokio::time::advance`.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// How long parked jobs wait for the timer's offer when no run in progress will offer them
/// capacity (it is held elsewhere, by another pool sharing the layer).
const OFFER_PARKED_FALLBACK: Duration = Duration::from_millis(10);

/// The tokio pool as core's driver sees it: tokio's clock, the delay queue its timer task
/// serves, the ready queue, and the idle check.
pub(crate) struct Engine<'a, J: AsyncJob> {
    shared: &'a Arc<Shared<J>>,
    /// A worker frees its slot and checks for idleness itself once its job is settled; any
    /// other caller has the check made when a job ends.
    in_worker: bool,
}

impl<'a, J: AsyncJob> Engine<'a, J> {
    pub(crate) fn worker(shared: &'a Arc<Shared<J>>) -> Self {
        Engine {
            shared,
            in_worker: true,
        }
    }

    pub(crate) fn outside(shared: &'a Arc<Shared<J>>) -> Self {
        Engine {
            shared,
            in_worker: false,
        }
    }
}

impl<J: AsyncJob> Backend<J, Output<J>, Error<J>> for Engine<'_, J> {
    fn now(&self) -> Instant {
        now()
    }

    fn delay(&self, task: Task<J>, at: Instant) {
        let mut state = self.shared.lock();
        self.shared.delay(&mut state, at, task);
    }

    fn requeue(&self, task: Task<J>) {
        let mut state = self.shared.lock();
        // It holds its granted capacity: first in line.
        state.queue.push_front(task);
        self.shared.grow_for_queue(&mut state);
        drop(state);
        self.shared.job_ready.notify_one();
    }

    fn offer_parked_later(&self) {
        let mut state = self.shared.lock();
        let at = brigade_core::instant_after(now(), OFFER_PARKED_FALLBACK);
        state.offer_parked_at = Some(state.offer_parked_at.map_or(at, |earlier| earlier.min(at)));
        self.shared.ensure_timer(&mut state);
        drop(state);
        self.shared.timer_wake.notify_one();
    }

    fn job_ended(&self) {
        if !self.in_worker {
            let mut state = self.shared.lock();
            self.shared.check_idle(&mut state);
        }
    }
}
