-- The run under (id, token) succeeded. ARGV: base, id, token. Returns 1, or 0 when stale.
return complete_one(ARGV[2], ARGV[3], now_us())
