//! The worker: claims jobs from a store and runs them on a local pool.

mod acks;
mod builder;
mod counters;
mod dispatch;
mod fence;
mod global_limits;
mod held;
mod local_pool;
mod try_again;
mod unwind;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_core::backend::panic_message;
use brigade_core::{CancellationToken, instant_after};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use builder::{
    DEFAULT_CONCURRENCY, DEFAULT_LEASE, MAX_CONCURRENCY, MAX_LEASE, MIN_HEARTBEAT, MIN_LEASE,
    MIN_STORE_TIMEOUT, WorkerBuilder,
};
pub use counters::{WorkerCounters, WorkerReport};

use acks::{AckBatcher, PendingAcks};
use counters::Count;
use dispatch::{Dispatch, Prepared, RunEnd, RunMeta};
use fence::{Fence, StopReason};
use global_limits::{GlobalLimits, Passage};
use held::HeldLeases;
use try_again::TryAgain;
use unwind::{panicked, unwind_caught};

use crate::{Ack, Claim, ClaimRequest, Lease, Store, StoreError};

/// Claims jobs of one queue from a [`Store`] and runs them on a local pool, with leases kept
/// alive by heartbeats, expired leases of crashed workers rescued, failures retried at a
/// run-again time kept in the store, and a graceful shutdown that gives unfinished jobs back.
///
/// Run as many workers as you like, in one process or on many hosts: the store hands each
/// job to one claimant at a time and fences off any claimant whose lease has passed.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(store: impl brigade_queue::Store) -> Result<(), brigade_core::ConfigError> {
/// use brigade_core::CancellationToken;
/// use brigade_queue::{Delivery, Worker};
///
/// #[derive(serde::Deserialize)]
/// struct Email { to: String }
///
/// let worker = Worker::builder(store, "emails").concurrency(8).handle(
///     |email: Email, delivery: Delivery| async move {
///         println!("{}: sending to {} (run {})", delivery.id(), email.to, delivery.attempt());
///         Ok::<(), String>(())
///     },
/// )?;
/// let shutdown = CancellationToken::new();
/// let report = worker.run(shutdown.clone()).await; // until shutdown.cancel()
/// println!("{} completed", report.completed);
/// # Ok(())
/// # }
/// ```
pub struct Worker<S> {
    store: S,
    queue: Arc<str>,
    id: String,
    settings: Settings,
    limits: GlobalLimits,
    dispatch: Arc<dyn Dispatch>,
    counters: WorkerCounters,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    concurrency: usize,
    lease: Duration,
    heartbeat: Duration,
    sweep: Duration,
    poll: Duration,
    grace: Duration,
    store_timeout: Duration,
}

