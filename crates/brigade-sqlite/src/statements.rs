//! Every statement the store runs, rendered once.
//!
//! Times are decided here, in SQL, on the store's clock: `{now}` is SQLite's
//! `unixepoch('subsec')` (milliseconds, stable within one statement) in microseconds.
//! Deadlines handed in as durations are added to it; nothing is computed from the
//! process's own clock.

use crate::rows::{CLAIM_COLUMNS, RECORD_COLUMNS};

/// The store's clock, in microseconds since the Unix epoch. `round` first: the product of
/// a fractional second and a million is not always an exact integer in floating point.
pub(crate) const NOW: &str = "(CAST(round(unixepoch('subsec') * 1000.0) AS INTEGER) * 1000)";

/// The live states: the unique-key index and the depth cap count these.
const LIVE: &str = "('available', 'running')";

/// The most rows one retention or replay statement changes: each holds the file's write
/// lock while it runs, and claims, acks and heartbeats wait for it.
pub(crate) const SLICE: u64 = 10_000;

#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) insert: String,
    pub(crate) live_with_key: String,
    pub(crate) live_depth: String,
    pub(crate) claim: String,
    pub(crate) take_tokens: String,
    pub(crate) heartbeat: String,
    pub(crate) heartbeat_units: String,
    pub(crate) complete: String,
    pub(crate) retry: String,
    pub(crate) bury: String,
    pub(crate) release: String,
    pub(crate) rescue: String,
    pub(crate) counts: String,
    pub(crate) job: String,
    pub(crate) dead_jobs: String,
    pub(crate) replay: String,
    pub(crate) replay_all: String,
    pub(crate) replay_began: String,
    pub(crate) cancel: String,
    pub(crate) purge: String,
    pub(crate) rate_state: String,
    pub(crate) rate_store: String,
    pub(crate) units_expire: String,
    pub(crate) units_held: String,
    pub(crate) units_used: String,
    pub(crate) units_take: String,
    pub(crate) units_release: String,
}

