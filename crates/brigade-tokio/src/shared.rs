//! One tokio pool's engine: core's driver, the parts its lock guards (the ready queue, the
//! worker roster, the timer's schedule, the lifecycle) and the wake-ups between submitters,
//! workers and the timer. Every lock of the pool's state is taken here.
//!
//! With the `metrics` feature, the books are published to the recorder as a worker waits
//! for work, starts or ends, always outside the lock (see `brigade_core::backend::PoolMetrics`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brigade_core::backend::{Backend, Done, Gauges, JobDriver, Reply};
use brigade_core::hooks::{Admission, DropReason, Layers};
use brigade_core::{AsyncJob, ConfigError, JobHandle, JobId, Rejection, Stats};
use parking_lot::{Mutex, MutexGuard};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio_util::task::TaskTracker;

use crate::ready_queue::ReadyQueue;
use crate::roster::{IdleWait, Roster};
use crate::schedule::Schedule;

pub(crate) type Output<J> = <J as AsyncJob>::Output;
pub(crate) type Error<J> = <J as AsyncJob>::Error;
pub(crate) type Handle_<J> = JobHandle<Output<J>, Error<J>>;
/// Where an accepted job's result goes: its handle, its turn in `map`, or nowhere
/// (`execute`).
pub(crate) type JobDone<J> = Done<Output<J>, Error<J>>;

/// What an offer asks for the job's result.
pub(crate) type JobReply<J> = Reply<Output<J>, Error<J>>;

/// A job with its id and the way its result goes, not yet in the queue: what a submit
/// offers, and offers again after a full queue gave it back.
pub(crate) struct Unplaced<J: AsyncJob> {
    task: Task<J>,
    handle: Option<Handle_<J>>,
}

impl<J: AsyncJob> Unplaced<J> {
    /// The job, for a submit that gives up; its handle and turn end as `Returned`.
    pub(crate) fn into_job(self) -> J {
        self.task.job
    }
}

/// One accepted job on its way through the pool.
pub(crate) type Task<J> = brigade_core::backend::Task<J, Output<J>, Error<J>>;

/// A job about to run, or running, as core's driver began it.
pub(crate) type Run<J> = brigade_core::backend::Run<J, Output<J>, Error<J>>;

/// What the pool's lock guards: the parts that must change together.
struct State<J: AsyncJob> {
    ready: ReadyQueue<J>,
    roster: Roster,
    schedule: Schedule<J>,
    /// No job is accepted any more: a shutdown began, the pool was dropped, or its runtime
    /// shut down under it.
    closed: bool,
    /// A shutdown (or the pool's drop) began: a later one only waits for it.
    shutdown_begun: bool,
}

impl<J: AsyncJob> State<J> {
    /// Whether nothing is queued, delayed or running; `parked` jobs wait for capacity.
    fn is_idle(&self, parked: usize) -> bool {
        self.ready.is_empty() && self.schedule.is_empty() && parked == 0 && self.roster.busy() == 0
    }

    /// Whether nothing is left for a worker to do once the pool is closed.
    fn is_drained(&self, parked: usize) -> bool {
        self.closed && self.ready.is_empty() && self.schedule.is_empty() && parked == 0
    }
}

/// One pool's engine: core's driver, the locked state, and the wake-ups between its
/// submitters, workers and timer.
pub(crate) struct Shared<J: AsyncJob> {
    /// The per-job logic and the books, core's, as on every backend.
    pub(crate) driver: JobDriver<J, Output<J>, Error<J>>,
    state: Mutex<State<J>>,
    /// Wakes idle workers: a job was queued, the range shrank, or the pool closed.
    job_ready: Notify,
    /// Wakes submitters waiting for room.
    room: Notify,
    /// Wakes `wait_idle` callers.
    became_idle: Notify,
    /// Counts idle moments: a `wait_idle` caller leaves when this moves past what it saw
    /// when it began, even if the pool is busy again by the time it runs (another caller,
    /// released first, may have submitted more work already). Moved only under the state
    /// lock; read by a caller before it takes that lock, so that a caller still waiting
    /// for the lock when an idle moment comes and goes counts it.
    idle_generation: AtomicU64,
    /// Wakes the timer: an earlier time was added, or the pool may be done.
    timer_wake: Notify,
    tracker: TaskTracker,
    runtime: Handle,
    next_id: AtomicU64,
}

