use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, GlobalConcurrency, GlobalRate,
    JobRecord, Lease, NewJob, QueueCounts, RateGrant, Rescued, Store, StoreError,
};

/// How late a slow call answers.
const LATE: Duration = Duration::from_secs(1);

/// A real store with faults switched in; everything not switched works. It shows
/// self-fencing, timeouts and store failures without cutting a real link (the fault
/// harness does that).
///
/// - Heartbeats: [`fail_heartbeats`](Self::fail_heartbeats) fails them,
///   [`stall_heartbeats`](Self::stall_heartbeats) leaves some unanswered and
///   [`slow_heartbeats`](Self::slow_heartbeats) answers them late.
/// - Claims: [`slow_claims`](Self::slow_claims) answers some late, after they happened,
///   [`overclaim`](Self::overclaim) takes more jobs than asked and
///   [`starve_claims`](Self::starve_claims) finds none.
/// - Acks (`complete`, `complete_many` and the acks of `complete_and_claim`):
///   [`slow_acks`](Self::slow_acks) answers some late, after they happened,
///   [`stall_acks`](Self::stall_acks) holds them, unrecorded, until it is switched off,
///   and
///   [`panic_acks`](Self::panic_acks) makes `complete_many` panic.
/// - Retries and releases: [`slow_retries`](Self::slow_retries) and
///   [`slow_releases`](Self::slow_releases) answer some late, after they happened.
/// - Retention: [`stall_purges`](Self::stall_purges) leaves purges unanswered.
///
/// # Examples
///
/// ```no_run
/// # async fn demo(store: impl brigade_queue::Store) {
/// use brigade_queue::testkit::FlakyStore;
///
/// let flaky = FlakyStore::new(store);
/// flaky.fail_heartbeats(true);
/// // ... run a worker on `flaky.clone()`: its runs fence themselves off.
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FlakyStore<S> {
    inner: S,
    faults: Arc<Faults>,
}

#[derive(Debug, Default)]
struct Faults {
    heartbeats_fail: AtomicBool,
    heartbeats_to_stall: AtomicU32,
    /// Nanoseconds.
    heartbeat_delay: AtomicU64,
    claims_to_slow: AtomicU32,
    extra_claims: AtomicU32,
    claims_starved: AtomicBool,
    claims_before_starving: AtomicU32,
    acks_to_slow: AtomicU32,
    acks_stalled: AtomicBool,
    acks_to_panic: AtomicU32,
    purges_to_stall: AtomicU32,
    retries_to_slow: AtomicU32,
    releases_to_slow: AtomicU32,
    releases_to_fail: AtomicU32,
}

