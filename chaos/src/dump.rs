//! `jobs.tsv`: the store's view of every job after the drain, written beside the ledgers so
//! that the checker needs no store and stays one for all three.
//!
//! PostgreSQL's table is read in one query. Redis keeps a hash per job and SQLite a table of
//! its own shape, so for them the dump asks `Store::job` for each id in turn, from 1 up to
//! past the highest id the producer saw acknowledged, until it has found as many jobs as
//! `Store::counts` says the queue holds: the rows no acknowledgement covers (an answer a
//! crash cut off) are found too.

use std::fmt::Write as _;
use std::path::Path;

use brigade_queue::JobRecord;

use crate::client::Client;
use crate::{ledger, settings};

/// Ids looked up past the highest acknowledged one, at most: room for enqueues whose
/// answers were lost, and for ids used by rolled-back transactions.
const BEYOND_ACKNOWLEDGED: i64 = 20_000;

/// Writes `dir/jobs.tsv`, trying up to `tries` times.
pub(crate) async fn dump_jobs(client: &Client, dir: &Path, tries: u32) -> Result<(), String> {
    let mut tried = 1;
    let rows = loop {
        let read = match client {
            Client::Postgres(store) => postgres_rows(store.pool()).await,
            _ => rows_by_id(client, dir).await,
        };
        match read {
            Ok(rows) => break rows,
            Err(error) if tried < tries => {
                eprintln!("dumping the jobs: {error}; retrying");
                tried += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error),
        }
    };
    let mut text = String::from("id\tstate\tn\tpoison\tattempt\tmax_attempts\tlast_error\n");
    for row in rows {
        let _ = writeln!(
            text,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.state,
            row.n,
            row.poison,
            row.attempt,
            row.max_attempts,
            row.last_error.replace(['\t', '\n'], " ")
        );
    }
    std::fs::write(dir.join("jobs.tsv"), text).map_err(|error| format!("jobs.tsv: {error}"))
}

/// One line of `jobs.tsv`.
struct DumpRow {
    id: i64,
    state: String,
    n: i64,
    poison: bool,
    attempt: i64,
    max_attempts: i64,
    last_error: String,
}

async fn postgres_rows(pool: &sqlx::PgPool) -> Result<Vec<DumpRow>, String> {
    let sql = format!(
        "SELECT id, state, (payload->>'n')::int8, coalesce((payload->>'poison')::bool, false), attempt, max_attempts,
                coalesce(last_error, '') FROM {}.jobs WHERE queue = $1 ORDER BY id",
        settings::SCHEMA
    );
    let rows: Vec<(i64, String, i64, bool, i32, i32, String)> = sqlx::query_as(&sql)
        .bind(settings::QUEUE)
        .fetch_all(pool)
        .await
        .map_err(|error| format!("reading the jobs table: {error}"))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, state, n, poison, attempt, max_attempts, last_error)| DumpRow {
                id,
                state,
                n,
                poison,
                attempt: attempt.into(),
                max_attempts: max_attempts.into(),
                last_error,
            },
        )
        .collect())
}

async fn rows_by_id(client: &Client, dir: &Path) -> Result<Vec<DumpRow>, String> {
    let (lines, _) = ledger::read(&dir.join("producer.log"))?;
    let highest = lines
        .iter()
        .filter(|line| line.kind == "enqueued")
        .filter_map(|line| line.number("job"))
        .max()
        .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX));
    let total = client.counts().await?.total();
    let mut rows = Vec::new();
    let mut id = 1;
    while id <= highest.saturating_add(BEYOND_ACKNOWLEDGED)
        && (id <= highest || (rows.len() as u64) < total)
    {
        if let Some(record) = client.job(id).await? {
            if record.queue == settings::QUEUE {
                rows.push(row_of(&record));
            }
        }
        id += 1;
    }
    Ok(rows)
}

fn row_of(record: &JobRecord) -> DumpRow {
    DumpRow {
        id: record.id.get(),
        state: record.state.as_str().to_owned(),
        n: record.payload["n"].as_i64().unwrap_or(-1),
        poison: record.payload["poison"].as_bool().unwrap_or(false),
        attempt: record.attempt.into(),
        max_attempts: record.max_attempts.into(),
        last_error: record.last_error.clone().unwrap_or_default(),
    }
}
