-- Global rate limits: GCRA's theoretical arrival time, in microseconds since the epoch on
-- the store's clock.
CREATE TABLE IF NOT EXISTS rate_limits (
    key     TEXT    PRIMARY KEY,
    tat_us  INTEGER NOT NULL
) STRICT;

-- Global weighted concurrency: one row per run holding units, expiring with its lease.
CREATE TABLE IF NOT EXISTS unit_holders (
    key         TEXT    NOT NULL,
    job_id      INTEGER NOT NULL,
    token       INTEGER NOT NULL,
    weight      INTEGER NOT NULL CHECK (weight >= 0),
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (key, job_id, token)
) STRICT;
CREATE INDEX IF NOT EXISTS unit_holders_by_run ON unit_holders (job_id, token);