impl<S: Store> FlakyStore<S> {
    /// `inner`, healthy until told otherwise.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// Makes the next `count` claims answer a second after the store took them, as over a
    /// link that stalls: the caller may give up on a claim that did happen. A
    /// `complete_and_claim` is a claim.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn slow_claims(&self, count: u32) {
        self.faults.claims_to_slow.store(count, Ordering::SeqCst);
    }

    /// Makes every claim take up to `extra` jobs more than it asked for, as a store that
    /// miscounts would: a caller must give back what it cannot run. Zero stops it.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn overclaim(&self, extra: u32) {
        self.faults.extra_claims.store(extra, Ordering::SeqCst);
    }

    /// Lets the next `after` claims through, then makes every claim find nothing without
    /// reaching the store, as if other workers took every job first (`Some(after)`); or
    /// lets every claim through (`None`). The acks of a `complete_and_claim` still go
    /// through.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn starve_claims(&self, after: Option<u32>) {
        let faults = &self.faults;
        faults.claims_starved.store(false, Ordering::SeqCst);
        if let Some(after) = after {
            faults.claims_before_starving.store(after, Ordering::SeqCst);
            faults.claims_starved.store(true, Ordering::SeqCst);
        }
    }

    /// Whether this claim finds nothing (see [`starve_claims`](Self::starve_claims)).
    fn starved(&self) -> bool {
        self.faults.claims_starved.load(Ordering::SeqCst)
            && !take_one(&self.faults.claims_before_starving)
    }

    /// Makes the next `count` heartbeats hang without an answer, as calls to a store that
    /// is restarting: the caller's timeout ends each.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn stall_heartbeats(&self, count: u32) {
        self.faults
            .heartbeats_to_stall
            .store(count, Ordering::SeqCst);
    }

    /// Makes heartbeats fail (true) or work (false).
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn fail_heartbeats(&self, fail: bool) {
        self.faults.heartbeats_fail.store(fail, Ordering::SeqCst);
    }

    /// Makes every heartbeat answer `delay` after it was sent, successfully, as a store
    /// under load does. Zero stops it.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn slow_heartbeats(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.faults.heartbeat_delay.store(nanos, Ordering::SeqCst);
    }

    /// Makes the next `count` acks record the run, then answer a second later, as over a
    /// link that stalls after the commit: the caller may give up on an ack that did happen.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn slow_acks(&self, count: u32) {
        self.faults.acks_to_slow.store(count, Ordering::SeqCst);
    }

    /// Makes the next `count` retries record the failed run, then answer a second later, as
    /// over a link that stalls after the commit: the caller may give up on a retry that did
    /// happen.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn slow_retries(&self, count: u32) {
        self.faults.retries_to_slow.store(count, Ordering::SeqCst);
    }

    /// Makes the next `count` releases give the job back, then answer a second later, as
    /// over a link that stalls after the commit: the caller may give up on a release that
    /// did happen.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn slow_releases(&self, count: u32) {
        self.faults.releases_to_slow.store(count, Ordering::SeqCst);
    }

    /// Makes the next `count` releases fail as unavailable without reaching the store, as
    /// calls over a link that is down do: the job stays claimed.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn fail_releases(&self, count: u32) {
        self.faults.releases_to_fail.store(count, Ordering::SeqCst);
    }

    /// Makes acks wait, unrecorded and unanswered, until this is switched off again, as
    /// calls to a store that is restarting do (true); or lets them through (false).
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn stall_acks(&self, stall: bool) {
        self.faults.acks_stalled.store(stall, Ordering::SeqCst);
    }

    /// Makes the next `count` calls of `complete_many` panic before they reach the store,
    /// as a store with a bug would.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn panic_acks(&self, count: u32) {
        self.faults.acks_to_panic.store(count, Ordering::SeqCst);
    }

    /// Makes the next `count` purges hang without an answer and without deleting anything.
    ///
    /// # Examples
    ///
    /// See [`FlakyStore`].
    pub fn stall_purges(&self, count: u32) {
        self.faults.purges_to_stall.store(count, Ordering::SeqCst);
    }

    /// Waits while acks are stalled, as a call to a store that is restarting waits for it.
    async fn ack_gate(&self) {
        while self.faults.acks_stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The request with the extra jobs [`overclaim`](Self::overclaim) asks for.
    fn widened<'a>(&self, request: ClaimRequest<'a>) -> ClaimRequest<'a> {
        let extra = self.faults.extra_claims.load(Ordering::SeqCst) as usize;
        ClaimRequest {
            limit: request.limit.saturating_add(extra),
            ..request
        }
    }
}

