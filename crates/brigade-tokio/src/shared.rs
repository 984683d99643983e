//! The state one pool's submitters, workers and timer share.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use brigade_core::middleware::{Admission, DropReason, Layers, QueueState};
use brigade_core::{
    AsyncJob, Attempts, CancellationToken, Completer, ErrorKind, Gauges, JobError, JobHandle,
    JobId, Rejection, Stats, StatsCounters,
};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio_util::task::TaskTracker;

pub(crate) type Output<J> = <J as AsyncJob>::Output;
pub(crate) type Error<J> = <J as AsyncJob>::Error;
pub(crate) type Handle_<J> = JobHandle<Output<J>, Error<J>>;

/// One accepted job on its way through the pool.
pub(crate) struct Queued<J: AsyncJob> {
    pub(crate) job: J,
    pub(crate) completer: Completer<Output<J>, Error<J>>,
    pub(crate) attempts: Attempts,
}

impl<J: AsyncJob> Queued<J> {
    /// Ends an unstarted job as handed back, and gives the job to the caller.
    pub(crate) fn hand_back(self, counters: &StatsCounters) -> J {
        counters.record_ended(ErrorKind::Returned);
        self.completer
            .complete(Err(JobError::returned(self.attempts.ran())));
        self.job
    }
}

pub(crate) struct State<J: AsyncJob> {
    pub(crate) queue: VecDeque<Queued<J>>,
    /// Jobs waiting for a time (retry backoff, a start deferred by a rate limit), by time
    /// then by arrival.
    pub(crate) delayed: BTreeMap<(Instant, u64), Queued<J>>,
    /// Jobs waiting for a running job to end (a weighted limit is full).
    pub(crate) waiting: VecDeque<Queued<J>>,
    pub(crate) delay_seq: u64,
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
    /// Jobs handed back because a hook panicked before their start; they come back in the
    /// next shutdown's report.
    pub(crate) handed_back: Vec<J>,
}

impl<J: AsyncJob> State<J> {
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.delayed.is_empty()
            && self.waiting.is_empty()
            && self.busy == 0
    }

    /// Whether nothing is left for a worker to do once the pool is closed.
    pub(crate) fn is_drained(&self) -> bool {
        self.closed && self.queue.is_empty() && self.delayed.is_empty() && self.waiting.is_empty()
    }
}

pub(crate) struct Shared<J: AsyncJob> {
    pub(crate) name: Arc<str>,
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
    pub(crate) counters: StatsCounters,
    pub(crate) layers: Layers<J, Error<J>>,
    pub(crate) token: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) runtime: Handle,
    next_id: AtomicU64,
}