impl<S> fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue)
            .field("id", &self.id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the claim loop, the lease keeper and each job's task share.
struct Shared<S> {
    store: S,
    queue: Arc<str>,
    settings: Settings,
    limits: GlobalLimits,
    dispatch: Arc<dyn Dispatch>,
    counters: WorkerCounters,
    held: HeldLeases,
    acks: AckBatcher,
    /// Runs that ended and wait for the store to record it: one permit each, as many as
    /// there are slots.
    recording: Arc<Semaphore>,
}

impl<S: Store> Worker<S> {
    /// Starts configuring a worker for `queue` in `store`.
    ///
    /// # Examples
    ///
    /// See [`Worker`].
    pub fn builder<E>(store: S, queue: impl Into<String>) -> WorkerBuilder<S, E>
    where
        E: fmt::Debug + fmt::Display + Send + 'static,
    {
        WorkerBuilder::new(store, queue.into())
    }

    /// The name its leases carry.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(worker: brigade_queue::Worker<impl brigade_queue::Store>) {
    /// println!("worker {}", worker.id());
    /// # }
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its live counters, readable while it runs.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn demo(worker: brigade_queue::Worker<impl brigade_queue::Store>) {
    /// let counters = worker.counters();
    /// // ... spawn worker.run(..), then poll:
    /// println!("{} completed so far", counters.snapshot().completed);
    /// # }
    /// ```
    #[must_use]
    pub fn counters(&self) -> WorkerCounters {
        self.counters.clone()
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, gives back the claimed jobs
    /// that have not started (waiting at a global limit), lets running jobs finish within
    /// the grace period, stops the rest and gives their jobs back uncharged. A run that
    /// ignores its token does not hold the return: its job is given back all the same and
    /// the run counted in [`WorkerReport::unstopped`]. A claim the worker gave up on (no
    /// answer within the store timeout) may still have taken jobs: the return waits for
    /// its answer, to give them back, for at most the lease and a store timeout.
    ///
    /// Whatever the store does, it returns within the grace, the lease and five store
    /// timeouts of the cancel: a claim on its way (a store timeout; its jobs go back
    /// unrun), the grace, twice the store timeout for stopped runs to end, then the ends
    /// still owed (a success whose ack has not gone through, the release of a run deaf to
    /// its token), recorded together and each only while its lease lasts, with no lease
    /// renewed from then on (at most the lease and a store timeout), and a store timeout
    /// for the local pool. An end not recorded by then is counted in
    /// [`WorkerReport::unrecorded`]; its job is redelivered once its lease expires.
    ///
    /// Once it returns, nothing the worker started is left holding a job, so the process
    /// may exit.
    ///
    /// A store that cannot be reached is retried with backoff for as long as it takes:
    /// a worker rides out a database restart with no action. While it cannot renew a
    /// lease, it stops that job's run (its token) before the lease ends.
    ///
    /// # Examples
    ///
    /// See [`Worker`].
    pub async fn run(self, shutdown: CancellationToken) -> WorkerReport {
        let Worker {
            store,
            queue,
            id,
            settings,
            limits,
            dispatch,
            counters,
        } = self;
        let (acks, flush_acks) = AckBatcher::new(store.clone(), settings.store_timeout);
        let shared = Arc::new(Shared {
            store,
            queue,
            settings,
            limits,
            dispatch,
            counters,
            held: HeldLeases::default(),
            acks,
            recording: Arc::new(Semaphore::new(settings.concurrency)),
        });
        let mut background = JoinSet::new();
        background.spawn(flush_acks);
        background.spawn(keep_leases(Arc::clone(&shared)));
        background.spawn(fence_expiring(Arc::clone(&shared)));
        background.spawn(rescue(Arc::clone(&shared)));

        let mut jobs = JoinSet::new();
        let mut claims = JoinSet::new();
        claim_until(&shared, &Arc::from(id), &shutdown, &mut jobs, &mut claims).await;
        let report = drain(&shared, jobs, claims).await;
        background.abort_all();
        while background.join_next().await.is_some() {}
        report
    }
}

/// The claim loop: claim as many jobs as there are free slots, start them, and wait for a
/// wake-up or the poll interval when the queue runs dry. `claims` gets the tasks that see
/// a claim through to its end, or give back what it took (see [`claim`]).
async fn claim_until<S: Store>(
    shared: &Arc<Shared<S>>,
    worker: &Arc<str>,
    shutdown: &CancellationToken,
    jobs: &mut JoinSet<()>,
    claims: &mut JoinSet<()>,
) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
    let wakeup = shared.store.wakeup(&shared.queue);
    let mut failures = 0u32;
    // Whether the last claim filled every slot it asked for: jobs are waiting.
    let mut backlog = false;
    // Reruns the last claim took that have not started yet (see `await_starts`).
    let mut unstarted: Vec<oneshot::Receiver<()>> = Vec::new();
    loop {
        while jobs.try_join_next().is_some() {}
        while claims.try_join_next().is_some() {}
        if !await_starts(&mut unstarted, shutdown).await {
            return;
        }
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => return,
            },
        };
        let mut free = vec![first];
        if backlog && shared.store.claims_carry_acks() {
            // The runs whose slots this claim gathers are ending: their acks go with it.
            shared.acks.claim_due();
        }
        gather_slots(&slots, &mut free, backlog, shared.settings.concurrency).await;
        // A store that records acks in the claim's round trip gets them with it.
        let acks = shared.store.claims_carry_acks().then(|| shared.acks.take());
        let woken = wakeup.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let settings = shared.settings;
        let sent = Instant::now();
        let claimed = claim(shared, worker, free.len(), acks, claims).await;
        let idle_wait = match claimed {
            Ok(mut taken) => {
                failures = 0;
                if taken.len() > free.len() {
                    // More than asked for: no slot would run the rest.
                    let extra = taken.split_off(free.len());
                    let shared = Arc::clone(shared);
                    claims.spawn(async move {
                        release_unwanted(&shared, extra, sent, "more than the claim asked for")
                            .await;
                    });
                }
                let filled = taken.len() == free.len();
                backlog = filled;
                shared.counters.add(Count::Claimed, taken.len() as u64);
                for claim in taken {
                    let Some(slot) = free.pop() else { break };
                    let fence = shared.held.insert(
                        claim.lease(),
                        instant_after(sent, settings.lease),
                        claim.attempt,
                    );
                    if shutdown.is_cancelled() {
                        // The shutdown began while the claim was on its way: its runs
                        // would race the shutdown's stop of unstarted runs, and some
                        // would start. Stopped now, each gives its job back, uncharged.
                        fence.stop_unstarted(StopReason::Shutdown);
                    }
                    let span = tracing::info_span!(
                        "durable_job",
                        queue = %shared.queue,
                        id = claim.id.get(),
                        attempt = claim.attempt
                    );
                    let started = (claim.attempt > 1).then(|| {
                        let (started, starts) = oneshot::channel();
                        unstarted.push(starts);
                        started
                    });
                    let run = run_claim(Arc::clone(shared), claim, fence, slot, started);
                    jobs.spawn(run.instrument(span));
                }
                // After a rerun more may wait though the claim came back short (a store
                // hands out one rescued job per claim): claim again at once.
                (!filled && unstarted.is_empty()).then_some(settings.poll)
            }
            Err(error) => {
                backlog = false;
                shared.counters.add(Count::StoreError, 1);
                failures = failures.saturating_add(1);
                tracing::warn!(%error, queue = %shared.queue, "claim failed; retrying");
                Some(backoff(failures, settings.poll))
            }
        };
        drop(free);
        if let Some(wait) = idle_wait {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = &mut woken => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Claims up to `limit` jobs, with `acks` if there are any (answering them), within the
/// store timeout.
///
/// The store call runs in a task of its own, joined to `claims`. A claim given up at the
/// timeout may still commit (its answer was only slow), and its jobs would then wait out
/// their leases with nobody to run them, each charged an attempt: a job on its last
/// attempt would die without a run. Given up on, the task releases what the claim took
/// when its answer does come (uncharged), or leaves it to the rescuer if none comes
/// within the lease. The worker's shutdown waits for these tasks: they may hold jobs.
async fn claim<S: Store>(
    shared: &Arc<Shared<S>>,
    worker: &Arc<str>,
    limit: usize,
    acks: Option<PendingAcks>,
    claims: &mut JoinSet<()>,
) -> Result<Vec<Claim>, StoreError> {
    let acks = acks.filter(|acks| !acks.is_empty());
    let leases = acks.as_ref().map(PendingAcks::leases);
    let (answer, mut answered) = oneshot::channel();
    let task = {
        let (shared, worker) = (Arc::clone(shared), Arc::clone(worker));
        async move {
            let settings = shared.settings;
            // The lease starts when the store takes the claim, after this.
            let sent = Instant::now();
            let request = ClaimRequest::new(&shared.queue, &worker, limit, settings.lease);
            let both = async {
                match &leases {
                    Some(leases) => {
                        let (answers, claimed) =
                            shared.store.complete_and_claim(leases, request).await;
                        (Some(answers), claimed)
                    }
                    None => (None, shared.store.claim(request).await),
                }
            };
            let Ok(both) = tokio::time::timeout(settings.lease, unwind_caught(both)).await else {
                return;
            };
            let both = both.unwrap_or_else(|panic| {
                let error = panicked(&panic);
                let answers = leases
                    .as_ref()
                    .map(|leases| leases.iter().map(|_| Err(error.replicate())).collect());
                (answers, Err(error))
            });
            if let Err((_, Ok(claims))) = answer.send(both) {
                release_unwanted(&shared, claims, sent, "answered after its timeout").await;
            }
        }
    };
    claims.spawn(task);
    let timeout = shared.settings.store_timeout;
    let both = match tokio::time::timeout(timeout, &mut answered).await {
        Ok(answer) => answer.ok(),
        Err(_elapsed) => {
            // The answer may have come as the wait ended. Closed, the channel holds it, or
            // refuses the task's send, and the task then gives back what the claim took:
            // either way nothing the claim took is left without a holder.
            answered.close();
            answered.try_recv().ok()
        }
    };
    match both {
        Some((answers, claimed)) => {
            if let (Some(acks), Some(answers)) = (acks, answers) {
                acks.answer(answers);
            }
            claimed
        }
        None => {
            let error = StoreError::Unavailable(format!("no answer within {timeout:?}").into());
            if let Some(acks) = acks {
                acks.fail(&error);
            }
            Err(error)
        }
    }
}

/// Gives back, uncharged, claimed jobs that no slot of this worker will run (`why`), from a
/// claim sent at `sent`. A give-back that fails for a reason that may pass is sent again
/// while the claim's lease lasts: a job left to wait out its lease is charged a run it never
/// had, and on its last attempt is dead unrun.
async fn release_unwanted<S: Store>(
    shared: &Shared<S>,
    claims: Vec<Claim>,
    sent: Instant,
    why: &str,
) {
    if claims.is_empty() {
        return;
    }
    tracing::info!(queue = %shared.queue, jobs = claims.len(), "giving back the jobs of a claim {why}");
    let expires = instant_after(sent, shared.settings.lease);
    let mut left: Vec<Lease> = claims.iter().map(Claim::lease).collect();
    let mut again = TryAgain::new();
    loop {
        let mut failed = Vec::new();
        for lease in left {
            // `Stale` too ends it: a try that timed out took, or the lease is gone.
            if let Err(error) =
                call(shared.settings.store_timeout, shared.store.release(lease)).await
            {
                failed.push((lease, error));
            }
        }
        let in_time = again.lands_before(expires);
        let (retry, give_up): (Vec<_>, Vec<_>) = failed
            .into_iter()
            .partition(|(_, error)| in_time && error.is_transient());
        for (lease, error) in give_up {
            tracing::warn!(%error, id = %lease.id, "a claimed job not given back; it returns when its lease expires");
        }
        if retry.is_empty() {
            return;
        }
        left = retry.into_iter().map(|(lease, _)| lease).collect();
        again.wait().await;
    }
}

/// Takes every other free slot. With a backlog, runs end in bursts (their acks are answered
/// a batch at a time) and their tasks give their slots back over the next few
/// microseconds: a few yields gather those too, so one claim serves them all instead of a
/// claim per slot. Still with a backlog, a claim waits a moment (at most `MERGE_WAIT`)
/// for the runs in progress to end and fill every slot: otherwise the slots split into
/// groups that take turns, one group's runs ending while another's claim is on its way,
/// and every round trip to the store claims a fraction of what it could.
async fn gather_slots(
    slots: &Arc<Semaphore>,
    free: &mut Vec<OwnedSemaphorePermit>,
    backlog: bool,
    concurrency: usize,
) {
    const YIELDS: usize = 4;
    const MERGE_WAIT: Duration = Duration::from_millis(2);
    for attempt in 0..=YIELDS {
        while let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
            free.push(slot);
        }
        if !backlog || attempt == YIELDS {
            break;
        }
        tokio::task::yield_now().await;
    }
    if !backlog {
        return;
    }
    let deadline = tokio::time::Instant::now() + MERGE_WAIT;
    while free.len() < concurrency {
        tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => match slot {
                Ok(slot) => free.push(slot),
                Err(_closed) => return,
            },
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Waits until the reruns of the last claim have started (or ended without starting);
/// false when the worker shuts down first.
///
/// A job that kills its worker process (a poison job: an abort, a segfault) takes every job
/// the process holds with it, and each of those runs counts as an attempt. Jobs that came
/// back together from such a death must not go out together again, or the same neighbours
/// die on every attempt. This worker claims nothing more until the reruns it holds have
/// started, so no later claim adds a neighbour to one that has not; every store also hands
/// out one rescued job per claim (kit check `rescued_jobs_go_out_one_per_claim`). A rerun
/// is any claim past its first attempt: a rescued job, or a retry after its delay.
async fn await_starts(
    unstarted: &mut Vec<oneshot::Receiver<()>>,
    shutdown: &CancellationToken,
) -> bool {
    for starts in unstarted.drain(..) {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return false,
            // Sent as the run starts; dropped unsent if it ends before.
            _ = starts => {}
        }
    }
    true
}

/// One claimed job, from its payload to the record of its end.
async fn run_claim<S: Store>(
    shared: Arc<Shared<S>>,
    claim: Claim,
    fence: Arc<Fence>,
    slot: OwnedSemaphorePermit,
    mut started: Option<oneshot::Sender<()>>,
) {
    let lease = claim.lease();
    let attempt = claim.attempt;
    let _let_go = LetGoOnUnwind {
        held: &shared.held,
        lease,
    };
    let meta = RunMeta::of(&claim, &shared.queue);
    let end = match prepare(shared.dispatch.as_ref(), claim.payload, meta) {
        Err(error) => RunEnd::Bury { error },
        Ok(prepared) => {
            let passage = if shared.limits.is_open() {
                Passage::Open { holds_units: false }
            } else {
                let weight = prepared.weight();
                let settings = shared.settings;
                shared
                    .limits
                    .pass(
                        &shared.store,
                        lease,
                        weight,
                        &settings,
                        &fence,
                        &shared.counters,
                    )
                    .await
            };
            match passage {
                Passage::Open { holds_units } => {
                    // A last look before the handler runs: a shutdown stops runs that
                    // have not started, and a wait for the limits can outlast the lease
                    // (a paused process, a long queue for units), and the self-fencing
                    // tick may not have run since.
                    let end = if !fence.start() {
                        RunEnd::unstarted(&fence)
                    } else if !vouched_for(&shared, lease) {
                        fence.stop(StopReason::LeaseLost);
                        RunEnd::unstarted(&fence)
                    } else {
                        if let Some(started) = started.take() {
                            let _ = started.send(());
                        }
                        prepared.start(Arc::clone(&fence)).await
                    };
                    if holds_units {
                        give_back_units(&shared, lease).await;
                    }
                    end
                }
                Passage::Stopped { holds_units } => {
                    if holds_units {
                        give_back_units(&shared, lease).await;
                    }
                    RunEnd::unstarted(&fence)
                }
                Passage::Never(error) => RunEnd::Bury { error },
            }
        }
    };
    fence.end();
    // Should the shutdown give up on this task from here on, it records this end in its
    // place.
    shared.held.ended(lease, &end);
    // A run that ended without starting tells the claim loop now, not after its record's
    // round trip to the store.
    drop(started);
    // The slot starts another job while this end is on its way to the store, so the next
    // claim can travel with this ack instead of waiting a round trip behind it. No more
    // ends wait than there are slots: a worker holds at most twice its concurrency in
    // leases.
    let recording = Arc::clone(&shared.recording).acquire_owned().await;
    drop(slot);
    record(&shared, lease, attempt, &end, false, None).await;
    shared.held.remove(lease);
    drop(recording);
}

/// Decodes a claimed payload and weighs the job, turning a panic in the job's
/// `Deserialize` or the handler's `weight` into the job's end: it would panic on every
/// run, so it is dead at once, with the panic's message as its error.
fn prepare(
    dispatch: &dyn Dispatch,
    payload: serde_json::Value,
    meta: RunMeta,
) -> Result<Box<dyn Prepared>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| dispatch.prepare(payload, meta))).unwrap_or_else(
        |panic| {
            Err(format!(
                "decoding or weighing the job panicked: {}",
                panic_message(panic.as_ref())
            ))
        },
    )
}

