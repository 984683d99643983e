use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Ack, Claim, ClaimRequest, DurableId, EnqueueError, Enqueued, GlobalConcurrency, GlobalRate,
    JobRecord, Lease, NewJob, QueueCounts, RateGrant, Rescued, Store, StoreError,
};

/// A real store with faults switched in: while [`FlakyStore::fail_heartbeats`] is on,
/// heartbeats fail as if the network to the store were down, the heartbeats
/// [`FlakyStore::stall_heartbeats`] names never answer, and the claims
/// [`FlakyStore::slow_claims`] names answer late; everything else works. It shows
/// self-fencing without cutting a real link (the fault harness does that).
#[derive(Clone, Debug)]
pub struct FlakyStore<S> {
    inner: S,
    heartbeats_fail: Arc<AtomicBool>,
    heartbeats_to_stall: Arc<AtomicU32>,
    claims_to_slow: Arc<AtomicU32>,
}

impl<S: Store> FlakyStore<S> {
    /// `inner`, healthy until told otherwise.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            heartbeats_fail: Arc::new(AtomicBool::new(false)),
            heartbeats_to_stall: Arc::new(AtomicU32::new(0)),
            claims_to_slow: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Makes the next `count` claims answer a second after the store took them, as over a
    /// link that stalls: the caller may give up on a claim that did happen.
    pub fn slow_claims(&self, count: u32) {
        self.claims_to_slow.store(count, Ordering::SeqCst);
    }

    /// Makes the next `count` heartbeats hang without an answer, as calls to a store that
    /// is restarting: the caller's timeout ends each.
    pub fn stall_heartbeats(&self, count: u32) {
        self.heartbeats_to_stall.store(count, Ordering::SeqCst);
    }

    /// Makes heartbeats fail (true) or work (false).
    pub fn fail_heartbeats(&self, fail: bool) {
        self.heartbeats_fail.store(fail, Ordering::SeqCst);
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
        let claimed = self.inner.claim(request).await;
        if take_one(&self.claims_to_slow) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        claimed
    }
    async fn heartbeat(&self, leases: &[Lease], lease: Duration) -> Result<Vec<Lease>, StoreError> {
        if take_one(&self.heartbeats_to_stall) {
            std::future::pending::<()>().await;
        }
        if self.heartbeats_fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "heartbeats switched off by the test".into(),
            ));
        }
        self.inner.heartbeat(leases, lease).await
    }
    async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.inner.complete(lease).await
    }
    async fn complete_many(&self, leases: &[Lease]) -> Vec<Result<Ack, StoreError>> {
        self.inner.complete_many(leases).await
    }
    fn claims_carry_acks(&self) -> bool {
        self.inner.claims_carry_acks()
    }
    async fn complete_and_claim(
        &self,
        completed: &[Lease],
        request: ClaimRequest<'_>,
    ) -> (Vec<Result<Ack, StoreError>>, Result<Vec<Claim>, StoreError>) {
        self.inner.complete_and_claim(completed, request).await
    }
    async fn retry(&self, lease: Lease, delay: Duration, error: &str) -> Result<Ack, StoreError> {
        self.inner.retry(lease, delay, error).await
    }
    async fn bury(&self, lease: Lease, error: &str) -> Result<Ack, StoreError> {
        self.inner.bury(lease, error).await
    }
    async fn release(&self, lease: Lease) -> Result<Ack, StoreError> {
        self.inner.release(lease).await
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
