use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Claim, ClaimRequest, DurableId, EnqueueError, GlobalConcurrency, GlobalRate, JobRecord, Lease,
    NewJob, QueueCounts, RateGrant, StoreError,
};

/// What a store acknowledged for an enqueue.
///
/// # Examples
///
/// ```
/// use brigade_queue::{DurableId, Enqueued};
///
/// let enqueued = Enqueued { id: DurableId::new(1), duplicate: false };
/// assert!(!enqueued.duplicate);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id.
    pub id: DurableId,
    /// A live job with the same unique key existed; `id` is that job's and nothing was
    /// added.
    pub duplicate: bool,
}

/// What a store did with a transition that ends a run (ack, retry, dead, release).
///
/// # Examples
///
/// ```
/// use brigade_queue::Ack;
///
/// assert!(Ack::Recorded.is_recorded());
/// assert!(!Ack::Stale.is_recorded());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Ack {
    /// The caller held the current lease; the transition happened.
    Recorded,
    /// The caller's fencing token is no longer current (its lease expired and the job was
    /// rescued or claimed again, or an operator cancelled it): nothing changed, and the run
    /// the caller made is a duplicate.
    Stale,
}

impl Ack {
    /// Whether the transition happened.
    ///
    /// # Examples
    ///
    /// See [`Ack`].
    #[must_use]
    pub fn is_recorded(self) -> bool {
        self == Ack::Recorded
    }
}

/// What one pass of the rescuer did with expired leases.
///
/// # Examples
///
/// ```
/// let rescued = brigade_queue::Rescued { requeued: 2, dead: 1 };
/// assert_eq!(rescued.total(), 3);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescued {
    /// Jobs made claimable again (the expired run counted as an attempt).
    pub requeued: u64,
    /// Jobs whose expired run was their last allowed one.
    pub dead: u64,
}

impl Rescued {
    /// Every job the pass touched.
    ///
    /// # Examples
    ///
    /// See [`Rescued`].
    #[must_use]
    pub fn total(&self) -> u64 {
        self.requeued + self.dead
    }
}