/// Lets go of a run's lease if the run's task unwinds. The user's code that runs in this
/// task is caught where it runs; this is for a panic nothing caught. Without it the
/// heartbeat would renew the lease of a run that no longer exists for as long as the
/// worker lives, and the job would stay running, unrescued. Let go, the lease expires and
/// the rescuer charges the attempt, so a job that keeps panicking here still dies.
struct LetGoOnUnwind<'a> {
    held: &'a HeldLeases,
    lease: Lease,
}

impl Drop for LetGoOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.held.remove(self.lease);
        }
    }
}

/// Whether this host can still vouch for `lease` beyond the self-fencing margin.
fn vouched_for<S>(shared: &Shared<S>, lease: Lease) -> bool {
    let margin = fence_margin(shared.settings.lease);
    shared
        .held
        .expires(lease)
        .is_some_and(|expires| Instant::now() + margin < expires)
}

async fn give_back_units<S: Store>(shared: &Shared<S>, lease: Lease) {
    let Some(units) = &shared.limits.units else {
        return;
    };
    if let Err(error) = call(
        shared.settings.store_timeout,
        shared.store.release_units(units, lease),
    )
    .await
    {
        shared.counters.add(Count::StoreError, 1);
        tracing::warn!(%error, "units not given back; they return when the lease expires");
    }
}

