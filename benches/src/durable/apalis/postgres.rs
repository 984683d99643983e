//! apalis's side: `PostgresStorage` (apalis-postgres) as its README's listener example
//! sets it up: `with_pubsub()` (LISTEN/NOTIFY wake-ups) and a polling strategy behind it,
//! here a 1 s interval, brigade's default poll; a fetch batch equal to the concurrency
//! (its docs: larger batches improve throughput; the default 10 would leave 6 of 16 slots
//! idle per fetch); and the `concurrency` layer, the same 16 jobs at once as brigade's.
//!
//! Without a polling strategy an idle apalis worker fetches again only at its heartbeat
//! (30 s by default): measured here, notifications alone did not wake it.

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, BoxDynError, Data, Strategy, TaskSink, WorkerBuilder};
use apalis_postgres::{Config, PgPool, PostgresStorage};
use brigade_core::CancellationToken;

use super::QUEUE;
use super::job::NoopJob;
use super::run_log::RunLog;

/// How often an idle worker fetches when no notification came: brigade's default poll.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Enqueues through apalis's `TaskSink`.
#[derive(Clone)]
pub(crate) struct ApalisProducer {
    storage: PostgresStorage<NoopJob>,
}

impl std::fmt::Debug for ApalisProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApalisProducer")
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

impl ApalisProducer {
    /// Connects to the database at `url` and runs apalis's migrations.
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let pool = pool(url).await?;
        PostgresStorage::setup(&pool)
            .await
            .map_err(|error| format!("apalis setup: {error}"))?;
        Ok(Self {
            storage: storage(&pool, 1),
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
}

async fn handle(job: NoopJob, log: Data<RunLog>) -> Result<(), BoxDynError> {
    log.record(&job);
    Ok(())
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
