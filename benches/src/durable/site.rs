//! Where one measurement's jobs live: a fresh PostgreSQL database, a flushed Redis server
//! with the engine's persistence setting, or a fresh SQLite file; and what each server
//! runs with, for the report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use brigade_redis::LocalServer;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, SqliteConnection};

use super::engine::Engine;

/// A measurement's storage, removed by [`Site::remove`].
#[derive(Debug)]
pub(crate) enum Site {
    Postgres { url: String },
    Redis { url: String },
    Sqlite { path: PathBuf },
}

impl Site {
    /// Fresh storage for one measurement on `engine`.
    pub(crate) async fn fresh(engine: Engine) -> Result<Site, String> {
        match engine {
            Engine::Postgres => Ok(Site::Postgres {
                url: brigade_postgres::fresh_database()
                    .await
                    .map_err(|error| error.to_string())?,
            }),
            Engine::Redis | Engine::RedisEverysec => {
                let url = redis_url().await?;
                let mut conn = redis_connection(&url).await?;
                let appendfsync = engine.appendfsync().unwrap_or("always");
                let () = redis::pipe()
                    .cmd("FLUSHALL")
                    .ignore()
                    .cmd("CONFIG")
                    .arg("SET")
                    .arg("appendfsync")
                    .arg(appendfsync)
                    .ignore()
                    .query_async(&mut conn)
                    .await
                    .map_err(|error| format!("preparing redis: {error}"))?;
                Ok(Site::Redis { url })
            }
            Engine::Sqlite => {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let path = std::env::temp_dir().join(format!(
                    "brigade-durable-{}-{}.db",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                remove_sqlite(&path);
                Ok(Site::Sqlite { path })
            }
        }
    }

    /// What producers and workers connect to: a URL, or the SQLite file's path.
    pub(crate) fn url(&self) -> String {
        match self {
            Site::Postgres { url } | Site::Redis { url } => url.clone(),
            Site::Sqlite { path } => path.display().to_string(),
        }
    }

    /// Removes the measurement's data: a million-row table should not outlive its row.
    pub(crate) async fn remove(self) {
        match self {
            Site::Postgres { url } => drop_database(&url).await,
            // The next measurement flushes the server; the server goes with the process.
            Site::Redis { .. } => {}
            Site::Sqlite { path } => remove_sqlite(&path),
        }
    }
}

/// The Redis server of the run: `REDIS_URL` would be flushed row after row, so the bench
/// always starts a throwaway server of its own (once per process).
async fn redis_url() -> Result<String, String> {
    tokio::task::spawn_blocking(LocalServer::shared)
        .await
        .map_err(|error| error.to_string())?
        .map(LocalServer::url)
        .map_err(|error| error.to_string())
}

async fn redis_connection(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    redis::Client::open(url)
        .map_err(|error| error.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|error| format!("redis: {error}"))
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

async fn drop_database(url: &str) {
    let Some((server, name)) = url.rsplit_once('/') else {
        return;
    };
    let name = name.split('?').next().unwrap_or(name);
    if let Ok(mut conn) = PgConnection::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

/// The server `engine` runs on, with the settings that bear on the numbers.
///
/// # Errors
///
/// When no server can be reached or started.
pub async fn describe_server(engine: Engine) -> Result<Value, String> {
    match engine {
        Engine::Postgres => describe_postgres().await,
        Engine::Redis | Engine::RedisEverysec => {
            let url = redis_url().await?;
            let mut conn = redis_connection(&url).await?;
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut conn)
                .await
                .map_err(|error| format!("INFO: {error}"))?;
            let version = info
                .lines()
                .find_map(|line| line.strip_prefix("redis_version:"))
                .unwrap_or("?")
                .trim()
                .to_owned();
            Ok(json!({
                "version": version,
                "appendonly": "yes",
                "appendfsync": engine.appendfsync(),
                "source": "a throwaway local redis-server (its data in the temporary directory)",
            }))
        }
        Engine::Sqlite => {
            let mut conn = SqliteConnection::connect("sqlite::memory:")
                .await
                .map_err(|error| error.to_string())?;
            let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&mut conn)
                .await
                .map_err(|error| error.to_string())?;
            let _ = conn.close().await;
            Ok(json!({
                "version": version,
                "journal_mode": "WAL",
                "synchronous": "FULL",
                "source": format!("a fresh file per row in {}", std::env::temp_dir().display()),
            }))
        }
    }
}

async fn describe_postgres() -> Result<Value, String> {
    let url = brigade_postgres::fresh_database()
        .await
        .map_err(|error| error.to_string())?;
    let mut conn = PgConnection::connect(&url)
        .await
        .map_err(|error| error.to_string())?;
    let mut setting = async |sql: &str| -> Result<String, String> {
        sqlx::query_scalar::<_, String>(sql)
            .fetch_one(&mut conn)
            .await
            .map_err(|error| format!("{sql}: {error}"))
    };
    let server = json!({
        "version": setting("SHOW server_version").await?,
        "fsync": setting("SHOW fsync").await?,
        "synchronous_commit": setting("SHOW synchronous_commit").await?,
        "shared_buffers": setting("SHOW shared_buffers").await?,
        "source": if std::env::var("DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
            "DATABASE_URL"
        } else {
            "a throwaway local cluster"
        },
    });
    let _ = conn.close().await;
    drop_database(&url).await;
    Ok(server)
}