/// Records how the run of `attempt` under `lease` ended, retrying while the store is
/// unreachable and the lease lasts. `maybe_sent`: the end may have been sent before, with
/// no answer heard (an earlier try given up). `give_up`: a time by which the record is
/// over, recorded or not (a shutdown's); every store call is cut off there.
///
/// A try that fails without an answer (a timeout, a store that went away) may have been
/// recorded all the same, and the next try is then refused as stale: a refusal after such
/// a failure is checked against the job's state in the store, and counted as the end it
/// is when the store shows this end took (the store's contract stands: the second ack is
/// refused). Only a refusal of an end that did not take is a duplicate run.
async fn record<S: Store>(
    shared: &Shared<S>,
    lease: Lease,
    attempt: u32,
    end: &RunEnd,
    maybe_sent: bool,
    give_up: Option<Instant>,
) {
    let count = match end {
        RunEnd::Succeeded => Count::Completed,
        RunEnd::Retry { .. } => Count::Retried,
        RunEnd::Bury { .. } => Count::Dead,
        RunEnd::Release | RunEnd::ReleaseIfHeld => Count::Released,
        RunEnd::Abandon => {
            shared.counters.add(Count::LostLease, 1);
            return;
        }
    };
    let store = &shared.store;
    let timeout = shared.settings.store_timeout;
    let mut maybe_sent = maybe_sent;
    let mut again = TryAgain::new();
    loop {
        let sent = until(give_up, async {
            match end {
                RunEnd::Succeeded => shared.acks.complete(lease).await,
                RunEnd::Retry { delay, error } => {
                    call(timeout, store.retry(lease, *delay, error)).await
                }
                RunEnd::Bury { error } => call(timeout, store.bury(lease, error)).await,
                RunEnd::Release | RunEnd::ReleaseIfHeld | RunEnd::Abandon => {
                    call(timeout, store.release(lease)).await
                }
            }
        });
        let result = sent.await.unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                "no answer before the shutdown gave up on it".into(),
            ))
        });
        match result {
            Ok(Ack::Recorded) => return shared.counters.add(count, 1),
            Ok(Ack::Stale) => {
                if maybe_sent
                    && until(give_up, took(shared, lease, attempt, end))
                        .await
                        .unwrap_or(false)
                {
                    return shared.counters.add(count, 1);
                }
                if *end == RunEnd::ReleaseIfHeld {
                    tracing::info!(id = %lease.id, "an unstarted job's lease was gone; the store redelivers the job");
                    return shared.counters.add(Count::LostLease, 1);
                }
                tracing::info!(id = %lease.id, "run's end refused: the lease had passed to another claim");
                return shared.counters.add(Count::Stale, 1);
            }
            Err(error) => {
                shared.counters.add(Count::StoreError, 1);
                // A transient failure is a try whose outcome is unknown.
                maybe_sent |= error.is_transient();
                let lease_left = shared.held.expires(lease).is_some_and(|expires| {
                    again.lands_before(give_up.map_or(expires, |give_up| expires.min(give_up)))
                });
                if !error.is_transient() || !lease_left {
                    tracing::warn!(%error, id = %lease.id, "run's end not recorded; the store will redeliver the job");
                    let unrecorded = match end {
                        RunEnd::ReleaseIfHeld => Count::LostLease,
                        _ => Count::Unrecorded,
                    };
                    return shared.counters.add(unrecorded, 1);
                }
                again.wait().await;
            }
        }
    }
}

