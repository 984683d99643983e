-- The jobs: one row per durable job, from enqueue to its terminal state. Times are
-- microseconds since the Unix epoch on the store's clock (SQLite's, at millisecond
-- resolution); a run-at given by the producer is kept to the microsecond.
-- AUTOINCREMENT: ids are never reused, even after retention deletes the newest rows, so
-- anything keyed on a job id (idempotency keys, ledgers) stays unambiguous.
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'available'
                  CHECK (state IN ('available', 'running', 'completed', 'dead', 'cancelled')),
    payload       TEXT    NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    run_at        INTEGER NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL CHECK (max_attempts >= 1),
    unique_key    TEXT,
    lease_token   INTEGER,
    lease_owner   TEXT,
    lease_until   INTEGER,
    last_error    TEXT,
    enqueued_at   INTEGER NOT NULL,
    finished_at   INTEGER
) STRICT;

-- Fencing tokens: every claim takes the next values of this counter.
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT    PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO counters (name, value) VALUES ('lease_token', 0);

-- Claims read only due, available rows: finished rows never enter this index.
CREATE INDEX IF NOT EXISTS jobs_claimable
    ON jobs (queue, priority DESC, run_at, id) WHERE state = 'available';

-- The rescuer reads running rows by lease end.
CREATE INDEX IF NOT EXISTS jobs_leased
    ON jobs (queue, lease_until) WHERE state = 'running';

-- At most one live job per unique key and queue.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique_live
    ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running');

-- Retention deletes finished rows by age; operators list dead jobs by recency.
CREATE INDEX IF NOT EXISTS jobs_finished
    ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_dead
    ON jobs (queue, finished_at DESC) WHERE state = 'dead';

-- Counting a queue's live jobs (the depth cap, counts) without reading finished rows.
CREATE INDEX IF NOT EXISTS jobs_live
    ON jobs (queue, state) WHERE state IN ('available', 'running');
