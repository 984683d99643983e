-- The run under (id, token) succeeded. ARGV: base, id, token. Returns 1, or 0 when stale.
return complete_runs(2, now_us())[1]
