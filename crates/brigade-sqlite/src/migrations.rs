//! The schema, versioned and embedded: each migration runs once per file, in order,
//! under SQLite's write lock, so any number of processes may open the file at once.

use brigade_queue::StoreError;
use sqlx::{Connection, Executor, SqliteConnection};

use crate::error::store_error;

/// One step of the schema's history.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. A released migration is never edited: a change is a new
/// step.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs",
        sql: include_str!("migrations/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "limits",
        sql: include_str!("migrations/0002_limits.sql"),
    },
    Migration {
        version: 3,
        name: "rescued",
        sql: include_str!("migrations/0003_rescued.sql"),
    },
];

/// The newest schema version this build knows.
#[cfg(test)]
const LATEST: i64 = 3;

/// The oldest SQLite the statements run on: `unixepoch('subsec')` is 3.42 (STRICT tables
/// 3.37, `->>` 3.38, RETURNING 3.35, UPDATE FROM 3.33). The bundled library is newer; a
/// build against the system's library may not be.
const OLDEST_SQLITE: (u32, u32) = (3, 42);

/// Brings the file's schema up to the newest version; returns the versions it applied.
pub(crate) async fn migrate(conn: &mut SqliteConnection) -> Result<Vec<i64>, StoreError> {
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
    if !recent_enough(&version) {
        return Err(StoreError::invalid(format!(
            "SQLite {version} is too old: the store needs {}.{} or newer",
            OLDEST_SQLITE.0, OLDEST_SQLITE.1
        )));
    }
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(store_error)?;
    // A string without arguments runs every statement it holds.
    (&mut *tx)
        .execute(
            "CREATE TABLE IF NOT EXISTS migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT    NOT NULL,
                 applied_at INTEGER NOT NULL
             ) STRICT",
        )
        .await
        .map_err(store_error)?;
    let current: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
    let current = current.unwrap_or(0);
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        if migration.version <= current {
            continue;
        }
        (&mut *tx)
            .execute(migration.sql)
            .await
            .map_err(store_error)?;
        sqlx::query(&format!(
            "INSERT INTO migrations (version, name, applied_at) VALUES (?1, ?2, {})",
            crate::statements::NOW
        ))
        .bind(migration.version)
        .bind(migration.name)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        applied.push(migration.version);
    }
    tx.commit().await.map_err(store_error)?;
    Ok(applied)
}

fn recent_enough(version: &str) -> bool {
    let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= OLDEST_SQLITE,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_latest_is_the_last() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                i64::try_from(index).unwrap() + 1,
                "{}",
                migration.name
            );
        }
        assert_eq!(
            MIGRATIONS.last().map(|migration| migration.version),
            Some(LATEST)
        );
    }

    #[test]
    fn sqlite_versions_compare_numerically() {
        assert!(recent_enough("3.46.0"));
        assert!(recent_enough("3.42.0"));
        assert!(recent_enough("4.0"));
        assert!(!recent_enough("3.41.2"));
        assert!(!recent_enough("3.9.0"));
        assert!(!recent_enough("garbage"));
    }
}
