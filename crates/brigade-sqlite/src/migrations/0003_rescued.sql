-- A job whose lease expired is `rescued` until its next claim, and a claim takes at most
-- one rescued job: the jobs a dead worker held together (one of which may be what killed
-- it) go out to different claims, not together again.
ALTER TABLE jobs ADD COLUMN rescued INTEGER NOT NULL DEFAULT 0 CHECK (rescued IN (0, 1));
