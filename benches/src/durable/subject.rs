//! The queues under measurement, and what the coordinator asks of each: a producer that
//! enqueues and reports how many of its jobs are not finished yet.

use brigade_postgres::PgStore;
use brigade_redis::RedisStore;
use brigade_sqlite::SqliteStore;

use super::apalis::postgres::ApalisPgProducer;
use super::apalis::redis::ApalisRedisProducer;
use super::apalis::sqlite::ApalisSqliteProducer;
use super::brigade::{self, BrigadeProducer};
use super::engine::Engine;
use super::job::NoopJob;

/// Whose queue runs on the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// brigade-queue's `Worker` on the engine's brigade store.
    Brigade,
    /// apalis's `Worker` on the engine's apalis backend.
    Apalis,
}

impl Side {
    /// Both sides, brigade first: the order of the report's columns.
    pub const ALL: [Side; 2] = [Side::Brigade, Side::Apalis];

    /// The side's name in reports and on the worker command line.
    ///
    /// # Examples
    ///
    /// ```
    /// use brigade_benches::durable::Side;
    ///
    /// assert_eq!(Side::from_name("apalis"), Some(Side::Apalis));
    /// assert_eq!(Side::Apalis.name(), "apalis");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Side::Brigade => "brigade",
            Side::Apalis => "apalis",
        }
    }

    /// The side called `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|side| side.name() == name)
    }
}

/// A durable queue under measurement: one side on one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableSubject {
    /// Where the jobs are stored.
    pub engine: Engine,
    /// Whose queue it is.
    pub side: Side,
}

impl DurableSubject {
    /// Connects a producer to `url` (a database URL, or a SQLite file's path), creating the
    /// subject's tables where it has them.
    pub(crate) async fn producer(self, url: &str) -> Result<Producer, String> {
        Ok(match (self.engine, self.side) {
            (Engine::Postgres, Side::Brigade) => {
                Producer::BrigadePostgres(BrigadeProducer::new(brigade::postgres(url).await?))
            }
            (Engine::Redis | Engine::RedisEverysec, Side::Brigade) => {
                Producer::BrigadeRedis(BrigadeProducer::new(brigade::redis(url).await?))
            }
            (Engine::Sqlite, Side::Brigade) => {
                Producer::BrigadeSqlite(BrigadeProducer::new(brigade::sqlite(url).await?))
            }
            (Engine::Postgres, Side::Apalis) => {
                Producer::ApalisPostgres(ApalisPgProducer::connect(url).await?)
            }
            (Engine::Redis | Engine::RedisEverysec, Side::Apalis) => {
                Producer::ApalisRedis(ApalisRedisProducer::connect(url).await?)
            }
            (Engine::Sqlite, Side::Apalis) => {
                Producer::ApalisSqlite(ApalisSqliteProducer::connect(url).await?)
            }
        })
    }
}

/// A connected producer of any subject.
#[derive(Debug)]
pub(crate) enum Producer {
    BrigadePostgres(BrigadeProducer<PgStore>),
    BrigadeRedis(BrigadeProducer<RedisStore>),
    BrigadeSqlite(BrigadeProducer<SqliteStore>),
    ApalisPostgres(ApalisPgProducer),
    ApalisRedis(ApalisRedisProducer),
    ApalisSqlite(ApalisSqliteProducer),
}

impl Producer {
    /// Enqueues `jobs` in one call.
    pub(crate) async fn enqueue_batch(&mut self, jobs: Vec<NoopJob>) -> Result<(), String> {
        match self {
            Producer::BrigadePostgres(producer) => producer.enqueue_batch(jobs).await,
            Producer::BrigadeRedis(producer) => producer.enqueue_batch(jobs).await,
            Producer::BrigadeSqlite(producer) => producer.enqueue_batch(jobs).await,
            Producer::ApalisPostgres(producer) => producer.enqueue_batch(jobs).await,
            Producer::ApalisRedis(producer) => producer.enqueue_batch(jobs).await,
            Producer::ApalisSqlite(producer) => producer.enqueue_batch(jobs).await,
        }
    }

    /// Enqueues one job.
    pub(crate) async fn enqueue(&mut self, job: NoopJob) -> Result<(), String> {
        match self {
            Producer::BrigadePostgres(producer) => producer.enqueue(job).await,
            Producer::BrigadeRedis(producer) => producer.enqueue(job).await,
            Producer::BrigadeSqlite(producer) => producer.enqueue(job).await,
            Producer::ApalisPostgres(producer) => producer.enqueue(job).await,
            Producer::ApalisRedis(producer) => producer.enqueue(job).await,
            Producer::ApalisSqlite(producer) => producer.enqueue(job).await,
        }
    }

    /// How many of the jobs enqueued have not finished (the measured queue is alone in its
    /// database, server or file).
    pub(crate) async fn unfinished(&self) -> Result<u64, String> {
        match self {
            Producer::BrigadePostgres(producer) => postgres_unfinished(producer.store()).await,
            Producer::BrigadeRedis(producer) => producer.unfinished().await,
            Producer::BrigadeSqlite(producer) => producer.unfinished().await,
            Producer::ApalisPostgres(producer) => producer.unfinished().await,
            Producer::ApalisRedis(producer) => producer.unfinished().await,
            Producer::ApalisSqlite(producer) => producer.unfinished().await,
        }
    }

    /// brigade's PostgreSQL pool, to prefill its table with finished rows.
    pub(crate) fn brigade_postgres(&self) -> Option<&PgStore> {
        match self {
            Producer::BrigadePostgres(producer) => Some(producer.store()),
            _ => None,
        }
    }
}

/// brigade's unfinished jobs on PostgreSQL, counted through its partial indexes (claimable,
/// leased): `Store::counts` groups the whole table by state, which with a million finished
/// rows costs ~100 ms of the server's CPU per look and bends the history row.
async fn postgres_unfinished(store: &PgStore) -> Result<u64, String> {
    let count: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM brigade.jobs WHERE queue = 'noop' AND state = 'available')
              + (SELECT count(*) FROM brigade.jobs WHERE queue = 'noop' AND state = 'running')",
    )
    .fetch_one(store.pool())
    .await
    .map_err(|error| format!("watch: {error}"))?;
    Ok(count.unsigned_abs())
}
