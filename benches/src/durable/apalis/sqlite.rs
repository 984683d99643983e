//! apalis-sqlite: `SqliteStorage` on a pool of the shared file (8 connections per process,
//! as brigade-sqlite opens), polling at the 1 s interval. Its update-hook listener
//! (`connect_with_callback`) sees only writes made through its own process's connections,
//! so it cannot wake a worker for a job another process enqueued; every process here
//! polls, as brigade's do.
//!
//! `SqliteStorage::setup` sets `PRAGMA synchronous = OFF` on the one connection it runs on;
//! here every connection of both sides runs with `synchronous = FULL`, brigade-sqlite's
//! default, so both pay the same flush per commit.

use std::path::Path;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Strategy, TaskSink, WorkerBuilder};
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use brigade_core::CancellationToken;

use super::super::QUEUE;
use super::super::job::NoopJob;
use super::super::run_log::RunLog;
use super::{POLL, handle};

fn config(concurrency: usize) -> Config {
    Config::default()
        .queue(QUEUE)
        .batch_size(concurrency.max(1))
}

/// A pool on the file at `path` whose every connection runs in WAL mode with
/// `synchronous = FULL`.
async fn pool(path: &str, connections: u32) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::new()
        .filename(Path::new(path))
        .create_if_missing(true)
        .pragma("journal_mode", "WAL")
        .pragma("synchronous", "FULL");
    SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .map_err(|error| format!("apalis sqlite pool: {error}"))
}

/// Enqueues through apalis's `TaskSink`, and counts unfinished jobs in its table.
#[derive(Clone)]
pub(crate) struct ApalisSqliteProducer {
    storage: SqliteStorage<NoopJob>,
    /// brigade's sqlx (0.8) beside apalis's (0.9): the watch needs only a count.
    watch: sqlx::SqlitePool,
}

impl std::fmt::Debug for ApalisSqliteProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApalisSqliteProducer")
            .field("queue", &QUEUE)
            .finish_non_exhaustive()
    }
}

impl ApalisSqliteProducer {
    /// Creates apalis's tables in the file at `path`.
    pub(crate) async fn connect(path: &str) -> Result<Self, String> {
        // Setup leaves `synchronous = OFF` on its connection: run it on a pool of its own.
        let setup = pool(path, 1).await?;
        SqliteStorage::setup(&setup)
            .await
            .map_err(|error| format!("apalis setup: {error}"))?;
        setup.close().await;
        let watch = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
            .await
            .map_err(|error| format!("watch pool: {error}"))?;
        Ok(Self {
            storage: SqliteStorage::new(&pool(path, 1).await?).with_config(config(1)),
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

    /// Jobs not done yet (the measured queue is alone in its file).
    pub(crate) async fn unfinished(&self) -> Result<u64, String> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM Jobs WHERE done_at IS NULL")
            .fetch_one(&self.watch)
            .await
            .map_err(|error| format!("watch: {error}"))?;
        Ok(count.unsigned_abs())
    }
}

/// Runs an apalis worker on the file at `path` until `stop` is cancelled, logging each
/// job's start.
pub(crate) async fn run_worker(
    path: &str,
    name: &str,
    concurrency: usize,
    log: RunLog,
    ready: impl FnOnce(),
    go: impl Future<Output = ()>,
    stop: CancellationToken,
) -> Result<(), String> {
    let pool = pool(path, 8).await?;
    let backend = SqliteStorage::<NoopJob>::new(&pool)
        .with_config(config(concurrency))
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
