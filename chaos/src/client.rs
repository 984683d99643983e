//! One connection to the store under test, whichever it is: what the worker, the producer
//! and the orchestrator ask of it, each asked the same way of the three stores.
//!
//! Everything common goes through `brigade_queue::Store`; only enqueueing inside the
//! producer's own transaction differs (PostgreSQL's and SQLite's `enqueue_in`; Redis has no
//! transactional enqueue).

use std::path::PathBuf;
use std::time::Duration;

use brigade_postgres::PgStore;
use brigade_queue::{
    DurableId, EnqueueOptions, Enqueued, JobRecord, NewJob, Queue, QueueCounts, Store,
};
use brigade_redis::RedisStore;
use brigade_sqlite::SqliteStore;

use crate::job::ChaosJob;
use crate::ledger::LedgerWriter;
use crate::settings;
use crate::store_kind::StoreKind;

/// A store of one of the three kinds.
#[derive(Clone, Debug)]
pub(crate) enum Client {
    Postgres(PgStore),
    Redis(RedisStore),
    Sqlite(SqliteStore),
}

/// Applies `$body` to the store inside `$client`, whatever its type (`$store` names it).
macro_rules! with_store {
    ($client:expr, $store:ident => $body:expr) => {
        match $client {
            Client::Postgres($store) => $body,
            Client::Redis($store) => $body,
            Client::Sqlite($store) => $body,
        }
    };
}
pub(crate) use with_store;

impl Client {
    /// Connects once to the store at `url` with up to `connections` connections;
    /// `migrate` creates the schema (the orchestrator does, once, before anyone else).
    pub(crate) async fn connect(
        url: &str,
        connections: u32,
        migrate: bool,
    ) -> Result<Client, String> {
        let connected = match StoreKind::of_url(url)? {
            StoreKind::Postgres => PgStore::builder(url)
                .max_connections(connections)
                .acquire_timeout(settings::STORE_TIMEOUT)
                .migrate(migrate)
                .connect()
                .await
                .map(Client::Postgres),
            StoreKind::Redis => RedisStore::builder(url)
                .response_timeout(settings::STORE_TIMEOUT)
                .connect()
                .await
                .map(Client::Redis),
            StoreKind::Sqlite => SqliteStore::builder(sqlite_path(url))
                .max_connections(connections)
                .acquire_timeout(settings::STORE_TIMEOUT)
                .migrate(migrate)
                .open()
                .await
                .map(Client::Sqlite),
        };
        connected.map_err(|error| error.to_string())
    }

