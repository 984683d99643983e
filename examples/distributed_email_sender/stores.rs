//! Where the queue lives: a SQLite file (the default, nothing to install), PostgreSQL
//! (`DATABASE_URL`) or Redis (`REDIS_URL`), and the little the demo does differently on each.

use std::path::PathBuf;

use brigade::postgres::{LocalCluster, PgStore};
use brigade::queue::{NewJob, Store, StoreError};
use brigade::redis::{LocalServer, RedisStore};
use brigade::sqlite::SqliteStore;

use crate::{EMAILS, QUEUE, SCHEMA};

/// Which store the queue lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Sqlite,
    Postgres,
    Redis,
}

impl StoreKind {
    /// `--store NAME` when given; else PostgreSQL when `DATABASE_URL` is set, Redis when
    /// `REDIS_URL` is, and a SQLite file otherwise.
    pub(crate) fn choose(flag: Option<&str>) -> Result<Self, String> {
        match flag {
            Some("sqlite") => Ok(StoreKind::Sqlite),
            Some("postgres") => Ok(StoreKind::Postgres),
            Some("redis") => Ok(StoreKind::Redis),
            Some(other) => Err(format!(
                "unknown store {other:?}: sqlite, postgres or redis"
            )),
            None if std::env::var_os("DATABASE_URL").is_some() => Ok(StoreKind::Postgres),
            None if std::env::var_os("REDIS_URL").is_some() => Ok(StoreKind::Redis),
            None => Ok(StoreKind::Sqlite),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
        }
    }

    /// The variable that says where the store is; the worker processes get it too.
    pub(crate) fn location_var(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "BRIGADE_SQLITE_FILE",
            StoreKind::Postgres => "DATABASE_URL",
            StoreKind::Redis => "REDIS_URL",
        }
    }

    /// Where the store is, for the commands run by hand.
    pub(crate) fn location(self) -> Result<String, String> {
        match (self, std::env::var(self.location_var())) {
            (_, Ok(location)) => Ok(location),
            (StoreKind::Sqlite, Err(_)) => Ok(default_sqlite_file().display().to_string()),
            (StoreKind::Postgres, Err(_)) => {
                Err("set DATABASE_URL (postgres://user@host/db) for this command".into())
            }
            (StoreKind::Redis, Err(_)) => {
                Err("set REDIS_URL (redis://host:6379) for this command".into())
            }
        }
    }

    /// Where the one-command demo puts the store: its variable's value, or a throwaway
    /// server or file, emptied of an earlier run's jobs.
    pub(crate) async fn fresh_location(self) -> Result<String, Box<dyn std::error::Error>> {
        match self {
            StoreKind::Sqlite => {
                let file = self.location()?;
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{file}{suffix}"));
                }
                println!("the queue lives in the SQLite file {file}");
                Ok(file)
            }
            StoreKind::Postgres => {
                let url = match std::env::var("DATABASE_URL") {
                    Ok(url) => url,
                    Err(_) => {
                        println!("no DATABASE_URL: starting a throwaway PostgreSQL");
                        tokio::task::spawn_blocking(LocalCluster::shared)
                            .await??
                            .url("postgres")
                    }
                };
                let admin = sqlx::PgPool::connect(&url).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                    .execute(&admin)
                    .await?;
                Ok(url)
            }
            StoreKind::Redis => {
                let url = match std::env::var("REDIS_URL") {
                    Ok(url) => url,
                    Err(_) => {
                        println!("no REDIS_URL: starting a throwaway redis-server");
                        tokio::task::spawn_blocking(LocalServer::shared)
                            .await??
                            .url()
                    }
                };
                delete_keys(&open_redis(&url).await?).await?;
                Ok(url)
            }
        }
    }
}

/// The SQLite file when `BRIGADE_SQLITE_FILE` is not set.
fn default_sqlite_file() -> PathBuf {
    std::env::temp_dir().join("email_demo.db")
}

pub(crate) async fn open_sqlite(file: &str) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(file).await
}

pub(crate) async fn open_postgres(url: &str) -> Result<PgStore, StoreError> {
    PgStore::builder(url)
        .schema(SCHEMA)
        .max_connections(4)
        .connect()
        .await
}

pub(crate) async fn open_redis(url: &str) -> Result<RedisStore, StoreError> {
    RedisStore::builder(url).prefix(SCHEMA).connect().await
}