/// Whether the store shows `end` recorded for the run of `attempt` (see
/// [`RunEnd::shows_in`]); false if it cannot say.
async fn took<S: Store>(shared: &Shared<S>, lease: Lease, attempt: u32, end: &RunEnd) -> bool {
    match call(shared.settings.store_timeout, shared.store.job(lease.id)).await {
        Ok(Some(job)) => end.shows_in(&job, attempt),
        Ok(None) => false,
        Err(error) => {
            shared.counters.add(Count::StoreError, 1);
            tracing::warn!(%error, id = %lease.id, "could not tell whether a run's end was recorded");
            false
        }
    }
}

/// Renews every held lease in one call per heartbeat; stops the runs whose lease is gone.
///
/// Each heartbeat leaves an interval after the last one was sent, not after its answer
/// came: a renewal counts from its send (the lease's end as this host can vouch for it),
/// so a store that answers late would otherwise cost its delay twice in every interval,
/// and with answers late enough every run would reach its self-fencing point.
///
/// A failed heartbeat is tried again soon, not a whole interval later: a call that fails
/// slowly (a store timeout, a database restarting) can end most of an interval after it
/// was sent, and a full interval more would pass the self-fencing point of every run
/// this worker holds. The retries start at a tenth of the interval and double up to it.
async fn keep_leases<S: Store>(shared: Arc<Shared<S>>) {
    let settings = shared.settings;
    let first_retry = (settings.heartbeat / 10).max(Duration::from_millis(10));
    let mut next = instant_after(Instant::now(), settings.heartbeat);
    let mut failures = 0u32;
    loop {
        tokio::time::sleep_until(next.into()).await;
        if shared.held.is_frozen() {
            // The shutdown gave its runs up: their leases only have to run out now.
            return;
        }
        let asked = shared.held.leases();
        if asked.is_empty() {
            next = instant_after(Instant::now(), settings.heartbeat);
            continue;
        }
        let sent = Instant::now();
        match call(
            settings.store_timeout,
            shared.store.heartbeat(&asked, settings.lease),
        )
        .await
        {
            Ok(renewed) => {
                failures = 0;
                next = instant_after(sent, settings.heartbeat);
                let lost = shared.held.renewed(&asked, &renewed, sent, settings.lease);
                if lost > 0 {
                    tracing::info!(lost, queue = %shared.queue, "leases revoked or expired; their runs are stopped");
                }
            }
            Err(error) => {
                shared.counters.add(Count::StoreError, 1);
                tracing::warn!(%error, queue = %shared.queue, "heartbeat failed; trying again soon");
                failures = failures.saturating_add(1);
                let wait = first_retry
                    .saturating_mul(1 << (failures - 1).min(10))
                    .min(settings.heartbeat);
                next = instant_after(Instant::now(), wait);
            }
        }
    }
}

