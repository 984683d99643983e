//! Every statement the store runs, rendered once for its schema.

use crate::rows::{CLAIM_COLUMNS, RECORD_COLUMNS};
use crate::schema::Schema;

/// The live states: the unique-key index and the depth cap count these.
const LIVE: &str = "('available', 'running')";

/// The store's clock, in every statement: the time the statement began. `now()` is the
/// start of the transaction, long past inside a caller's long transaction or after a wait
/// for a depth lock: a delay would be due early and an enqueue recorded before it
/// happened. One value for the whole statement, unlike `clock_timestamp()`, so a
/// statement that compares times and sets them (a claim, a rescue, a purge) agrees with
/// itself.
const NOW: &str = "statement_timestamp()";

#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) channel: String,
    pub(crate) units_channel: String,
    pub(crate) insert: String,
    pub(crate) live_with_key: String,
    pub(crate) bound_lock_wait: String,
    pub(crate) restore_lock_wait: String,
    pub(crate) lock_depth: String,
    pub(crate) live_depth: String,
    pub(crate) claim: String,
    pub(crate) heartbeat: String,
    pub(crate) complete: String,
    pub(crate) complete_many: String,
    pub(crate) retry: String,
    pub(crate) bury: String,
    pub(crate) release: String,
    pub(crate) rescue: String,
    pub(crate) notify: String,
    pub(crate) counts: String,
    pub(crate) job: String,
    pub(crate) dead_jobs: String,
    pub(crate) replay: String,
    pub(crate) replay_all: String,
    pub(crate) cancel: String,
    pub(crate) purge: String,
    pub(crate) take_rate: String,
    pub(crate) acquire_units: String,
    pub(crate) release_units: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let sql = |text: &str| schema.render(&text.replace("{live}", LIVE).replace("{now}", NOW));
        Self {
            channel: schema.channel(),
            units_channel: schema.units_channel(),
            // Ids are drawn first so that every input row, inserted or not, maps back to
            // its job; a unique key already live makes the row a no-op.
            insert: sql(
                "WITH input AS MATERIALIZED (
                     SELECT nextval(pg_get_serial_sequence('{schema}.jobs', 'id')) AS id, t.*
                     FROM unnest($1::text[], $2::jsonb[], $3::int2[], $4::int8[], $5::int8[], $6::text[], $7::int4[])
                          WITH ORDINALITY AS t(queue, payload, priority, run_at_us, delay_us, unique_key, max_attempts, ord)
                 ),
                 inserted AS (
                     INSERT INTO {schema}.jobs (id, queue, payload, priority, run_at, unique_key, max_attempts, enqueued_at)
                     SELECT id, queue, payload, priority,
                            CASE WHEN run_at_us IS NOT NULL THEN to_timestamp(run_at_us::float8 / 1000000)
                                 WHEN delay_us IS NOT NULL THEN {now} + delay_us * interval '1 microsecond'
                                 ELSE {now} END,
                            unique_key, max_attempts, {now}
                     FROM input ORDER BY ord
                     ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN {live}
                     DO NOTHING
                     RETURNING id, queue
                 ),
                 notified AS (
                     SELECT pg_notify($8, q.queue) FROM (SELECT DISTINCT queue FROM inserted) q
                 )
                 SELECT input.id, inserted.id IS NOT NULL AS fresh, (SELECT count(*) FROM notified) AS notified
                 FROM input LEFT JOIN inserted ON inserted.id = input.id
                 ORDER BY input.ord",
            ),
            live_with_key: sql(
                "SELECT id FROM {schema}.jobs WHERE queue = $1 AND unique_key = $2 AND state IN {live}",
            ),
            // Reads the caller's `lock_timeout` before setting ours: the fenced subquery
            // yields its row before the outer select list runs `set_config`. The
            // transaction's isolation comes with it, for the depth check to refuse one
            // whose snapshot it cannot count in.
            bound_lock_wait: "SELECT caller.lock_timeout, caller.isolation,
                        set_config('lock_timeout', $1, true)
                 FROM (SELECT current_setting('lock_timeout') AS lock_timeout,
                              current_setting('transaction_isolation') AS isolation
                       OFFSET 0) AS caller"
                .to_owned(),
            restore_lock_wait: "SELECT set_config('lock_timeout', $1, true)".to_owned(),
            lock_depth: sql("SELECT pg_advisory_xact_lock(hashtext('{schema}.depth'), hashtext($1))"),
            // The live jobs (counted up to the cap), and how many of the unique keys `$3`
            // a live job already holds: a job with such a key adds nothing.
            live_depth: sql(
                "SELECT (SELECT count(*) FROM (
                             SELECT 1 FROM {schema}.jobs WHERE queue = $1 AND state IN {live} LIMIT $2
                         ) AS live) AS live,
                        (SELECT count(*) FROM unnest($3::text[]) AS k(key)
                         WHERE EXISTS (
                             SELECT 1 FROM {schema}.jobs l
                             WHERE l.queue = $1 AND l.unique_key = k.key AND l.state IN {live})) AS taken",
            ),
            // SKIP LOCKED: concurrent claimers take disjoint rows without waiting on each other.
            // Of the claimable jobs in order, every one not rescued and the first rescued
            // one: rescued jobs go out one per claim (migration 3). The others are locked
            // only until this statement commits. MATERIALIZED: the rows are picked once.
            // PostgreSQL keeps a locking CTE apart today; folded into the join and scanned
            // again, it would lock, and claim, rows past the limit. UPDATE ... RETURNING
            // keeps no order: the claims are sorted again as they were picked, the
            // contract's order.
            claim: sql(&format!(
                "WITH claimable AS MATERIALIZED (
                     SELECT id, priority, run_at, rescued FROM {{schema}}.jobs
                     WHERE queue = $1 AND state = 'available' AND run_at <= {{now}}
                     ORDER BY priority DESC, run_at, id
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ),
                 picked AS (
                     SELECT id FROM (
                         SELECT id, rescued,
                                row_number() OVER (PARTITION BY rescued ORDER BY priority DESC, run_at, id) AS nth
                         FROM claimable
                     ) ranked
                     WHERE NOT rescued OR nth = 1
                 ),
                 claimed AS (
                     UPDATE {{schema}}.jobs j
                     SET state = 'running', attempt = j.attempt + 1, rescued = false,
                         lease_token = nextval('{{schema}}.lease_tokens'), lease_owner = $3,
                         lease_until = {{now}} + $4 * interval '1 microsecond'
                     FROM picked WHERE j.id = picked.id
                     RETURNING {CLAIM_COLUMNS}, j.run_at
                 )
                 SELECT * FROM claimed ORDER BY priority DESC, run_at, id"
            )),
            // A lease past its expiry is lost even before a rescue: its units may be
            // another run's already (`acquire_units` takes back expired holders).
            heartbeat: sql(
                "WITH renewed AS (
                     UPDATE {schema}.jobs j SET lease_until = {now} + $3 * interval '1 microsecond'
                     FROM unnest($1::int8[], $2::int8[]) AS held(id, token)
                     WHERE j.id = held.id AND j.lease_token = held.token AND j.state = 'running'
                       AND j.lease_until >= {now}
                     RETURNING j.id, j.lease_token
                 ),
                 units AS (
                     UPDATE {schema}.unit_holders h SET expires_at = {now} + $3 * interval '1 microsecond'
                     FROM renewed WHERE h.job_id = renewed.id AND h.token = renewed.lease_token
                 )
                 SELECT id, lease_token FROM renewed",
            ),
            complete: sql(
                "UPDATE {schema}.jobs SET state = 'completed', finished_at = {now}, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            ),
            // Many acks, one statement and one commit; each row still fenced by its token.
            complete_many: sql(
                "UPDATE {schema}.jobs j SET state = 'completed', finished_at = {now}, lease_until = NULL
                 FROM unnest($1::int8[], $2::int8[]) AS done(id, token)
                 WHERE j.id = done.id AND j.lease_token = done.token AND j.state = 'running'
                 RETURNING j.id, j.lease_token",
            ),
            retry: sql(
                "UPDATE {schema}.jobs
                 SET state = 'available', run_at = {now} + $3 * interval '1 microsecond',
                     last_error = $4, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            ),
            bury: sql(
                "UPDATE {schema}.jobs SET state = 'dead', finished_at = {now}, last_error = $3, lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
            ),
            release: sql(
                "UPDATE {schema}.jobs SET state = 'available', attempt = greatest(attempt - 1, 0), lease_until = NULL
                 WHERE id = $1 AND lease_token = $2 AND state = 'running'
                 RETURNING queue",
            ),
            // An expired lease counts as a run: at max attempts the job is dead.
            // MATERIALIZED for the reason the claim's pick is.
            rescue: sql(
                "WITH expired AS MATERIALIZED (
                     SELECT id FROM {schema}.jobs
                     WHERE queue = $1 AND state = 'running' AND lease_until < {now}
                     ORDER BY lease_until LIMIT 1000
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE {schema}.jobs j
                 SET state = CASE WHEN j.attempt >= j.max_attempts THEN 'dead' ELSE 'available' END,
                     rescued = j.attempt < j.max_attempts,
                     finished_at = CASE WHEN j.attempt >= j.max_attempts THEN {now} END,
                     last_error = 'lease expired: ' || coalesce(j.lease_owner, 'its worker') || ' stopped renewing it',
                     lease_until = NULL
                 FROM expired WHERE j.id = expired.id
                 RETURNING j.state",
            ),
            notify: "SELECT pg_notify($1, $2)".to_owned(),
            counts: sql(
                "SELECT state, (state = 'available' AND run_at > {now}) AS later, count(*) AS jobs
                 FROM {schema}.jobs WHERE queue = $1 GROUP BY 1, 2",
            ),
            job: sql(&format!("SELECT {RECORD_COLUMNS} FROM {{schema}}.jobs WHERE id = $1")),
            dead_jobs: sql(&format!(
                "SELECT {RECORD_COLUMNS} FROM {{schema}}.jobs WHERE queue = $1 AND state = 'dead'
                 ORDER BY finished_at DESC LIMIT $2"
            )),
            // A replay waits if a live job already holds the dead one's unique key. One
            // that another transaction makes live and commits while this statement runs
            // is found by the unique index instead, and answered the same (`replay` in store.rs).
            replay: sql(
                "UPDATE {schema}.jobs d
                 SET state = 'available', attempt = 0, run_at = {now}, finished_at = NULL, lease_until = NULL
                 WHERE d.id = $1 AND d.state = 'dead'
                   AND (d.unique_key IS NULL OR NOT EXISTS (
                       SELECT 1 FROM {schema}.jobs l
                       WHERE l.queue = d.queue AND l.unique_key = d.unique_key AND l.state IN {live}))
                 RETURNING queue",
            ),
            // Every row is checked against the live jobs as they were when the statement
            // began, so of several dead jobs sharing a key only one may go (the newest):
            // a second would collide with the first on the unique index, failing the
            // whole replay, and every replay after it. The others wait, as in `replay`
            // (a key taken by a transaction committed meanwhile: `replay_all` in store.rs).
            // The newest of each key are found once, not once per dead job.
            replay_all: sql(
                "UPDATE {schema}.jobs d
                 SET state = 'available', attempt = 0, run_at = {now}, finished_at = NULL, lease_until = NULL
                 WHERE d.queue = $1 AND d.state = 'dead'
                   AND (d.unique_key IS NULL OR (
                       d.id IN (
                           SELECT max(n.id) FROM {schema}.jobs n
                           WHERE n.queue = $1 AND n.state = 'dead' AND n.unique_key IS NOT NULL
                           GROUP BY n.unique_key)
                       AND NOT EXISTS (
                           SELECT 1 FROM {schema}.jobs l
                           WHERE l.queue = d.queue AND l.unique_key = d.unique_key AND l.state IN {live})))",
            ),
            cancel: sql(
                "UPDATE {schema}.jobs SET state = 'cancelled', finished_at = {now}, lease_until = NULL
                 WHERE id = $1 AND state IN {live}",
            ),
            // In slices, so retention never holds many row locks at once. The conditions
            // are stated again on the DELETE itself: a row the subquery chose that another
            // transaction changed meanwhile (a dead job replayed) is checked, in its new
            // version, against the DELETE's own conditions only (READ COMMITTED), and
            // with none it would be deleted as it now is, live.
            purge: sql(
                "DELETE FROM {schema}.jobs
                 WHERE id IN (
                     SELECT id FROM {schema}.jobs
                     WHERE finished_at < {now} - $1 * interval '1 microsecond'
                       AND (state IN ('completed', 'cancelled') OR ($2 AND state = 'dead'))
                     LIMIT 10000
                 )
                   AND finished_at < {now} - $1 * interval '1 microsecond'
                   AND (state IN ('completed', 'cancelled') OR ($2 AND state = 'dead'))",
            ),
            take_rate: sql("SELECT granted, retry_after_us FROM {schema}.take_rate($1, $2, $3, $4)"),
            acquire_units: sql("SELECT {schema}.acquire_units($1, $2, $3, $4, $5, $6)"),
            // Waiters in every process hear of the units at the commit.
            release_units: sql(
                "WITH released AS (
                     DELETE FROM {schema}.unit_holders WHERE key = $1 AND job_id = $2 AND token = $3
                     RETURNING key
                 )
                 SELECT pg_notify($4, key) FROM released LIMIT 1",
            ),
        }
    }
}