/// Opens the store of `$kind` at `$location` as `$store` and evaluates `$body` with it:
/// one line per command instead of one match per command.
macro_rules! with_store {
    ($kind:expr, $location:expr, |$store:ident| $body:expr) => {
        match $kind {
            $crate::stores::StoreKind::Sqlite => {
                let $store = $crate::stores::open_sqlite($location).await?;
                $body
            }
            $crate::stores::StoreKind::Postgres => {
                let $store = $crate::stores::open_postgres($location).await?;
                $body
            }
            $crate::stores::StoreKind::Redis => {
                let $store = $crate::stores::open_redis($location).await?;
                $body
            }
        }
    };
}
pub(crate) use with_store;

/// Deletes every key of the demo's prefix.
async fn delete_keys(store: &RedisStore) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = store.connection();
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{SCHEMA}:*"))
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// What the demo does differently on each store.
pub(crate) trait DemoStore: Store {
    /// Enqueues the campaign's emails, all or none.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>>;

    /// How many emails `worker` holds leases on.
    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>>;
}

impl DemoStore for SqliteStore {
    /// The campaign row and its emails commit together or not at all.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS campaigns (name TEXT PRIMARY KEY, emails INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO campaigns (name, emails) VALUES (?1, ?2)")
            .bind(campaign)
            .bind(EMAILS as i64)
            .execute(&mut *tx)
            .await?;
        let enqueued = self
            .enqueue_batch_in(&mut tx, emails)
            .await
            .map_err(|error| error.to_string())?;
        tx.commit().await?;
        println!(
            "campaign {campaign}: {} emails enqueued in one transaction",
            enqueued.len()
        );
        Ok(enqueued.len())
    }

    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>> {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE lease_owner = ?1 AND state = 'running'",
        )
        .bind(worker)
        .fetch_one(self.pool())
        .await?;
        Ok(held.unsigned_abs())
    }
}

impl DemoStore for PgStore {
    /// The campaign row and its emails commit together or not at all.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.campaigns (name text PRIMARY KEY, emails int NOT NULL)"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO {SCHEMA}.campaigns (name, emails) VALUES ($1, $2)"
        ))
        .bind(campaign)
        .bind(EMAILS as i32)
        .execute(&mut *tx)
        .await?;
        let enqueued = self
            .enqueue_batch_in(&mut tx, emails)
            .await
            .map_err(|error| error.to_string())?;
        tx.commit().await?;
        println!(
            "campaign {campaign}: {} emails enqueued in one transaction",
            enqueued.len()
        );
        Ok(enqueued.len())
    }

    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>> {
        let held: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {SCHEMA}.jobs WHERE lease_owner = $1 AND state = 'running'"
        ))
        .bind(worker)
        .fetch_one(self.pool())
        .await?;
        Ok(held.unsigned_abs())
    }
}

/// `XPENDING key group`: the entries pending, the smallest and greatest id, and how many
/// each consumer holds.
type PendingSummary = (u64, Option<String>, Option<String>, Vec<(String, String)>);

impl DemoStore for RedisStore {
    /// One batch: a single script adds every email or none.
    async fn enqueue_campaign(
        &self,
        campaign: &str,
        emails: Vec<NewJob>,
    ) -> Result<usize, Box<dyn std::error::Error>> {
        let enqueued = self
            .enqueue_batch(emails)
            .await
            .map_err(|error| error.to_string())?;
        println!(
            "campaign {campaign}: {} emails enqueued in one batch",
            enqueued.len()
        );
        Ok(enqueued.len())
    }

    /// The worker's entries in the pending entries list of the emails' stream (they all
    /// have priority 0).
    async fn held_by(&self, worker: &str) -> Result<u64, Box<dyn std::error::Error>> {
        let mut conn = self.connection();
        // XPENDING's summary: count, smallest id, greatest id, then [consumer, count] pairs.
        let summary: PendingSummary = redis::cmd("XPENDING")
            .arg(format!("{SCHEMA}:{{{QUEUE}}}:ready:0"))
            .arg("workers")
            .query_async(&mut conn)
            .await?;
        let (_, _, _, consumers) = summary;
        Ok(consumers
            .iter()
            .find(|(name, _)| name == worker)
            .and_then(|(_, count)| count.parse().ok())
            .unwrap_or(0))
    }
}
