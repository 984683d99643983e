//! Successful runs are acknowledged in batches: while one batch is on its way to the store,
//! the acks of runs that end meanwhile queue up and go together in the next. No ack waits
//! for a timer, and under load one round trip (and one commit) records many jobs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{Ack, Lease, Store, StoreError};

/// The most acks one batch carries.
const MAX_BATCH: usize = 256;

/// How many times the flusher lets the runtime run other tasks to gather acks.
const GATHER_YIELDS: usize = 4;

type Reply = oneshot::Sender<Result<Ack, StoreError>>;

/// Where a run's task sends its ack and waits for the store's answer.
#[derive(Debug, Clone)]
pub(crate) struct AckBatcher {
    pending: mpsc::UnboundedSender<(Lease, Reply)>,
}

impl AckBatcher {
    /// The batcher, and the task that flushes it (run it until no run is left).
    pub(crate) fn new<S: Store>(
        store: S,
        timeout: Duration,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (pending, queued) = mpsc::unbounded_channel();
        (Self { pending }, flush(store, queued, timeout))
    }

    /// Records the run under `lease` as completed, in the next batch.
    pub(crate) async fn complete(&self, lease: Lease) -> Result<Ack, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.pending.send((lease, reply)).is_err() {
            return Err(StoreError::Unavailable(
                "the worker's ack batcher has stopped".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the worker's ack batcher has stopped".into(),
            ))
        })
    }
}

async fn flush<S: Store>(
    store: S,
    mut queued: mpsc::UnboundedReceiver<(Lease, Reply)>,
    timeout: Duration,
) {
    let store = Arc::new(store);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
        gather_acks(&mut queued, &mut batch).await;
        let leases: Vec<Lease> = batch.iter().map(|(lease, _)| *lease).collect();
        let answers = match tokio::time::timeout(timeout, store.complete_many(&leases)).await {
            Ok(answers) if answers.len() == leases.len() => answers,
            Ok(answers) => {
                let error = StoreError::Corrupt(format!(
                    "{} answers for {} acks",
                    answers.len(),
                    leases.len()
                ));
                leases.iter().map(|_| Err(error.replicate())).collect()
            }
            Err(_elapsed) => {
                let error = StoreError::Unavailable(format!("no answer within {timeout:?}").into());
                leases.iter().map(|_| Err(error.replicate())).collect()
            }
        };
        for ((_, reply), answer) in batch.drain(..).zip(answers) {
            // A run's task that has gone (aborted by the shutdown) needs no answer.
            let _ = reply.send(answer);
        }
    }
}

/// Runs that end together (a claimed batch of short jobs) send their acks over the next
/// few microseconds, their tasks queued behind the flusher: a few yields take them into
/// this batch instead of leaving them to one more round trip of their own.
async fn gather_acks(
    queued: &mut mpsc::UnboundedReceiver<(Lease, Reply)>,
    batch: &mut Vec<(Lease, Reply)>,
) {
    for _ in 0..GATHER_YIELDS {
        if batch.len() >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(ack) => batch.push(ack),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            return;
        }
    }
}