/// Self-fencing: a run whose lease this host cannot vouch for much longer is stopped
/// before the lease ends, so that it does not run on after another worker claimed the job.
async fn fence_expiring<S: Store>(shared: Arc<Shared<S>>) {
    let margin = fence_margin(shared.settings.lease);
    let tick = (margin / 4).max(Duration::from_millis(5));
    loop {
        tokio::time::sleep(tick).await;
        let fenced = shared.held.fence_expiring(Instant::now(), margin);
        if fenced > 0 {
            tracing::warn!(fenced, queue = %shared.queue, "leases not renewed in time; runs stopped");
        }
    }
}

/// How long before its end a lease that was not renewed is given up.
fn fence_margin(lease: Duration) -> Duration {
    lease / 4
}

/// Makes the expired leases of crashed or paused workers claimable again.
async fn rescue<S: Store>(shared: Arc<Shared<S>>) {
    loop {
        match call(
            shared.settings.store_timeout,
            shared.store.rescue(&shared.queue),
        )
        .await
        {
            Ok(rescued) if rescued.total() > 0 => {
                tracing::info!(requeued = rescued.requeued, dead = rescued.dead, queue = %shared.queue, "rescued expired leases");
            }
            Ok(_) => {}
            Err(error) => {
                shared.counters.add(Count::StoreError, 1);
                tracing::warn!(%error, queue = %shared.queue, "rescue failed");
            }
        }
        tokio::time::sleep(shared.settings.sweep).await;
    }
}

