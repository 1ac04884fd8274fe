-- Rate limits: a job enqueued with one starts only when its key's turn has
-- come (RateLimit::admit), in any queue. rate_key, rate_max and rate_per_us
-- (the period in microseconds) are NULL for a job without one; the done
-- table has none of them, since a done job starts no more. Nullable, no
-- default: adding them rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN rate_key TEXT;
ALTER TABLE {p}jobs ADD COLUMN rate_max INTEGER;
ALTER TABLE {p}jobs ADD COLUMN rate_per_us BIGINT;
-- The ready rate-limited jobs of a queue, in claim order: the claim looks
-- here whether it has such jobs to consider at all, and the unlimited claim
-- keeps walking jobs_ready.
CREATE INDEX {p}jobs_rated ON {p}jobs (queue, priority DESC, id)
    WHERE state = 0 AND rate_key IS NOT NULL;
-- A row per rate key ever started: its theoretical arrival time, in
-- microseconds on the database's clock, read and written by claims under
-- the key's advisory lock.
CREATE TABLE {p}rates (
    rate_key TEXT NOT NULL PRIMARY KEY,
    tat BIGINT NOT NULL
);
