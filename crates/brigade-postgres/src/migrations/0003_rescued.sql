-- A job whose lease expired is `rescued` until its next claim, and a claim takes at most
-- one rescued job: the jobs a dead worker held together (one of which may be what killed
-- it) go out to different claims, not together again.
ALTER TABLE {schema}.jobs ADD COLUMN IF NOT EXISTS rescued boolean NOT NULL DEFAULT false;