/// What happened to an offered job.
pub(crate) enum Offer<J: AsyncJob> {
    Accepted(Handle_<J>),
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
            name,
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(1024)),
                delayed: BTreeMap::new(),
                waiting: VecDeque::new(),
                delay_seq: 0,
                workers: 0,
                busy: 0,
                min,
                max,
                keep_alive,
                closed: false,
                timer_running: false,
                idle_generation: 0,
                handed_back: Vec::new(),
            }),
            capacity,
            job_ready: Notify::new(),
            room: Notify::new(),
            became_idle: Notify::new(),
            timer_wake: Notify::new(),
            counters: StatsCounters::new(),
            layers,
            token: CancellationToken::new(),
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
    ) -> Offer<J> {
        let mut state = self.lock();
        if state.closed {
            return Offer::Closed(job);
        }
        let mut evicted = None;
        if !self.layers.is_empty() {
            let queue = QueueState {
                len: state.queue.len(),
                capacity: self.capacity,
            };
            match self.layers.admit(&job, queue) {
                (Admission::Accept, _) => {}
                (Admission::Reject(reason), _) => {
                    drop(state);
                    self.counters.record_rejected();
                    return Offer::Rejected(job, reason);
                }
                (Admission::DropNewest, index) => {
                    let (handle, completer) = self.new_handle();
                    drop(state);
                    self.counters.record_submitted();
                    self.drop_job(index, job, completer, 0, DropReason::Newest);
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
        let (handle, completer) = self.new_handle();
        self.counters.record_submitted();
        self.enqueue(
            &mut state,
            Queued {
                job,
                completer,
                attempts: Attempts::default(),
            },
        );
        drop(state);
        if let Some((index, oldest)) = evicted {
            let ran = oldest.attempts.ran();
            self.drop_job(
                index,
                oldest.job,
                oldest.completer,
                ran,
                DropReason::Evicted,
            );
        }
        Offer::Accepted(handle)
    }

    fn new_handle(&self) -> (Handle_<J>, Completer<Output<J>, Error<J>>) {
        let id = JobId::new(self.next_id.fetch_add(1, Ordering::Relaxed));
        JobHandle::new(id, &self.token)
    }

    /// Ends an accepted job as dropped: counted, traced, handed to the layer that dropped it.
    fn drop_job(
        &self,
        index: Option<usize>,
        job: J,
        completer: Completer<Output<J>, Error<J>>,
        ran: u32,
        reason: DropReason,
    ) {
        let id = completer.id();
        self.counters.record_ended(ErrorKind::Dropped);
        tracing::warn!(pool = %self.name, job = id.get(), attempts = ran, ?reason, "job dropped under backpressure");
        completer.complete(Err(JobError::dropped()));
        if let Some(index) = index {
            self.layers.dropped(index, job, reason);
        }
    }

    /// Puts a job in the ready queue, starting a worker if none is free to take it.
    pub(crate) fn enqueue(self: &Arc<Self>, state: &mut State<J>, queued: Queued<J>) {
        state.queue.push_back(queued);
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
    pub(crate) fn delay(self: &Arc<Self>, state: &mut State<J>, at: Instant, queued: Queued<J>) {
        let seq = state.delay_seq;
        state.delay_seq += 1;
        let earliest = state.delayed.keys().next().map(|(t, _)| *t);
        state.delayed.insert((at, seq), queued);
        self.ensure_timer(state);
        if earliest.is_none_or(|earliest| at < earliest) {
            self.timer_wake.notify_one();
        }
    }

    /// Puts a job aside until a running job ends.
    pub(crate) fn wait_for_capacity(self: &Arc<Self>, state: &mut State<J>, queued: Queued<J>) {
        state.waiting.push_back(queued);
        // The timer also re-offers the waiting list when nothing in this pool runs (the
        // capacity may be held by another pool sharing the layer).
        self.ensure_timer(state);
        self.timer_wake.notify_one();
    }

    fn ensure_timer(self: &Arc<Self>, state: &mut State<J>) {
        if !state.timer_running {
            state.timer_running = true;
            self.tracker
                .spawn_on(crate::timer::serve(Arc::clone(self)), &self.runtime);
        }
    }

    /// Moves the waiting list back to the front of the ready queue, in order.
    pub(crate) fn reoffer_waiting(self: &Arc<Self>, state: &mut State<J>) {
        if state.waiting.is_empty() {
            return;
        }
        while let Some(queued) = state.waiting.pop_back() {
            state.queue.push_front(queued);
        }
        self.grow_for_queue(state);
        self.job_ready.notify_waiters();
        self.job_ready.notify_one();
    }

    /// Wakes `wait_idle` callers if nothing is queued, delayed or running.
    pub(crate) fn check_idle(&self, state: &mut State<J>) {
        if state.is_idle() {
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
    pub(crate) fn take_unstarted(&self) -> (Vec<Queued<J>>, usize) {
        let mut state = self.lock();
        let mut unstarted: Vec<_> = state.queue.drain(..).collect();
        unstarted.extend(state.waiting.drain(..));
        let delayed = std::mem::take(&mut state.delayed);
        unstarted.extend(delayed.into_values());
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
            delayed: state.delayed.len() + state.waiting.len(),
        };
        drop(state);
        self.counters.snapshot(gauges)
    }
}

/// The tokio clock as a std instant, the form middleware takes. Under a paused test clock it
/// moves with `tokio::time::advance`.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