/// A durable queue engine: what must outlive a process (the jobs, their attempts and
/// run-again times, leases, dead letters, the limits every host shares) kept in a database
/// or broker that many worker processes reach.
///
/// Every store keeps the contracts of the store conformance kit (feature `testkit`):
/// at-least-once with nothing lost, fenced transitions, bounded redelivery, poison jobs that
/// end, uncharged release, priorities, run-at times, unique keys and the depth cap.
///
/// Users rarely call these methods directly: [`Queue`](crate::Queue) enqueues typed jobs,
/// [`Worker`](crate::Worker) claims and runs them, and the operator methods (`counts`,
/// `dead_jobs`, `replay`, `cancel`, `purge_finished`) serve dashboards and scripts.
#[async_trait]
pub trait Store: Clone + Send + Sync + 'static {
    /// Adds one job.
    ///
    /// # Errors
    ///
    /// [`EnqueueError::Full`] with the job when its queue is at the job's depth cap;
    /// [`EnqueueError::Store`] with the job when the store failed or refused its options.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, EnqueueError<NewJob>>;

    /// Adds jobs all together or not at all (one transaction where the store has them).
    ///
    /// # Errors
    ///
    /// As [`Store::enqueue`], with every job handed back; a depth cap refuses the whole
    /// batch when it does not fit.
    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>>;

    /// Leases up to `request.limit` due jobs of a queue, highest priority first, then
    /// oldest run-at, then oldest id. Each claim charges one attempt and gets a fresh
    /// fencing token.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed; nothing was claimed.
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError>;

    /// Extends the leases still held (and the global concurrency units they hold) by
    /// `lease` from now, on the store's clock, and returns
    /// those; a lease missing from the answer is lost (rescued, reclaimed, cancelled, or
    /// past its expiry), and its run must stop. A lease past its expiry is not renewed
    /// even before a rescue has come for it: its units may already be another run's.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed; the caller cannot tell which leases it holds.
    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError>;

    /// Records that the run under `lease` succeeded: the job is completed.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed; the lease still holds until it expires.
    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError>;

    /// Records several successful runs at once, one answer per lease, in order. Workers
    /// send their acks through this, batched while the previous batch is in flight, so a
    /// store that records them in one round trip (and one commit) serves many jobs for
    /// the price of one.
    ///
    /// The default records them one by one with [`Store::complete`].
    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        let mut acks = Vec::with_capacity(leases.len());
        for lease in leases {
            acks.push(self.complete(*lease).await);
        }
        acks
    }

    /// Records the successful runs under `completed`, as [`Store::complete_many`] does,
    /// then claims, as [`Store::claim`] does: a worker with a backlog sends the acks of the
    /// runs that just ended with the claim that refills their slots. A store that does
    /// both in one round trip (and one commit, or one flush of its log) halves what a
    /// batch of short jobs costs it.
    ///
    /// The default makes the two calls at once (on two connections, where the store
    /// has a pool of them).
    ///
    /// # Errors
    ///
    /// The claim's as [`Store::claim`]'s; each ack's as [`Store::complete_many`]'s.
    async fn complete_and_claim(
        &self,
        completed: &[Lease],
        request: ClaimRequest<'_>,
    ) -> (Vec<Result<Ack, StoreError>>, Result<Vec<Claim>, StoreError>) {
        tokio::join!(self.complete_many(completed), self.claim(request))
    }

    /// Whether [`Store::complete_and_claim`] costs one round trip where the two calls cost
    /// two: then a worker with a backlog holds the acks of runs that just ended for the
    /// claim about to leave, instead of sending them on their own. The default, `false`,
    /// goes with the default `complete_and_claim`.
    fn claims_carry_acks(&self) -> bool {
        false
    }

    /// Records that the run under `lease` failed and the job runs again, not before `delay`
    /// from now on the store's clock.
    ///
    /// # Errors
    ///
    /// As [`Store::complete`].
    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError>;

    /// Records that the run under `lease` failed for good: the job is dead.
    ///
    /// # Errors
    ///
    /// As [`Store::complete`].
    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError>;

    /// Gives the job back unrun and uncharged: claimable again at once, its attempt count
    /// as before the claim (a worker shutting down does this).
    ///
    /// # Errors
    ///
    /// As [`Store::complete`].
    async fn release(&self, lease: Lease) -> Result<Ack, StoreError>;

    /// Makes jobs whose lease expired claimable again, counting the expired run as an
    /// attempt; a job whose expired run was its last is dead. Any number of workers may
    /// run this at once.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn rescue(&self, queue: &str) -> Result<Rescued, StoreError>;

    /// A wake-up that fires when a job may have become available in `queue` (a
    /// notification from the store where it has them). Workers still poll: a wake-up is a
    /// hint, never the only way a job is found.
    fn wakeup(&self, queue: &str) -> Arc<Notify>;

    /// A wake-up that fires when units of global concurrency limit `limit` may have come
    /// back ([`release_units`](Self::release_units), here or in another process), waking
    /// one waiting run per release. A hint like [`wakeup`](Self::wakeup): runs waiting for
    /// units still ask again now and then (units of a dead holder come back with its
    /// lease, and nothing announces that).
    ///
    /// The default never fires, so waiting runs only ask again now and then; a store
    /// with a notification channel keeps a [`Wakeups`](crate::Wakeups) and fires it.
    fn units_wakeup(&self, limit: &str) -> Arc<Notify> {
        let _ = limit;
        Arc::new(Notify::new())
    }

    /// Whether `name` can name a queue or a global limit here; `Err` says what a name
    /// must be. A worker builder asks for its queue and its limits, so a name this store
    /// would refuse on every call is a [`ConfigError`](brigade_core::ConfigError) when the
    /// worker is built rather than a warning on every claim.
    ///
    /// The default accepts every name.
    fn check_name(&self, name: &str) -> Result<(), &'static str> {
        let _ = name;
        Ok(())
    }

    /// How many jobs of `queue` are in each state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn counts(&self, queue: &str) -> Result<QueueCounts, StoreError>;

    /// One job, whatever its state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn job(&self, id: DurableId) -> Result<Option<JobRecord>, StoreError>;

    /// The dead jobs of `queue`, most recent first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn dead_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError>;

    /// Makes one dead job available again with its attempts reset; `false` if it is not
    /// dead.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn replay(&self, id: DurableId) -> Result<bool, StoreError>;

    /// Replays every dead job of `queue`; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn replay_all(&self, queue: &str) -> Result<u64, StoreError>;

    /// Cancels a job that is waiting or running; `false` if it had already ended. A running
    /// job's lease is revoked: its worker learns at its next heartbeat and cancels the
    /// run's token, and the run's end is refused as stale.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn cancel(&self, id: DurableId) -> Result<bool, StoreError>;

    /// Deletes completed and cancelled jobs that finished more than `older_than` ago
    /// (dead jobs stay until replayed or purged with `include_dead`); returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn purge_finished(
        &self,
        older_than: Duration,
        include_dead: bool,
    ) -> Result<u64, StoreError>;

    /// Takes up to `want` starts from a global rate limit, on the store's clock.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn take_rate(&self, limit: &GlobalRate, want: u32) -> Result<RateGrant, StoreError>;

    /// Takes `weight` units of a global concurrency limit for the run under `holder`,
    /// until released or until `lease` passes without a heartbeat; `false` if they are not
    /// free now.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed.
    async fn acquire_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
        weight: u32,
        lease: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives back the units `holder` took.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store failed; the units come back when their lease expires.
    async fn release_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
    ) -> Result<(), StoreError>;
}
