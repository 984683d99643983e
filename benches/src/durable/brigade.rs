//! brigade's side: a `Queue` producer and a `Worker` on a `PgStore`, with the defaults a
//! user gets (schema `brigade`, 10 connections per process, 1 s poll behind LISTEN/NOTIFY,
//! 30 s lease), the concurrency being the only setting chosen.

use std::convert::Infallible;

use brigade_core::CancellationToken;
use brigade_postgres::PgStore;
use brigade_queue::{Delivery, Queue, Worker};

use super::QUEUE;
use super::job::NoopJob;
use super::run_log::RunLog;

/// Enqueues through brigade's typed producer.
#[derive(Clone, Debug)]
pub(crate) struct BrigadeProducer {
    queue: Queue<PgStore, NoopJob>,
}

impl BrigadeProducer {
    /// Connects to the database at `url`, creating brigade's tables.
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let store = PgStore::connect(url)
            .await
            .map_err(|error| format!("brigade store: {error}"))?;
        Ok(Self {
            queue: Queue::new(store, QUEUE),
        })
    }

    /// One `enqueue_batch` call: one statement for the whole batch.
    pub(crate) async fn enqueue_batch(&self, jobs: Vec<NoopJob>) -> Result<(), String> {
        self.queue
            .enqueue_batch(jobs)
            .await
            .map(drop)
            .map_err(|error| format!("brigade enqueue_batch: {error}"))
    }

    /// One `enqueue` call, as a request handler would make it.
    pub(crate) async fn enqueue(&self, job: NoopJob) -> Result<(), String> {
        self.queue
            .enqueue(job)
            .await
            .map(drop)
            .map_err(|error| format!("brigade enqueue: {error}"))
    }
}

/// Runs a brigade worker on `url` until `stop` is cancelled, logging each job's start.
pub(crate) async fn run_worker(
    url: &str,
    concurrency: usize,
    log: RunLog,
    ready: impl FnOnce(),
    go: impl Future<Output = ()>,
    stop: CancellationToken,
) -> Result<(), String> {
    let store = PgStore::connect(url)
        .await
        .map_err(|error| format!("brigade store: {error}"))?;
    let worker = Worker::builder(store, QUEUE)
        .concurrency(concurrency)
        .handle(move |job: NoopJob, _delivery: Delivery| {
            log.record(&job);
            async { Ok::<(), Infallible>(()) }
        })
        .map_err(|error| format!("brigade worker: {error}"))?;
    ready();
    go.await;
    let report = worker.run(stop).await;
    if report.store_errors > 0 || report.stale > 0 {
        return Err(format!("brigade worker: {report:?}"));
    }
    Ok(())
}
