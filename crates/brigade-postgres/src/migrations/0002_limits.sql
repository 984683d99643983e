-- Global rate limits: GCRA's theoretical arrival time, in microseconds since the epoch on
-- the database clock.
CREATE TABLE IF NOT EXISTS {schema}.rate_limits (
    key     text   PRIMARY KEY,
    tat_us  bigint NOT NULL
);

-- Grants up to p_want starts of the limit p_key (one start per p_interval_us, bursts of
-- p_burst). Returns how many were granted and, when none was, how long until one would be.
CREATE OR REPLACE FUNCTION {schema}.take_rate(
    p_key text, p_interval_us bigint, p_burst integer, p_want integer,
    OUT granted integer, OUT retry_after_us bigint
) LANGUAGE plpgsql AS $$
DECLARE
    now_us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    tat    bigint;
    base   bigint;
    slack  bigint;
BEGIN
    INSERT INTO {schema}.rate_limits (key, tat_us) VALUES (p_key, now_us)
        ON CONFLICT (key) DO NOTHING;
    SELECT r.tat_us INTO tat FROM {schema}.rate_limits r WHERE r.key = p_key FOR UPDATE;
    base := greatest(tat, now_us);
    -- Start i (from 1) fits while base + (i - 1) * interval <= now + (burst - 1) * interval.
    slack := now_us + (p_burst - 1) * p_interval_us - base;
    IF slack < 0 THEN
        granted := 0;
        retry_after_us := -slack;
        RETURN;
    END IF;
    granted := least(p_want::bigint, slack / p_interval_us + 1)::integer;
    retry_after_us := 0;
    UPDATE {schema}.rate_limits SET tat_us = base + granted * p_interval_us WHERE key = p_key;
END $$;

-- Global weighted concurrency: one row per run holding units, expiring with its lease.
CREATE TABLE IF NOT EXISTS {schema}.unit_holders (
    key         text        NOT NULL,
    job_id      bigint      NOT NULL,
    token       bigint      NOT NULL,
    weight      integer     NOT NULL CHECK (weight >= 0),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (key, job_id, token)
);
CREATE INDEX IF NOT EXISTS unit_holders_by_run ON {schema}.unit_holders (job_id, token);

-- Takes p_weight units of p_key (capacity p_capacity) for the run (p_job, p_token), or
-- returns false when they are not free. Holders of one key are serialized by an advisory
-- lock, so the sum is never exceeded however many hosts ask at once.
CREATE OR REPLACE FUNCTION {schema}.acquire_units(
    p_key text, p_capacity integer, p_job bigint, p_token bigint, p_weight integer,
    p_lease_us bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    used bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{schema}.units'), hashtext(p_key));
    DELETE FROM {schema}.unit_holders WHERE key = p_key AND expires_at < clock_timestamp();
    IF EXISTS (SELECT 1 FROM {schema}.unit_holders
               WHERE key = p_key AND job_id = p_job AND token = p_token) THEN
        RETURN true;
    END IF;
    SELECT coalesce(sum(weight), 0) INTO used FROM {schema}.unit_holders WHERE key = p_key;
    IF used + p_weight > p_capacity THEN
        RETURN false;
    END IF;
    INSERT INTO {schema}.unit_holders (key, job_id, token, weight, expires_at)
        VALUES (p_key, p_job, p_token, p_weight,
                clock_timestamp() + p_lease_us * interval '1 microsecond');
    RETURN true;
END $$;