#[async_trait]
impl<S: Store> Store for FlakyStore<S> {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, EnqueueError<NewJob>> {
        self.inner.enqueue(job).await
    }
    async fn enqueue_batch(
        &self,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, EnqueueError<Vec<NewJob>>> {
        self.inner.enqueue_batch(jobs).await
    }
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<Claim>, StoreError> {
        if self.starved() {
            return Ok(Vec::new());
        }
        let claimed = self.inner.claim(self.widened(request)).await;
        if take_one(&self.faults.claims_to_slow) {
            tokio::time::sleep(LATE).await;
        }
        claimed
    }
    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError> {
        if take_one(&self.faults.heartbeats_to_stall) {
            std::future::pending::<()>().await;
        }
        if self.faults.heartbeats_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "heartbeats switched off by the test".into(),
            ));
        }
        let delay = Duration::from_nanos(self.faults.heartbeat_delay.load(Ordering::SeqCst));
        let renewed = self.inner.heartbeat(leases, lease).await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        renewed
    }
    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.ack_gate().await;
        let answer = self.inner.complete(lease).await;
        if take_one(&self.faults.acks_to_slow) {
            tokio::time::sleep(LATE).await;
        }
        answer
    }
    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        self.ack_gate().await;
        if take_one(&self.faults.acks_to_panic) {
            panic!("complete_many switched to panic by the test");
        }
        let answers = self.inner.complete_many(leases).await;
        if take_one(&self.faults.acks_to_slow) {
            tokio::time::sleep(LATE).await;
        }
        answers
    }
    fn claims_carry_acks(&self) -> bool {
        self.inner.claims_carry_acks()
    }
    async fn complete_and_claim(
        &self,
        completed: &[Lease],
        request: ClaimRequest<'_>,
    ) -> (Vec<Result<Ack, StoreError>>, Result<Vec<Claim>, StoreError>) {
        let acks = !completed.is_empty();
        if acks {
            self.ack_gate().await;
        }
        if self.starved() {
            let answers = self.complete_many(completed).await;
            return (answers, Ok(Vec::new()));
        }
        let both = self
            .inner
            .complete_and_claim(completed, self.widened(request))
            .await;
        // Each fault counts once per call that it applies to.
        let slow_acks = acks && take_one(&self.faults.acks_to_slow);
        let slow_claim = take_one(&self.faults.claims_to_slow);
        if slow_acks || slow_claim {
            tokio::time::sleep(LATE).await;
        }
        both
    }
    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError> {
        let answer = self.inner.retry(lease, delay, error).await;
        if take_one(&self.faults.retries_to_slow) {
            tokio::time::sleep(LATE).await;
        }
        answer
    }
    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError> {
        self.inner.bury(lease, error).await
    }
    async fn release(&self, lease: Lease) -> Result<Ack, StoreError> {
        if take_one(&self.faults.releases_to_fail) {
            return Err(StoreError::Unavailable("the link is down".into()));
        }
        let answer = self.inner.release(lease).await;
        if take_one(&self.faults.releases_to_slow) {
            tokio::time::sleep(LATE).await;
        }
        answer
    }
    async fn rescue(&self, queue: &str) -> Result<Rescued, StoreError> {
        self.inner.rescue(queue).await
    }
    fn wakeup(&self, queue: &str) -> Arc<Notify> {
        self.inner.wakeup(queue)
    }
    fn units_wakeup(&self, limit: &str) -> Arc<Notify> {
        self.inner.units_wakeup(limit)
    }
    fn check_name(&self, name: &str) -> Result<(), &'static str> {
        self.inner.check_name(name)
    }
    async fn counts(&self, queue: &str) -> Result<QueueCounts, StoreError> {
        self.inner.counts(queue).await
    }
    async fn job(&self, id: DurableId) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }
    async fn dead_jobs(&self, queue: &str, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.dead_jobs(queue, limit).await
    }
    async fn replay(&self, id: DurableId) -> Result<bool, StoreError> {
        self.inner.replay(id).await
    }
    async fn replay_all(&self, queue: &str) -> Result<u64, StoreError> {
        self.inner.replay_all(queue).await
    }
    async fn cancel(&self, id: DurableId) -> Result<bool, StoreError> {
        self.inner.cancel(id).await
    }
    async fn purge_finished(
        &self,
        older_than: Duration,
        include_dead: bool,
    ) -> Result<u64, StoreError> {
        if take_one(&self.faults.purges_to_stall) {
            std::future::pending::<()>().await;
        }
        self.inner.purge_finished(older_than, include_dead).await
    }
    async fn take_rate(&self, limit: &GlobalRate, want: u32) -> Result<RateGrant, StoreError> {
        self.inner.take_rate(limit, want).await
    }
    async fn acquire_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
        weight: u32,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.acquire_units(limit, holder, weight, lease).await
    }
    async fn release_units(
        &self,
        limit: &GlobalConcurrency,
        holder: Lease,
    ) -> Result<(), StoreError> {
        self.inner.release_units(limit, holder).await
    }
}

/// Takes one from `left` if any is left; whether it did.
fn take_one(left: &AtomicU32) -> bool {
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        left.checked_sub(1)
    })
    .is_ok()
}
