//! Successful runs are acknowledged in batches: while one batch is on its way to the store,
//! the acks of runs that end meanwhile queue up and go together in the next. No ack waits
//! for a timer, and under load one round trip (and one commit) records many jobs.
//!
//! With a backlog, the claim that refills the slots of runs that just ended is about to
//! leave too: on a store whose claims carry acks ([`Store::claims_carry_acks`]) the
//! flusher leaves theirs to it, and the claim loop takes them along
//! ([`Store::complete_and_claim`]), one round trip for both.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::unwind::{panicked, unwind_caught};
use crate::{Ack, Lease, Store, StoreError};

/// The most acks one batch carries.
const MAX_BATCH: usize = 256;

/// How many times the flusher lets the runtime run other tasks to gather acks.
const GATHER_YIELDS: usize = 4;

type Reply = oneshot::Sender<Result<Ack, StoreError>>;

/// Acks waiting to go to the store, with whoever waits for each answer.
#[derive(Debug)]
pub(crate) struct PendingAcks {
    batch: Vec<(Lease, Reply)>,
}

impl PendingAcks {
    /// The leases to record, in order.
    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.batch.iter().map(|(lease, _)| *lease).collect()
    }

    /// Hands each ack its answer, in order; an answer missing is an error for its ack.
    pub(crate) fn answer(self, answers: Vec<Result<Ack, StoreError>>) {
        let answers = if answers.len() == self.batch.len() {
            answers
        } else {
            let error = StoreError::Corrupt(format!(
                "{} answers for {} acks",
                answers.len(),
                self.batch.len()
            ));
            self.batch.iter().map(|_| Err(error.replicate())).collect()
        };
        for ((_, reply), answer) in self.batch.into_iter().zip(answers) {
            // A run's task that has gone (aborted by the shutdown) needs no answer.
            let _ = reply.send(answer);
        }
    }

    /// Hands every ack the same failure.
    pub(crate) fn fail(self, error: &StoreError) {
        let answers = self.batch.iter().map(|_| Err(error.replicate())).collect();
        self.answer(answers);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// Where a run's task sends its ack and waits for the store's answer.
#[derive(Debug, Clone)]
pub(crate) struct AckBatcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pending: Mutex<Pending>,
    /// An ack joined `pending`, or a claim that was to take them left without.
    queued: Notify,
    /// A claim is about to leave and will take the pending acks with it.
    claim_due: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    acks: Vec<(Lease, Reply)>,
    /// The flusher has stopped: an ack would wait for good.
    closed: bool,
}

impl AckBatcher {
    /// The batcher, and the task that flushes it (run it until no run is left).
    pub(crate) fn new<S: Store>(
        store: S,
        timeout: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let batcher = Self {
            inner: Arc::new(Inner {
                pending: Mutex::new(Pending::default()),
                queued: Notify::new(),
                claim_due: AtomicBool::new(false),
            }),
        };
        (batcher.clone(), flush(batcher, store, timeout))
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Every change under this lock is one push, one take or one flag: a poisoned lock
        // is sound.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the run under `lease` as completed, in the next batch.
    pub(crate) async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        let stopped = || {
            Err(StoreError::Unavailable(
                "the worker's ack batcher has stopped".into(),
            ))
        };
        let (reply, answer) = oneshot::channel();
        {
            let mut pending = self.pending();
            if pending.closed {
                return stopped();
            }
            pending.acks.push((lease, reply));
        }
        self.inner.queued.notify_one();
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// A claim is about to leave: the flusher leaves the pending acks for it to
    /// [`take`](Self::take).
    pub(crate) fn claim_due(&self) {
        self.inner.claim_due.store(true, Ordering::Release);
    }

    /// Takes up to a batch of pending acks for the claim about to leave, and lets the
    /// flusher send whatever joins after.
    pub(crate) fn take(&self) -> PendingAcks {
        let batch = take_batch(&mut self.pending().acks);
        if self.inner.claim_due.swap(false, Ordering::AcqRel) {
            // Acks that came while the flusher left them to this claim: wake it for those.
            self.inner.queued.notify_one();
        }
        PendingAcks { batch }
    }
}

fn take_batch(pending: &mut Vec<(Lease, Reply)>) -> Vec<(Lease, Reply)> {
    if pending.len() <= MAX_BATCH {
        std::mem::take(pending)
    } else {
        pending.drain(..MAX_BATCH).collect()
    }
}

/// Closes the batcher when the flusher ends, however it ends (the worker's return aborts
/// it): the acks still waiting are answered with an error, and later ones at once.
struct CloseOnEnd<'a>(&'a AckBatcher);

impl Drop for CloseOnEnd<'_> {
    fn drop(&mut self) {
        let waiting = {
            let mut pending = self.0.pending();
            pending.closed = true;
            std::mem::take(&mut pending.acks)
        };
        // Dropped, each reply tells its waiter the batcher has stopped.
        drop(waiting);
    }
}

async fn flush<S: Store>(batcher: AckBatcher, store: S, timeout: Duration) {
    let _close = CloseOnEnd(&batcher);
    let inner = &batcher.inner;
    loop {
        inner.queued.notified().await;
        gather_acks(&batcher).await;
        if inner.claim_due.load(Ordering::Acquire) {
            // `take` wakes this loop again.
            continue;
        }
        let pending = PendingAcks {
            batch: take_batch(&mut batcher.pending().acks),
        };
        if pending.is_empty() {
            continue;
        }
        if !batcher.pending().acks.is_empty() {
            // More than a batch waits: come round again without a new ack.
            inner.queued.notify_one();
        }
        let leases = pending.leases();
        let recorded = unwind_caught(store.complete_many(&leases));
        match tokio::time::timeout(timeout, recorded).await {
            Ok(Ok(answers)) => pending.answer(answers),
            Ok(Err(panic)) => pending.fail(&panicked(&panic)),
            Err(_elapsed) => pending.fail(&StoreError::Unavailable(
                format!("no answer within {timeout:?}").into(),
            )),
        }
    }
}

/// Runs that end together (a claimed batch of short jobs) send their acks over the next
/// few microseconds, their tasks queued behind the flusher: a few yields take them into
/// this batch instead of leaving them to one more round trip of their own.
async fn gather_acks(batcher: &AckBatcher) {
    for _ in 0..GATHER_YIELDS {
        let before = batcher.pending().acks.len();
        if before >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        if batcher.pending().acks.len() == before {
            return;
        }
    }
}