/// The graceful end: give back the jobs that have not started, wait for running jobs up
/// to the grace period, then stop them and give their jobs back uncharged. Returns once
/// every job this worker claimed is accounted for, so the process may exit then.
async fn drain<S: Store>(
    shared: &Arc<Shared<S>>,
    mut jobs: JoinSet<()>,
    mut claims: JoinSet<()>,
) -> WorkerReport {
    let settings = shared.settings;
    // A claim given up on holds its jobs until its answer comes (it gives them back then)
    // or its task gives up on it, at the lease: a claim answered later than that has
    // jobs whose leases have passed, the rescuer's now.
    let claims_done = instant_after(
        Instant::now(),
        settings.lease.saturating_add(settings.store_timeout),
    );
    // The grace is for runs: claimed jobs still waiting at the global limits go back now,
    // where another worker may start them, instead of holding the shutdown.
    shared.held.stop_unstarted(StopReason::Shutdown);
    if !shared
        .held
        .wait_empty(instant_after(Instant::now(), settings.grace))
        .await
    {
        shared.held.stop_all(StopReason::Shutdown);
        // Runs that heed their token end now and give their job back themselves.
        let heeded = shared
            .held
            .wait_empty(instant_after(
                Instant::now(),
                settings.store_timeout.saturating_mul(2),
            ))
            .await;
        if !heeded {
            // Runs that ignore their token: give their jobs back from here; whatever
            // they record later is refused as stale. The other leases left are ends on
            // their way to the store: those are recorded from here as their runs decided
            // (an end cut off mid-way may have been recorded already).
            shared
                .counters
                .add(Count::Unstopped, shared.held.running() as u64);
            jobs.abort_all();
            // Their tasks first, so that no end is recorded (and counted) twice.
            while jobs.join_next().await.is_some() {}
            record_owed(shared).await;
        }
    }
    while jobs.join_next().await.is_some() {}
    let claims_ended = tokio::time::timeout_at(claims_done.into(), async {
        while claims.join_next().await.is_some() {}
    })
    .await;
    if claims_ended.is_err() {
        tracing::warn!(queue = %shared.queue, "a claim still unanswered; its jobs return when their leases expire");
        claims.abort_all();
        while claims.join_next().await.is_some() {}
    }
    // Every job is accounted for. The local pool waits for its runs; one deaf to its token
    // would hold the shutdown for good, so the wait is as long as a store call's.
    let pool_stopped = tokio::time::timeout(
        settings.store_timeout,
        shared.dispatch.shutdown(settings.store_timeout),
    )
    .await;
    if pool_stopped.is_err() {
        tracing::warn!(
            queue = %shared.queue,
            "runs that ignored their stop are still going; their jobs were given back"
        );
    }
    shared.counters.snapshot()
}

