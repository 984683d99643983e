//! apalis-postgres: `PostgresStorage` as its README's listener example sets it up:
//! `with_pubsub()` (LISTEN/NOTIFY wake-ups) and the 1 s polling interval behind it.
//!
//! Without a polling strategy an idle apalis worker fetches again only at its heartbeat
//! (30 s by default): measured here, notifications alone did not wake it.

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Strategy, TaskSink, WorkerBuilder};
use apalis_postgres::{Config, PgPool, PostgresStorage};
use brigade_core::CancellationToken;

use super::super::QUEUE;
use super::super::job::NoopJob;
use super::super::run_log::RunLog;
use super::{POLL, handle};

/// Enqueues through apalis's `TaskSink`, and counts unfinished jobs in its table.
#[derive(Clone)]
pub(crate) struct ApalisPgProducer {
    storage: PostgresStorage<NoopJob>,
    /// brigade's sqlx (0.8) beside apalis's (0.9): the watch needs only a count.
    watch: sqlx::PgPool,
}

impl std::fmt::Debug for ApalisPgProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApalisPgProducer")
            .field("queue", &QUEUE)
            .finish_non_exhaustive()
    }
}

fn storage(pool: &PgPool, concurrency: usize) -> PostgresStorage<NoopJob> {
    let config = Config::default()
        .queue(QUEUE)
        .batch_size(concurrency.max(1));
    PostgresStorage::new(pool).with_config(config)
}

async fn pool(url: &str) -> Result<PgPool, String> {
    PgPool::connect(url)
        .await
        .map_err(|error| format!("apalis pool: {error}"))
}

impl ApalisPgProducer {
    /// Connects to the database at `url` and runs apalis's migrations.
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let pool = pool(url).await?;
        PostgresStorage::setup(&pool)
            .await
            .map_err(|error| format!("apalis setup: {error}"))?;
        let watch = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|error| format!("watch pool: {error}"))?;
        Ok(Self {
            storage: storage(&pool, 1),
            watch,
        })
    }

    /// One `push_bulk` call.
    pub(crate) async fn enqueue_batch(&mut self, jobs: Vec<NoopJob>) -> Result<(), String> {
        self.storage
            .push_bulk(jobs)
            .await
            .map_err(|error| format!("apalis push_bulk: {error}"))
    }

    /// One `push` call.
    pub(crate) async fn enqueue(&mut self, job: NoopJob) -> Result<(), String> {
        self.storage
            .push(job)
            .await
            .map_err(|error| format!("apalis push: {error}"))
    }

    /// Jobs not done yet (the measured queue is alone in its database).
    pub(crate) async fn unfinished(&self) -> Result<u64, String> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE done_at IS NULL")
                .fetch_one(&self.watch)
                .await
                .map_err(|error| format!("watch: {error}"))?;
        Ok(count.unsigned_abs())
    }
}

/// Runs an apalis worker on `url` until `stop` is cancelled, logging each job's start.
pub(crate) async fn run_worker(
    url: &str,
    name: &str,
    concurrency: usize,
    log: RunLog,
    ready: impl FnOnce(),
    go: impl Future<Output = ()>,
    stop: CancellationToken,
) -> Result<(), String> {
    let pool = pool(url).await?;
    let backend = storage(&pool, concurrency)
        .with_pubsub()
        .poll_with_strategy(Strategy::new().interval(POLL));
    let worker = WorkerBuilder::new(name)
        .backend(backend)
        .data(log)
        .concurrency(concurrency)
        .build(handle);
    ready();
    go.await;
    worker
        .run_until(async move {
            stop.cancelled().await;
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|error| format!("apalis worker: {error}"))
}