impl Statements {
    pub(crate) fn new() -> Self {
        let sql = |text: &str| {
            text.replace("{now}", NOW)
                .replace("{live}", LIVE)
                .replace("{slice}", &SLICE.to_string())
        };
        Self {
            // `?5` is an absolute run-at, `?6` a delay from now; neither means now. A unique
            // key already live makes the insert a no-op (no row returned).
            insert: sql(
                "INSERT INTO jobs (queue, payload, priority, run_at, unique_key, max_attempts, enqueued_at)
                 VALUES (?1, ?2, ?3, coalesce(?5, {now} + ?6, {now}), ?4, ?7, {now})
                 ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN {live}
                 DO NOTHING
                 RETURNING id",
            ),
            live_with_key: sql(
                "SELECT id FROM jobs WHERE queue = ?1 AND unique_key = ?2 AND state IN {live}",
            ),
            // The queue's live jobs (read no further than the cap `?2`), and how many of
            // the unique keys in `?3` (a JSON array) a live job holds already.
            live_depth: sql(
                "SELECT (SELECT count(*) FROM (
                             SELECT 1 FROM jobs WHERE queue = ?1 AND state IN {live} LIMIT ?2
                         )) AS live,
                        (SELECT count(*) FROM json_each(?3) AS k
                         WHERE EXISTS (
                             SELECT 1 FROM jobs l
                             WHERE l.queue = ?1 AND l.unique_key = k.value AND l.state IN {live})) AS taken",
            ),
            // Runs under the write lock (BEGIN IMMEDIATE), so no other claimer sees these
            // rows as available. The inner LIMIT reads at most `?2` rows from the claim
            // index; tokens are the counter's value plus each row's rank, and the counter
            // moves past them in the same transaction (`take_tokens`). Of those rows it
            // takes every one not rescued and the first rescued one: rescued jobs go out
            // one per claim (migration 3).
            claim: sql(&format!(
                "WITH picked AS (
                     SELECT id, row_number() OVER (ORDER BY priority DESC, run_at, id) AS rank
                     FROM (
                         SELECT id, priority, run_at, rescued,
                                row_number() OVER (PARTITION BY rescued ORDER BY priority DESC, run_at, id) AS nth
                         FROM (
                             SELECT id, priority, run_at, rescued FROM jobs
                             WHERE queue = ?1 AND state = 'available' AND run_at <= {{now}}
                             ORDER BY priority DESC, run_at, id
                             LIMIT ?2
                         )
                     )
                     WHERE rescued = 0 OR nth = 1
                 )
                 UPDATE jobs
                 SET state = 'running', attempt = attempt + 1, rescued = 0,
                     lease_token = (SELECT value FROM counters WHERE name = 'lease_token') + picked.rank,
                     lease_owner = ?3, lease_until = {{now}} + ?4
                 FROM picked WHERE jobs.id = picked.id
                 RETURNING {CLAIM_COLUMNS}"
            )),
            take_tokens: "UPDATE counters SET value = value + ?1 WHERE name = 'lease_token'"
                .to_owned(),
            // `?1` is a JSON array of [id, token] pairs: one statement for every lease held.
            // A lease past its expiry is lost even before a rescue: its units may be another
            // run's already (`acquire_units` takes back expired holders), and renewing it
            // would let two runs hold them.
            heartbeat: sql(
                "UPDATE jobs SET lease_until = {now} + ?2
                 WHERE state = 'running' AND lease_until >= {now}
                   AND (id, lease_token) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1))
                 RETURNING id, lease_token",
            ),
            heartbeat_units: sql(
                "UPDATE unit_holders SET expires_at = {now} + ?2
                 WHERE (job_id, token) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1))",
            ),
            complete: sql(
                "UPDATE jobs SET state = 'completed', finished_at = {now}, lease_until = NULL
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
            ),
            retry: sql(
                "UPDATE jobs
                 SET state = 'available', run_at = {now} + ?3, last_error = ?4, lease_until = NULL
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
            ),
            bury: sql(
                "UPDATE jobs SET state = 'dead', finished_at = {now}, last_error = ?3, lease_until = NULL
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
            ),
            release: sql(
                "UPDATE jobs SET state = 'available', attempt = max(attempt - 1, 0), lease_until = NULL
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
                 RETURNING queue",
            ),
            // An expired lease counts as a run: at max attempts the job is dead.
            rescue: sql(
                "UPDATE jobs
                 SET state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'available' END,
                     rescued = attempt < max_attempts,
                     finished_at = CASE WHEN attempt >= max_attempts THEN {now} END,
                     last_error = 'lease expired: ' || coalesce(lease_owner, 'its worker') || ' stopped renewing it',
                     lease_until = NULL
                 WHERE id IN (
                     SELECT id FROM jobs
                     WHERE queue = ?1 AND state = 'running' AND lease_until < {now}
                     ORDER BY lease_until LIMIT 1000
                 )
                 RETURNING state",
            ),
            counts: sql(
                "SELECT state, (state = 'available' AND run_at > {now}) AS later, count(*) AS jobs
                 FROM jobs WHERE queue = ?1 GROUP BY 1, 2",
            ),
            job: format!("SELECT {RECORD_COLUMNS} FROM jobs WHERE id = ?1"),
            // Ties within the clock's millisecond: the newer id first.
            dead_jobs: format!(
                "SELECT {RECORD_COLUMNS} FROM jobs WHERE queue = ?1 AND state = 'dead'
                 ORDER BY finished_at DESC, id DESC LIMIT ?2"
            ),
            // A replay waits if a live job already holds the dead one's unique key.
            replay: sql(
                "UPDATE jobs AS d
                 SET state = 'available', attempt = 0, run_at = {now}, finished_at = NULL, lease_until = NULL
                 WHERE d.id = ?1 AND d.state = 'dead'
                   AND (d.unique_key IS NULL OR NOT EXISTS (
                       SELECT 1 FROM jobs l
                       WHERE l.queue = d.queue AND l.unique_key = d.unique_key AND l.state IN {live}))
                 RETURNING queue",
            ),
            // Of several dead jobs sharing a key only one may go (the newest): the rows are
            // chosen before any is changed, so each would pass the live-key check, and the
            // second would collide with the first on the unique index, failing the whole
            // replay, and every replay after it. The others wait, as in `replay`. The newest
            // of each key are found once, not once per dead job.
            //
            // In slices, as retention is; only jobs dead by the moment the replay began
            // (`?2`, from `replay_began`), so one that dies again while the slices go waits
            // for the next replay.
            replay_all: sql(
                "UPDATE jobs
                 SET state = 'available', attempt = 0, run_at = {now}, finished_at = NULL, lease_until = NULL
                 WHERE id IN (
                     SELECT d.id FROM jobs d
                     WHERE d.queue = ?1 AND d.state = 'dead' AND d.finished_at <= ?2
                       AND (d.unique_key IS NULL OR (
                           d.id IN (
                               SELECT max(n.id) FROM jobs n
                               WHERE n.queue = ?1 AND n.state = 'dead' AND n.unique_key IS NOT NULL
                               GROUP BY n.unique_key)
                           AND NOT EXISTS (
                               SELECT 1 FROM jobs l
                               WHERE l.queue = d.queue AND l.unique_key = d.unique_key AND l.state IN {live})))
                     ORDER BY d.id
                     LIMIT {slice}
                 )",
            ),
            // The moment a `replay_all` begins: now on the store's clock, or the newest
            // death of the queue's dead jobs if that is later. A clock stepped back stamps
            // later deaths before earlier ones, and those would otherwise wait, replay
            // after replay, until the clock caught up with them. Now is to the
            // millisecond, so a job buried just before the call, in the same one, is in.
            replay_began: sql(
                "SELECT max({now}, coalesce((
                     SELECT finished_at FROM jobs WHERE queue = ?1 AND state = 'dead'
                     ORDER BY finished_at DESC LIMIT 1), 0))",
            ),
            cancel: sql(
                "UPDATE jobs SET state = 'cancelled', finished_at = {now}, lease_until = NULL
                 WHERE id = ?1 AND state IN {live}",
            ),
            // In slices, so retention never holds the write lock for long. A write statement
            // takes the write lock before it reads, so no replay can change a row between
            // the subquery choosing it and the DELETE.
            purge: sql(
                "DELETE FROM jobs WHERE id IN (
                     SELECT id FROM jobs
                     WHERE finished_at < {now} - ?1
                       AND (state IN ('completed', 'cancelled') OR (?2 AND state = 'dead'))
                     LIMIT {slice}
                 )",
            ),
            rate_state: sql(
                "SELECT {now} AS now_us, (SELECT tat_us FROM rate_limits WHERE key = ?1) AS tat_us",
            ),
            rate_store: "INSERT INTO rate_limits (key, tat_us) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET tat_us = excluded.tat_us"
                .to_owned(),
            units_expire: sql("DELETE FROM unit_holders WHERE key = ?1 AND expires_at < {now}"),
            units_held: "SELECT 1 FROM unit_holders WHERE key = ?1 AND job_id = ?2 AND token = ?3"
                .to_owned(),
            units_used: "SELECT coalesce(sum(weight), 0) FROM unit_holders WHERE key = ?1"
                .to_owned(),
            units_take: sql(
                "INSERT INTO unit_holders (key, job_id, token, weight, expires_at)
                 VALUES (?1, ?2, ?3, ?4, {now} + ?5)",
            ),
            units_release: "DELETE FROM unit_holders WHERE key = ?1 AND job_id = ?2 AND token = ?3"
                .to_owned(),
        }
    }
}
