//! apalis-redis: `RedisStorage` on a `ConnectionManager`, woken by the message its push
//! script publishes (`tasks:<active list>:available`, what its `RedisStorageFactory`
//! listens for), with the 1 s polling interval behind it so jobs enqueued before the
//! worker started are fetched too.

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{BackendExt, Strategy, TaskSink, WorkerBuilder};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use brigade_core::CancellationToken;
use futures::StreamExt;

use super::super::QUEUE;
use super::super::job::NoopJob;
use super::super::run_log::RunLog;
use super::{POLL, handle};

fn config(concurrency: usize) -> Config {
    Config::default()
        .queue(QUEUE)
        .batch_size(concurrency.max(1))
}

async fn connect(url: &str) -> Result<ConnectionManager, String> {
    apalis_redis::connect(url)
        .await
        .map_err(|error| format!("apalis redis: {error}"))
}

/// Enqueues through apalis's `TaskSink`; counts what it enqueued against apalis's set of
/// done jobs, since apalis keeps no per-state counters.
#[derive(Clone)]
pub(crate) struct ApalisRedisProducer {
    storage: RedisStorage<NoopJob>,
    watch: ConnectionManager,
    enqueued: u64,
}

impl std::fmt::Debug for ApalisRedisProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApalisRedisProducer")
            .field("queue", &QUEUE)
            .field("enqueued", &self.enqueued)
            .finish_non_exhaustive()
    }
}

impl ApalisRedisProducer {
    /// Connects to the server at `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self, String> {
        let conn = connect(url).await?;
        Ok(Self {
            storage: RedisStorage::new(conn.clone()).with_config(config(1)),
            watch: conn,
            enqueued: 0,
        })
    }

    /// One `push_bulk` call: one script for the whole batch.
    pub(crate) async fn enqueue_batch(&mut self, jobs: Vec<NoopJob>) -> Result<(), String> {
        let count = jobs.len() as u64;
        self.storage
            .push_bulk(jobs)
            .await
            .map_err(|error| format!("apalis push_bulk: {error}"))?;
        self.enqueued += count;
        Ok(())
    }

    /// One `push` call.
    pub(crate) async fn enqueue(&mut self, job: NoopJob) -> Result<(), String> {
        self.storage
            .push(job)
            .await
            .map_err(|error| format!("apalis push: {error}"))?;
        self.enqueued += 1;
        Ok(())
    }

    /// Jobs enqueued and not yet in the done or dead set.
    pub(crate) async fn unfinished(&self) -> Result<u64, String> {
        let config = self.storage.get_config();
        let mut conn = self.watch.clone();
        let (done, dead): (u64, u64) = redis::pipe()
            .cmd("SCARD")
            .arg(config.done_jobs_set())
            .cmd("SCARD")
            .arg(config.dead_jobs_set())
            .query_async(&mut conn)
            .await
            .map_err(|error| format!("watch: {error}"))?;
        Ok(self.enqueued.saturating_sub(done + dead))
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
    let config = config(concurrency);
    let client = redis::Client::open(url).map_err(|error| format!("apalis redis: {error}"))?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|error| format!("apalis pubsub: {error}"))?;
    pubsub
        .subscribe(format!("tasks:{}:available", config.active_jobs_list()))
        .await
        .map_err(|error| format!("apalis subscribe: {error}"))?;
    let wakeups = pubsub.into_on_message().map(|_| ());
    let backend = RedisStorage::<NoopJob>::new(connect(url).await?)
        .with_config(config)
        .poll_with_strategy(Strategy::new().stream(wakeups).interval(POLL));
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