    /// As [`Client::connect`], retrying for up to `patience`: the store may be in the
    /// middle of a crash and restart.
    pub(crate) async fn connect_patiently(
        url: &str,
        connections: u32,
        migrate: bool,
        patience: Duration,
    ) -> Result<Client, String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match Client::connect(url, connections, migrate).await {
                Ok(client) => return Ok(client),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    eprintln!("store not reachable yet: {error}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(error) => {
                    return Err(format!(
                        "store at {url} not reachable for {patience:?}: {error}"
                    ));
                }
            }
        }
    }

    /// SQLite only: `PRAGMA synchronous` and `PRAGMA journal_mode` on as many of the
    /// store's pooled connections as `connections`, held at once so that each is a
    /// connection of its own. The store promises `synchronous=FULL` (2) in WAL mode; a
    /// process kill proves durability only if every commit waited for its flush. `None`
    /// for the other stores.
    pub(crate) async fn sqlite_pragmas(&self, connections: u32) -> Option<Pragmas> {
        let Client::Sqlite(store) = self else {
            return None;
        };
        // The file may be busy with a kill's recovery: a few tries before it is said.
        let mut tries = 0;
        loop {
            tries += 1;
            match read_pragmas(store.pool(), connections).await {
                Ok(pragmas) => return Some(pragmas),
                Err(error) if tries < 5 => {
                    eprintln!("reading the connections' pragmas: {error}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    return Some(Pragmas {
                        connections: 0,
                        synchronous: Vec::new(),
                        journal_mode: Vec::new(),
                        error: Some(error),
                    });
                }
            }
        }
    }

    /// The queue's jobs per state.
    pub(crate) async fn counts(&self) -> Result<QueueCounts, String> {
        with_store!(self, store => store.counts(settings::QUEUE).await)
            .map_err(|error| error.to_string())
    }

    /// One job, whatever its state.
    pub(crate) async fn job(&self, id: i64) -> Result<Option<JobRecord>, String> {
        with_store!(self, store => store.job(DurableId::new(id)).await)
            .map_err(|error| error.to_string())
    }

    /// `Queue::enqueue_batch`.
    pub(crate) async fn enqueue_batch(&self, jobs: Vec<ChaosJob>) -> Result<Vec<Enqueued>, String> {
        with_store!(self, store => queue(store).enqueue_batch(jobs).await)
            .map_err(|error| error.to_string())
    }

    /// `Queue::enqueue_with`.
    pub(crate) async fn enqueue_with(
        &self,
        job: ChaosJob,
        options: EnqueueOptions,
    ) -> Result<Enqueued, String> {
        with_store!(self, store => queue(store).enqueue_with(job, options).await)
            .map_err(|error| error.to_string())
    }

    /// Enqueues `jobs` one by one inside a transaction of the caller's, committing it when
    /// `commit`. Once written, and before its end, the transaction stays open `hold` with a
    /// `tx-hold first=.. last=.. ns=..` line in `ledger`; `tx-end` follows just before the commit
    /// or rollback is sent, so a process killed between the two lines never committed.
    pub(crate) async fn in_transaction(
        &self,
        jobs: &[ChaosJob],
        commit: bool,
        hold: Duration,
        ledger: &LedgerWriter,
    ) -> Result<Vec<Enqueued>, String> {
        let new_jobs = jobs
            .iter()
            .map(encode)
            .collect::<Result<Vec<NewJob>, String>>()?;
        let text = |error: &dyn std::fmt::Display| error.to_string();
        let mut enqueued = Vec::with_capacity(jobs.len());
        let window = |ledger: &LedgerWriter| {
            let first = jobs.first().map_or(0, |job| job.n).to_string();
            let last = jobs.last().map_or(0, |job| job.n).to_string();
            // The exact jobs: a poison job in the range went alone, outside the transaction.
            let ns: Vec<String> = jobs.iter().map(|job| job.n.to_string()).collect();
            ledger.record(
                "tx-hold",
                &[("first", first), ("last", last), ("ns", ns.join(","))],
            );
        };
        match self {
            Client::Postgres(store) => {
                let mut tx = store.pool().begin().await.map_err(|e| text(&e))?;
                for job in new_jobs {
                    enqueued.push(store.enqueue_in(&mut tx, job).await.map_err(|e| text(&e))?);
                }
                if !hold.is_zero() {
                    window(ledger);
                    tokio::time::sleep(hold).await;
                    ledger.record("tx-end", &[]);
                }
                if commit {
                    tx.commit().await.map_err(|e| text(&e))?;
                } else {
                    tx.rollback().await.map_err(|e| text(&e))?;
                }
            }
            Client::Sqlite(store) => {
                let mut tx = store.begin().await.map_err(|e| text(&e))?;
                for job in new_jobs {
                    enqueued.push(store.enqueue_in(&mut tx, job).await.map_err(|e| text(&e))?);
                }
                if !hold.is_zero() {
                    window(ledger);
                    tokio::time::sleep(hold).await;
                    ledger.record("tx-end", &[]);
                }
                if commit {
                    tx.commit().await.map_err(|e| text(&e))?;
                } else {
                    tx.rollback().await.map_err(|e| text(&e))?;
                }
            }
            Client::Redis(_) => return Err("Redis has no transactional enqueue".to_owned()),
        }
        Ok(enqueued)
    }
}

/// What a process's SQLite connections run with: the distinct values seen.
#[derive(Debug)]
pub(crate) struct Pragmas {
    connections: usize,
    synchronous: Vec<i64>,
    journal_mode: Vec<String>,
    error: Option<String>,
}

impl Pragmas {
    /// The fields of its ledger line (`pragmas worker=.. connections=.. synchronous=..
    /// journal_mode=..`, or `error=..`).
    pub(crate) fn fields(&self, process: &str) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("worker", process.to_owned()),
            ("connections", self.connections.to_string()),
        ];
        match &self.error {
            Some(error) => fields.push(("error", error.replace(char::is_whitespace, "_"))),
            None => {
                let synchronous: Vec<String> =
                    self.synchronous.iter().map(i64::to_string).collect();
                fields.push(("synchronous", synchronous.join(",")));
                fields.push(("journal_mode", self.journal_mode.join(",")));
            }
        }
        fields
    }
}

async fn read_pragmas(pool: &sqlx::SqlitePool, connections: u32) -> Result<Pragmas, String> {
    let mut held = Vec::new();
    let mut synchronous = Vec::new();
    let mut journal_mode = Vec::new();
    for _ in 0..connections.max(1) {
        let mut conn = pool.acquire().await.map_err(|error| error.to_string())?;
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .map_err(|error| error.to_string())?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .map_err(|error| error.to_string())?;
        if !synchronous.contains(&sync) {
            synchronous.push(sync);
        }
        let mode = mode.to_lowercase();
        if !journal_mode.contains(&mode) {
            journal_mode.push(mode);
        }
        held.push(conn);
    }
    Ok(Pragmas {
        connections: held.len(),
        synchronous,
        journal_mode,
        error: None,
    })
}

/// The file of a `sqlite:PATH` URL.
pub(crate) fn sqlite_path(url: &str) -> PathBuf {
    PathBuf::from(url.trim_start_matches("sqlite:"))
}

fn queue<S: Store + Clone>(store: &S) -> Queue<S, ChaosJob> {
    Queue::new(store.clone(), settings::QUEUE)
}

fn encode(job: &ChaosJob) -> Result<NewJob, String> {
    serde_json::to_value(job)
        .map(|payload| NewJob::new(settings::QUEUE, payload))
        .map_err(|error| error.to_string())
}