/// What happened to an offered job.
pub(crate) enum Offer<J: AsyncJob> {
    /// Accepted, with a handle when one was asked for.
    Accepted(Option<Handle_<J>>),
    /// No room: the job as it was offered, to offer again.
    Full(Unplaced<J>),
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
        let shared = Arc::new(Shared {
            driver: JobDriver::new(name, layers),
            state: Mutex::new(State {
                ready: ReadyQueue::new(capacity),
                roster: Roster::new(min, max, keep_alive),
                schedule: Schedule::new(),
                closed: false,
                shutdown_begun: false,
            }),
            job_ready: Notify::new(),
            room: Notify::new(),
            became_idle: Notify::new(),
            idle_generation: AtomicU64::new(0),
            timer_wake: Notify::new(),
            tracker: TaskTracker::new(),
            runtime,
            next_id: AtomicU64::new(1),
        });
        #[cfg(feature = "metrics")]
        shared
            .driver
            .metrics()
            .publish_from_pool(&shared, Shared::stats);
        shared
            .driver
            .cancels()
            .wake_with(crate::timer::cancel_waker(&shared));
        shared
    }

    /// Publishes the pool's books to its metrics, as a worker waits for work, starts or
    /// ends; never under the lock (see `brigade_core::backend::PoolMetrics`).
    #[cfg(feature = "metrics")]
    pub(crate) fn publish_metrics(&self) {
        self.driver.metrics().publish(|| self.stats());
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Every task of the pool: its workers and its timer.
    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A wake-up for a submitter waiting for room; [`offer`](Self::offer) registers it.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// A wake-up for a worker waiting for a job.
    pub(crate) fn job_ready(&self) -> Notified<'_> {
        self.job_ready.notified()
    }

    /// A wake-up for the timer.
    pub(crate) fn timer_wake(&self) -> Notified<'_> {
        self.timer_wake.notified()
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // No code panics while holding the lock (jobs and middleware run outside it), so
        // it has no poisoning to report.
        self.state.lock()
    }

    /// Queues the front of `run` in one locked section, as many of its jobs as the queue
    /// has room for, and puts each one's handle (if it asked for one) on `accepted`, in
    /// order; the rest stay in `run`. Whatever it cannot decide for a whole run is left to
    /// [`offer`](Self::offer), one job at a time: a closed pool, admission layers (they
    /// judge each job against the queue as it is), a full queue.
    ///
    /// One lock for the run, and no more wake-ups than there are live workers, instead of
    /// one of each per job: `map` queues its top-ups this way.
    pub(crate) fn offer_run(
        self: &Arc<Self>,
        run: &mut VecDeque<Unplaced<J>>,
        accepted: &mut VecDeque<Option<Handle_<J>>>,
    ) {
        if run.is_empty() || self.driver.layers().sees_submits() {
            return;
        }
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let placed = state.ready.room().min(run.len());
        if placed == 0 {
            return;
        }
        for Unplaced { task, handle } in run.drain(..placed) {
            self.driver.counters().record_submitted();
            #[cfg(feature = "metrics")]
            self.driver.metrics().submitted();
            state.ready.push_back(task);
            accepted.push_back(handle);
        }
        let starts = Self::grow_for_queue(&mut state);
        // A worker woken takes jobs until the queue is empty: one wake-up per worker
        // that may be waiting covers the run (and one still goes out before the first
        // worker is live: it will find the jobs either way).
        let wakes = placed.min(state.roster.live()).max(1);
        drop(state);
        self.start(starts);
        for _ in 0..wakes {
            self.job_ready.notify_one();
        }
    }

    /// Gives `job` its id and the way its result goes (a handle, a turn's slot, or none),
    /// ready to [`offer`](Self::offer). Done once per job, before the lock is taken: the
    /// submitter and every worker share that lock, so it guards the queue and the roster
    /// and nothing slower (an allocation for the handle).
    pub(crate) fn prepare(&self, job: J, reply: JobReply<J>) -> Unplaced<J> {
        let (handle, done) = self.accept(reply);
        Unplaced {
            task: Task::new(job, done),
            handle,
        }
    }

    /// Offers a prepared job to the queue. When the queue is full and `room` is given,
    /// `room` is registered before the lock is released, so a slot freed in between is not
    /// missed; the job comes back as it was, to be offered again without a second id or
    /// handle. The worker is woken after the lock is released (a wake-up may be a system
    /// call). A refused job drops its unused handle, and its id is not reused.
    pub(crate) fn offer(
        self: &Arc<Self>,
        unplaced: Unplaced<J>,
        room: Option<Pin<&mut Notified<'_>>>,
    ) -> Offer<J> {
        let Unplaced { task, handle } = unplaced;
        let mut state = self.lock();
        if state.closed {
            return Offer::Closed(task.job);
        }
        let mut evicted = None;
        if self.driver.layers().sees_submits() {
            match self.driver.admit(&task.job, state.ready.state()) {
                (Admission::Accept, _) => {}
                (Admission::Reject(reason), _) => return Offer::Rejected(task.job, reason),
                (Admission::DropNewest, index) => {
                    drop(state);
                    // Counted as submitted by the driver's metrics too, as it drops it.
                    self.driver.counters().record_submitted();
                    self.driver.drop_admitted(
                        &Engine::outside(self),
                        task,
                        index,
                        DropReason::Newest,
                    );
                    return Offer::Accepted(handle);
                }
                (Admission::EvictOldest, index) => {
                    if state.ready.is_full() {
                        evicted = state.ready.evict_oldest().map(|oldest| (index, oldest));
                    }
                }
            }
        }
        // A job that evicted the oldest takes its place even when the queue holds more than
        // its capacity (retries re-entering at their time are never refused): the queue
        // does not grow, and the evicted job is always accounted for below.
        if evicted.is_none() && state.ready.is_full() {
            if let Some(room) = room {
                room.enable();
            }
            return Offer::Full(Unplaced { task, handle });
        }
        self.driver.counters().record_submitted();
        #[cfg(feature = "metrics")]
        self.driver.metrics().submitted();
        let starts = Self::enqueue(&mut state, task);
        drop(state);
        self.start(starts);
        self.job_ready.notify_one();
        if let Some((index, oldest)) = evicted {
            self.driver
                .drop_admitted(&Engine::outside(self), oldest, index, DropReason::Evicted);
        }
        Offer::Accepted(handle)
    }

    /// Gives an accepted job its id, and a handle or its turn's slot when asked for
    /// (`execute` needs neither, and allocates nothing for its result).
    fn accept(&self, reply: JobReply<J>) -> (Option<Handle_<J>>, JobDone<J>) {
        let id = JobId::new(self.next_id.fetch_add(1, Ordering::Relaxed));
        reply.accept(id, self.driver.handles())
    }

    /// Puts a job in the ready queue; returns the worker to start if none is free to take
    /// it. The caller starts it and wakes a worker once it has released the lock.
    fn enqueue(state: &mut State<J>, task: Task<J>) -> Starts {
        state.ready.push_back(task);
        Self::grow_for_queue(state)
    }

    /// Counts workers to start while the queue holds more jobs than there are idle workers
    /// to take them, up to the maximum.
    fn grow_for_queue(state: &mut State<J>) -> Starts {
        let mut starts = Starts::default();
        // Workers not running a job are idle (or just started) and will take one.
        while state.roster.wants_worker_for(state.ready.len()) {
            state.roster.add();
            starts.workers += 1;
        }
        starts
    }

    /// Counts workers to start up to the minimum.
    fn grow_to_min(state: &mut State<J>) -> Starts {
        let mut starts = Starts::default();
        while state.roster.below_min() {
            state.roster.add();
            starts.workers += 1;
        }
        starts
    }

    /// Spawns the tasks the roster and the schedule counted under the lock, which must be
    /// released by now: a runtime that has shut down drops a task as it is spawned, and a
    /// dropped worker takes the lock to leave the roster.
    pub(crate) fn start(self: &Arc<Self>, starts: Starts) {
        for _ in 0..starts.workers {
            let worker = crate::worker::Enlisted::new(Arc::clone(self));
            self.tracker
                .spawn_on(crate::worker::work(worker), &self.runtime);
        }
        if starts.timer {
            let timer = crate::timer::Serving::new(Arc::clone(self));
            self.tracker
                .spawn_on(crate::timer::serve(timer), &self.runtime);
        }
    }

    /// Puts a job aside until `at`, in the delay queue the timer task serves; returns the
    /// timer to start if it does not run yet.
    fn delay(&self, state: &mut State<J>, at: Instant, task: Task<J>) -> Starts {
        let earliest = state.schedule.delay(at, task);
        if earliest {
            self.timer_wake.notify_one();
        }
        Self::ensure_timer(state)
    }

    fn ensure_timer(state: &mut State<J>) -> Starts {
        Starts {
            workers: 0,
            timer: state.schedule.start_timer(),
        }
    }

    /// Wakes `wait_idle` callers if nothing is queued, delayed or running.
    fn check_idle(&self, state: &mut State<J>) {
        if state.is_idle(self.driver.parked()) {
            self.idle_generation.fetch_add(1, Ordering::AcqRel);
            self.became_idle.notify_waiters();
        }
    }

    /// Releases the `wait_idle` callers registered before an idle moment that has already
    /// happened. The count moves under the lock, where callers read it before they
    /// register their wake-up, so none is lost.
    #[cfg(feature = "metrics")]
    fn announce_idle(&self) {
        let state = self.lock();
        self.idle_generation.fetch_add(1, Ordering::AcqRel);
        drop(state);
        self.became_idle.notify_waiters();
    }

    /// Closes intake for a shutdown (or the pool's drop); returns whether this call began
    /// the first.
    pub(crate) fn close(&self) -> bool {
        let mut state = self.lock();
        let first = !state.shutdown_begun;
        state.shutdown_begun = true;
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
        let mut unstarted = state.ready.take_all();
        unstarted.extend(self.driver.take_parked());
        let delayed = state.schedule.take_all();
        unstarted.extend(delayed);
        let running = state.roster.busy();
        self.check_idle(&mut state);
        drop(state);
        self.job_ready.notify_waiters();
        self.timer_wake.notify_one();
        (unstarted, running)
    }

    pub(crate) fn stats(&self) -> Stats {
        let state = self.lock();
        let gauges = Gauges {
            workers: state.roster.live(),
            busy: state.roster.busy(),
            queued: state.ready.len(),
            delayed: state.schedule.len() + self.driver.parked(),
        };
        drop(state);
        self.driver.counters().snapshot(gauges)
    }

    /// Starts the minimum of workers.
    pub(crate) fn start_workers(self: &Arc<Self>) {
        let starts = Self::grow_to_min(&mut self.lock());
        self.start(starts);
    }

    /// Moves the worker range: starts workers up to the new minimum at once; idle workers
    /// above the new maximum wake up and exit, busy ones after their job.
    pub(crate) fn resize(self: &Arc<Self>, min: usize, max: usize) -> Result<(), ConfigError> {
        let mut state = self.lock();
        state.roster.resize(min, max)?;
        let starts = if state.closed {
            Starts::default()
        } else {
            Self::grow_to_min(&mut state) + Self::grow_for_queue(&mut state)
        };
        drop(state);
        self.start(starts);
        self.job_ready.notify_waiters();
        Ok(())
    }

    /// Whether the pool was idle at some moment since a `wait_idle` call began (`began`
    /// keeps the idle count it first saw). When not, `idle` is registered before the lock
    /// is released, so an idle moment in between is not missed.
    pub(crate) fn idle_since(&self, began: &mut Option<u64>, idle: Pin<&mut Notified<'_>>) -> bool {
        let generation = *began.get_or_insert_with(|| self.idle_generation.load(Ordering::Acquire));
        let state = self.lock();
        // An idle moment since the call began releases it, though another caller may have
        // made the pool busy again before this one was polled.
        if state.is_idle(self.driver.parked())
            || self.idle_generation.load(Ordering::Acquire) != generation
        {
            return true;
        }
        idle.enable();
        false
    }

    /// For one of the pool's own jobs: whether nothing else in flight can end before it
    /// does. No other job runs, and every one left waits for the caller: for a worker,
    /// when the caller's is the pool's only one and the pool may not grow (queued, or
    /// delayed until a time), or for capacity no other run will give back (parked).
    pub(crate) fn waits_only_for_the_caller(&self) -> bool {
        let state = self.lock();
        // `busy` counts the caller's worker.
        if state.roster.busy() > 1 {
            return false;
        }
        let waiting_for_a_worker = state.ready.len() + state.schedule.len();
        waiting_for_a_worker == 0 || !state.roster.may_run_two()
    }

    /// A wake-up for `wait_idle` callers; [`idle_since`](Self::idle_since) registers it.
    pub(crate) fn became_idle(&self) -> Notified<'_> {
        self.became_idle.notified()
    }

    /// What a worker looking for work is to do, after its last job left it if `left`
    /// says so (ended, delayed or parked: its slot is free). When it is to wait,
    /// `job_ready` (if given) is registered before the lock is released, so a job queued
    /// in between is not missed; without one, the worker must look again with one before
    /// it waits.
    pub(crate) fn next_job(
        &self,
        job_ready: Option<Pin<&mut Notified<'_>>>,
        left: JobLeft,
    ) -> NextJob<J> {
        let mut state = self.lock();
        if left == JobLeft::Yes {
            // Under the same lock as the next take: one acquisition per job, not two.
            state.roster.job_left();
            #[cfg(not(feature = "metrics"))]
            self.check_idle(&mut state);
            #[cfg(feature = "metrics")]
            if state.is_idle(self.driver.parked()) {
                // The books go out before the idle moment is announced: a `wait_idle`
                // caller it releases reads them settled. The moment happened under this
                // lock, so it is announced even if a submit makes the pool busy meanwhile.
                drop(state);
                self.publish_metrics();
                self.announce_idle();
                state = self.lock();
            }
        }
        if state.roster.retire_if_above_max() {
            drop(state);
            // The timer exits once the last worker has; let it look.
            self.timer_wake.notify_one();
            return NextJob::Exit;
        }
        if let Some(task) = state.ready.pop_front() {
            state.roster.job_started();
            drop(state);
            self.room.notify_one();
            return NextJob::Run(task);
        }
        if state.is_drained(self.driver.parked()) {
            state.roster.retire();
            drop(state);
            // Let the other idle workers and the timer see the pool is done.
            self.job_ready.notify_waiters();
            self.timer_wake.notify_one();
            return NextJob::Exit;
        }
        if let Some(job_ready) = job_ready {
            job_ready.enable();
        }
        NextJob::Wait(state.roster.idle_wait())
    }

    /// An idle worker's keep-alive ran out: `true` when it is to exit (nothing is queued and
    /// the roster is above its minimum).
    pub(crate) fn keep_alive_ran_out(&self) -> bool {
        let mut state = self.lock();
        if !state.ready.is_empty() || !state.roster.retire_if_above_min() {
            return false;
        }
        drop(state);
        self.timer_wake.notify_one();
        true
    }

    /// One turn of the timer: moves the jobs whose time came to the ready queue, then says
    /// what the timer does next. `woken` must be registered before the call.
    pub(crate) fn timer_turn(self: &Arc<Self>) -> TimerTurn<J> {
        let mut state = self.lock();
        // Under the lock `wake_timer` takes: a cancel is seen here or wakes the timer.
        if self.driver.cancels().take_pending() {
            let cancelled = state
                .schedule
                .take_cancelled(|task| self.driver.is_cancelled(task));
            return TimerTurn::EndCancelled(cancelled);
        }
        let now = now();
        let mut moved = false;
        while let Some(task) = state.schedule.pop_due(now) {
            state.ready.push_back(task);
            moved = true;
        }
        let mut starts = Starts::default();
        if moved {
            starts = Self::grow_for_queue(&mut state);
            self.job_ready.notify_waiters();
            self.job_ready.notify_one();
        }
        let turn = if state.schedule.take_due_offer(now) {
            TimerTurn::OfferParked
        } else if state.is_drained(self.driver.parked()) && state.roster.live() == 0 {
            state.schedule.timer_stopped();
            TimerTurn::Exit
        } else {
            TimerTurn::Sleep(state.schedule.next_wake())
        };
        drop(state);
        self.start(starts);
        turn
    }

    /// Ends the jobs the timer took out of the delay queue because they were cancelled,
    /// and the parked ones that were (core's `JobDriver::end_cancelled`).
    pub(crate) fn end_cancelled(self: &Arc<Self>, tasks: Vec<Task<J>>) {
        self.driver.end_cancelled(&Engine::outside(self), tasks);
        // Idle workers of a closed pool may now find it drained.
        self.job_ready.notify_waiters();
    }

    /// Wakes the timer, starting it if it does not run yet (a job parked while runs were
    /// in progress never asked for it).
    pub(crate) fn wake_timer(self: &Arc<Self>) {
        let starts = Self::ensure_timer(&mut self.lock());
        self.start(starts);
        self.timer_wake.notify_one();
    }

    /// A worker's task ended without the worker leaving the roster: tokio dropped it,
    /// with the run it held if any, or a bug unwound through it. Tokio drops a task
    /// otherwise only when its runtime shuts down, and then nothing will run a job again:
    /// the pool gives up first ([`runtime_gone`](Self::runtime_gone)), so that what the
    /// run's end frees goes back rather than into a queue. Then the run is settled
    /// (cancelled, counted) and the worker leaves the roster; after a panic a new worker
    /// replaces it (see [`dropped_by_a_panic`]), else every unstarted job is handed back.
    pub(crate) fn worker_dropped(self: &Arc<Self>, run: Option<Run<J>>, busy: bool) {
        let panicked = dropped_by_a_panic();
        if !panicked {
            self.runtime_gone();
        }
        if let Some(run) = run {
            self.driver.end_dropped(&Engine::outside(self), run);
        }
        let mut state = self.lock();
        if busy {
            state.roster.job_left();
        }
        state.roster.retire();
        self.check_idle(&mut state);
        let starts = if panicked {
            // Whatever is queued still needs a worker, closed pool or not.
            let queued = Self::grow_for_queue(&mut state);
            if state.closed {
                queued
            } else {
                queued + Self::grow_to_min(&mut state)
            }
        } else {
            Starts::default()
        };
        drop(state);
        // Drained, or short of the worker the timer waits for: let it look.
        self.timer_wake.notify_one();
        if !panicked {
            self.hand_back_unstarted();
        } else if self.replace(starts) {
            tracing::error!(pool = %self.driver.name(), "a worker task unwound: a new one replaces it");
        }
    }

    /// The timer's task ended without the timer deciding to exit: tokio dropped it, which it
    /// does only when its runtime shuts down, or a bug unwound through it. In the first
    /// case the pool gives up as when a worker is dropped
    /// ([`worker_dropped`](Self::worker_dropped)): the jobs in the timer's care (waiting
    /// for a time, or parked for capacity, whose fallback offer it makes) are handed back
    /// with every other unstarted one, counted, for the next shutdown's report. A pool
    /// whose workers all retired has no worker left to do it. After a panic a new timer
    /// takes over.
    pub(crate) fn timer_dropped(self: &Arc<Self>) {
        if dropped_by_a_panic() {
            let mut state = self.lock();
            state.schedule.timer_stopped();
            let starts = Self::ensure_timer(&mut state);
            drop(state);
            if self.replace(starts) {
                tracing::error!(pool = %self.driver.name(), "the timer task unwound: a new one replaces it");
            }
            return;
        }
        // The timer stays marked running: nothing could run another on this runtime.
        self.runtime_gone();
        self.hand_back_unstarted();
    }

    /// Spawns the tasks that replace one a panic unwound through; `false` if the runtime
    /// dropped them as they were spawned (it has shut down, and their guards gave the pool
    /// up: see [`dropped_by_a_panic`]).
    fn replace(self: &Arc<Self>, starts: Starts) -> bool {
        REPLACING.set(Some(false));
        self.start(starts);
        REPLACING.take() != Some(true)
    }

    /// The runtime the pool runs on shut down: its tasks are gone and nothing will run a job
    /// again. Closes intake (a later submit gets its job back as `Closed`, and a submitter
    /// waiting for room is woken to hear it) and marks the pool aborting, so that a job on
    /// its way into a queue is handed back instead.
    fn runtime_gone(&self) {
        self.lock().closed = true;
        self.tracker.close();
        self.driver.abort();
        self.room.notify_waiters();
    }

    /// Hands back every unstarted job, for the next shutdown's report.
    fn hand_back_unstarted(self: &Arc<Self>) {
        let (unstarted, _) = self.take_unstarted();
        let engine = Engine::outside(self);
        for task in unstarted {
            self.driver.hand_back(&engine, task);
        }
    }
}

