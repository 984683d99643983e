-- take_rate as in migration 2, but reading the clock once it holds the limit's row, not
-- on entry: a take that waited for the row (another host's take held it) would record
-- its start at the time it asked, earlier than its grant, and leave the next start due
-- that much too early.
CREATE OR REPLACE FUNCTION {schema}.take_rate(
    p_key text, p_interval_us bigint, p_burst integer, p_want integer,
    OUT granted integer, OUT retry_after_us bigint
) LANGUAGE plpgsql AS $$
DECLARE
    now_us bigint;
    tat    bigint;
    base   bigint;
    slack  bigint;
BEGIN
    -- A new limit is idle: any arrival time not after the clock read below will do.
    INSERT INTO {schema}.rate_limits (key, tat_us) VALUES (p_key, 0)
        ON CONFLICT (key) DO NOTHING;
    SELECT r.tat_us INTO tat FROM {schema}.rate_limits r WHERE r.key = p_key FOR UPDATE;
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
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
