//! brigade's side: a `Queue` producer and a `Worker` on any of its stores, with the
//! defaults a user gets (PostgreSQL: schema `brigade`, 10 connections per process, 1 s
//! poll behind LISTEN/NOTIFY; Redis: prefix `brigade`, 1 s poll behind pub/sub wake-ups;
//! SQLite: WAL, `synchronous = FULL`, 8 connections, 1 s poll; a 30 s lease everywhere),
//! the concurrency being the only setting chosen.

use std::convert::Infallible;

use brigade_core::CancellationToken;
use brigade_postgres::PgStore;
use brigade_queue::{Delivery, Queue, Store, Worker};
use brigade_redis::RedisStore;
use brigade_sqlite::SqliteStore;

use super::QUEUE;
use super::engine::Engine;
use super::job::NoopJob;
use super::run_log::RunLog;

/// Connects to the PostgreSQL database at `url`, creating brigade's tables.
pub(crate) async fn postgres(url: &str) -> Result<PgStore, String> {
    PgStore::connect(url)
        .await
        .map_err(|error| format!("brigade store: {error}"))
}

/// Connects to the Redis server at `url`.
pub(crate) async fn redis(url: &str) -> Result<RedisStore, String> {
    RedisStore::connect(url)
        .await
        .map_err(|error| format!("brigade store: {error}"))
}

/// Opens (creating and migrating) the SQLite file at `path`.
pub(crate) async fn sqlite(path: &str) -> Result<SqliteStore, String> {
    SqliteStore::open(path)
        .await
        .map_err(|error| format!("brigade store: {error}"))
}

/// Enqueues through brigade's typed producer.
#[derive(Clone, Debug)]
pub(crate) struct BrigadeProducer<S: Store> {
    queue: Queue<S, NoopJob>,
    store: S,
}

impl<S: Store> BrigadeProducer<S> {
    pub(crate) fn new(store: S) -> Self {
        Self {
            queue: Queue::new(store.clone(), QUEUE),
            store,
        }
    }

    /// The store the producer enqueues into.
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// One `enqueue_batch` call: one statement or script for the whole batch.
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

    /// Jobs whose life is not over, from the store's own counts.
    pub(crate) async fn unfinished(&self) -> Result<u64, String> {
        self.store
            .counts(QUEUE)
            .await
            .map(|counts| counts.live())
            .map_err(|error| format!("watch: {error}"))
    }
}

/// Runs a brigade worker of `engine` on `url` until `stop` is cancelled, logging each
/// job's start.
pub(crate) async fn run_worker(
    engine: Engine,
    url: &str,
    concurrency: usize,
    log: RunLog,
    ready: impl FnOnce(),
    go: impl Future<Output = ()>,
    stop: CancellationToken,
) -> Result<(), String> {
    match engine {
        Engine::Postgres => {
            let store = postgres(url).await?;
            run_on(store, concurrency, log, ready, go, stop).await
        }
        Engine::Redis | Engine::RedisEverysec => {
            let store = redis(url).await?;
            run_on(store, concurrency, log, ready, go, stop).await
        }
        Engine::Sqlite => {
            let store = sqlite(url).await?;
            run_on(store, concurrency, log, ready, go, stop).await
        }
    }
}

async fn run_on<S: Store>(
    store: S,
    concurrency: usize,
    log: RunLog,
    ready: impl FnOnce(),
    go: impl Future<Output = ()>,
    stop: CancellationToken,
) -> Result<(), String> {
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