thread_local! {
    /// Set while a pool spawns the tasks that replace one a panic unwound through; their
    /// guards set it to `Some(true)` if the runtime drops them as they are spawned.
    static REPLACING: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether a task of the pool (a worker or the timer) that ended without leaving was
/// dropped by a panic unwinding through it (a bug: it is replaced) rather than by its
/// runtime shutting down (the pool gives up). A thread unwinding a panic may drop a
/// current-thread runtime too (a failing `#[tokio::test]` does), which then drops its
/// tasks while the thread unwinds: the replacement of the first is dropped as it is
/// spawned, a runtime that has shut down drops a task only then, and that tells the two
/// apart. Without it, each replacement's guard would spawn another until the stack
/// overflowed.
fn dropped_by_a_panic() -> bool {
    if REPLACING.get().is_some() {
        REPLACING.set(Some(true));
        return false;
    }
    std::thread::panicking()
}

/// Whether a worker asking for its next job has just finished one with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobLeft {
    Yes,
    No,
}

/// What a worker looking for work is to do.
pub(crate) enum NextJob<J: AsyncJob> {
    Run(Task<J>),
    /// The roster no longer counts it.
    Exit,
    /// Nothing to do yet.
    Wait(IdleWait),
}

/// What the timer does after a turn.
pub(crate) enum TimerTurn<J: AsyncJob> {
    /// Offer the parked jobs their start (outside the lock), then turn again.
    OfferParked,
    /// End these jobs, cancelled while they waited, and the parked ones that were
    /// (outside the lock), then turn again.
    EndCancelled(Vec<Task<J>>),
    /// The pool is done and every worker gone.
    Exit,
    /// Sleep until this time, if any, or until woken.
    Sleep(Option<Instant>),
}

