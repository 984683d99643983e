-- Leases up to `limit` due jobs, highest priority first.
-- ARGV: base, worker (the consumer name), limit, lease_us.
-- Returns per claim {id, token, payload, attempt, max_attempts, priority, enqueued_at_us},
-- payload, max_attempts and enqueued_at_us as the job's hash holds them.
return claim_jobs(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now_us())
