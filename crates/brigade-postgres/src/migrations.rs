//! The schema, versioned and embedded: each migration runs once per schema, in order,
//! under an advisory lock, so any number of processes may start at once.

use sqlx::{Connection, Executor, PgConnection};

use crate::lock_wait::LockWait;
use crate::schema::Schema;

/// One step of the schema's history.
struct Migration {
    version: i32,
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
    Migration {
        version: 4,
        name: "rate_clock",
        sql: include_str!("migrations/0004_rate_clock.sql"),
    },
];

/// The newest schema version this build knows.
#[cfg(test)]
const LATEST: i32 = 4;

/// Brings `schema` up to the newest version; returns the versions it applied.
pub(crate) async fn migrate(
    conn: &mut PgConnection,
    schema: &Schema,
    lock_wait: LockWait,
) -> Result<Vec<i32>, sqlx::Error> {
    // Every statement is an owned string made before the first await: a borrowed
    // temporary held across an await makes the future not `Send` for callers that spawn
    // a connect (higher-ranked lifetime inference in async blocks).
    let lock = "SELECT pg_advisory_xact_lock(hashtext('brigade.migrate'), hashtext($1))";
    let setup = schema.render(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    );
    let current_version = schema.render("SELECT max(version) FROM {schema}.migrations");
    // When the step ran, after the wait for the lock, not when the transaction began.
    let record = schema.render(
        "INSERT INTO {schema}.migrations (version, name, applied_at) \
         VALUES ($1, $2, statement_timestamp())",
    );
    let steps: Vec<(i32, &'static str, String)> = MIGRATIONS
        .iter()
        .map(|migration| {
            (
                migration.version,
                migration.name,
                schema.render(migration.sql),
            )
        })
        .collect();
    let schema_name = schema.name().to_owned();
    let begin = lock_wait.begin();

    // Bounded waits (`lock_wait.rs`): a migrator paused while it holds the lock must not
    // hold up every other process's start for longer than the bound, and a step waiting
    // on a table's lock must not queue every claim and ack of that table behind it.
    let mut tx = conn.begin_with(begin).await?;
    // One migrator per schema at a time; the others wait, then find nothing left to do.
    sqlx::query(lock)
        .bind(schema_name)
        .execute(&mut *tx)
        .await?;
    // A string without arguments runs as a simple query, so a script of several
    // statements goes in one round trip.
    (&mut *tx).execute(setup.as_str()).await?;
    let current: Option<i32> = sqlx::query_scalar(&current_version)
        .fetch_one(&mut *tx)
        .await?;
    let current = current.unwrap_or(0);
    let mut applied = Vec::new();
    for (version, name, sql) in steps {
        if version <= current {
            continue;
        }
        (&mut *tx).execute(sql.as_str()).await?;
        sqlx::query(&record)
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        applied.push(version);
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_latest_is_the_last() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                i32::try_from(index).unwrap() + 1,
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
    fn every_object_is_created_in_the_configured_schema() {
        for migration in MIGRATIONS {
            for line in migration.sql.lines() {
                let line = line.trim_start().to_ascii_uppercase();
                if line.starts_with("CREATE TABLE")
                    || line.starts_with("CREATE SEQUENCE")
                    || line.starts_with("CREATE OR REPLACE FUNCTION")
                {
                    assert!(line.contains("{SCHEMA}."), "{}: {line}", migration.name);
                }
            }
        }
    }
}