/// Records, all at once, the ends owed for the leases a shutdown still holds once it has
/// given up on their runs' tasks: the end a run decided, or a release for a run that
/// decided none (deaf to its token, or cut off before it ended).
///
/// Each end is tried while its lease lasts, and from here no lease is renewed: a store
/// whose acks fail while its heartbeats succeed would otherwise keep every lease, and the
/// tries, going for good. The leases run out within a lease of now, and every try is cut
/// off a store timeout after that. The ends go together (the successes in one batch of
/// acks), so a store that does not answer costs the wait once, not once per lease. A lease
/// already past its end as this host can vouch for it is still tried once: the stores
/// record an end under an expired lease until a rescue or a claim takes the job, and a
/// release recorded then spares the job an attempt (a success, a second run).
async fn record_owed<S: Store>(shared: &Arc<Shared<S>>) {
    shared.held.freeze();
    let settings = shared.settings;
    let give_up = instant_after(
        Instant::now(),
        settings.lease.saturating_add(settings.store_timeout),
    );
    let mut owed = JoinSet::new();
    for lease in shared.held.leases() {
        let Some((attempt, end)) = shared.held.owed(lease) else {
            continue;
        };
        let shared = Arc::clone(shared);
        owed.spawn(async move {
            match end {
                Some(end) => record(&shared, lease, attempt, &end, true, Some(give_up)).await,
                None => {
                    record(
                        &shared,
                        lease,
                        attempt,
                        &RunEnd::Release,
                        false,
                        Some(give_up),
                    )
                    .await;
                }
            }
            shared.held.remove(lease);
        });
    }
    while owed.join_next().await.is_some() {}
}

/// A store call that gives up after `timeout`, as an unreachable store. A panic in the
/// store's code is a failed call too: the worker's tasks outlive it.
async fn call<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, unwind_caught(operation)).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(panicked(&panic)),
        Err(_elapsed) => Err(StoreError::Unavailable(
            format!("no answer within {timeout:?}").into(),
        )),
    }
}

/// Runs `operation` to its end, or until `give_up` if there is one (then `None`).
async fn until<T>(give_up: Option<Instant>, operation: impl Future<Output = T>) -> Option<T> {
    match give_up {
        Some(give_up) => tokio::time::timeout_at(give_up.into(), operation)
            .await
            .ok(),
        None => Some(operation.await),
    }
}

/// The wait after `failures` failed claims in a row: doubling from the poll interval's
/// tenth, capped at five seconds.
fn backoff(failures: u32, poll: Duration) -> Duration {
    let base = (poll / 10).max(Duration::from_millis(10));
    base.saturating_mul(1 << failures.min(10))
        .min(Duration::from_secs(5))
}