/// Tasks to spawn once the pool's lock is released ([`Shared::start`]): workers the
/// roster counted, and the timer.
#[derive(Debug, Default)]
#[must_use = "spawn them with `Shared::start` once the lock is released"]
pub(crate) struct Starts {
    workers: usize,
    timer: bool,
}

impl std::ops::Add for Starts {
    type Output = Starts;

    fn add(self, other: Starts) -> Starts {
        Starts {
            workers: self.workers + other.workers,
            timer: self.timer || other.timer,
        }
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
        if self.shared.driver.is_aborting() {
            // A shutdown that stops the jobs marks the pool before it takes the unstarted
            // ones under this lock: a job put aside after that would wait out its time
            // with the shutdown waiting for it.
            drop(state);
            self.shared.driver.hand_back(self, task);
            return;
        }
        let starts = self.shared.delay(&mut state, at, task);
        drop(state);
        self.shared.start(starts);
    }

    fn requeue(&self, task: Task<J>) {
        let mut state = self.shared.lock();
        if self.shared.driver.is_aborting() {
            // As in `delay`: no worker may be left to take it.
            drop(state);
            self.shared.driver.hand_back(self, task);
            return;
        }
        state.ready.push_granted(task);
        let starts = Shared::grow_for_queue(&mut state);
        drop(state);
        self.shared.start(starts);
        self.shared.job_ready.notify_one();
    }

    fn offer_parked_later(&self) {
        let mut state = self.shared.lock();
        let at = brigade_core::instant_after(now(), OFFER_PARKED_FALLBACK);
        state.schedule.offer_parked_at(at);
        let starts = Shared::ensure_timer(&mut state);
        drop(state);
        self.shared.start(starts);
        self.shared.timer_wake.notify_one();
    }

    fn job_ended(&self) {
        if !self.in_worker {
            let mut state = self.shared.lock();
            self.shared.check_idle(&mut state);
        }
    }
}
