//! The schema, versioned and embedded: each migration runs once per file, in order,
//! under SQLite's write lock, so any number of processes may open the file at once. A file
//! a newer build migrated further is refused.

use std::error::Error;
use std::fmt;

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
const LATEST: i64 = 3;

/// The file's schema is newer than this build of the store knows: a newer build of
/// `brigade-sqlite` migrated it. This build's statements may not fit that schema, so it
/// refuses the file rather than run on it; upgrade the program to open it. Opening the
/// file, or migrating it, answers [`StoreError::Backend`] carrying this error.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("brigade-schema-too-new-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// use brigade_queue::StoreError;
/// use brigade_sqlite::{SchemaTooNew, SqliteStore};
///
/// let path = dir.join("jobs.db");
/// let store = SqliteStore::open(&path).await?;
/// // What a newer build's migration leaves behind.
/// sqlx::query("INSERT INTO migrations SELECT max(version) + 1, 'newer', 0 FROM migrations")
///     .execute(store.pool())
///     .await?;
///
/// match store.migrate().await {
///     Err(StoreError::Backend(source)) => {
///         let too_new = source.downcast_ref::<SchemaTooNew>().expect("a newer schema");
///         assert_eq!(too_new.file_version(), too_new.newest_known() + 1);
///     }
///     other => panic!("expected the file to be refused, got {other:?}"),
/// }
/// # drop(store);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaTooNew {
    file_version: i64,
    newest_known: i64,
}

impl SchemaTooNew {
    /// The schema version recorded in the file.
    ///
    /// # Examples
    ///
    /// See [`SchemaTooNew`].
    #[must_use]
    pub fn file_version(&self) -> i64 {
        self.file_version
    }

    /// The newest schema version this build knows.
    ///
    /// # Examples
    ///
    /// See [`SchemaTooNew`].
    #[must_use]
    pub fn newest_known(&self) -> i64 {
        self.newest_known
    }
}

impl fmt::Display for SchemaTooNew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the file's schema is at version {}, newer than version {}, the newest this build \
             of brigade-sqlite knows: a newer build migrated it; upgrade this program to open it",
            self.file_version, self.newest_known
        )
    }
}

impl Error for SchemaTooNew {}

/// Refuses a file whose schema is at `current`, when that is newer than this build knows.
fn refuse_newer(current: Option<i64>) -> Result<(), StoreError> {
    match current {
        Some(version) if version > LATEST => Err(StoreError::Backend(Box::new(SchemaTooNew {
            file_version: version,
            newest_known: LATEST,
        }))),
        _ => Ok(()),
    }
}

/// Refuses the file if a newer build migrated it, without migrating anything: for a store
/// opened with migrations left to a deploy step. A file not migrated yet passes.
pub(crate) async fn check_version(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'migrations')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(store_error)?;
    if !migrated {
        return Ok(());
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
    refuse_newer(current)
}

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
    // Dropped, the transaction rolls back: nothing of this run stays.
    refuse_newer(current)?;
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
    fn only_a_newer_schema_is_refused() {
        assert!(refuse_newer(None).is_ok());
        assert!(refuse_newer(Some(LATEST)).is_ok());
        assert!(refuse_newer(Some(LATEST - 1)).is_ok());
        let Err(StoreError::Backend(source)) = refuse_newer(Some(LATEST + 2)) else {
            panic!("a newer schema passed");
        };
        assert_eq!(
            source.downcast_ref::<SchemaTooNew>(),
            Some(&SchemaTooNew {
                file_version: LATEST + 2,
                newest_known: LATEST
            })
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
