-- Rate limits: a job enqueued with one starts only when its key's turn has
-- come (RateLimit::admit), in any queue. rate_key, rate_max and rate_per_us
-- (the period in microseconds) are NULL for a job without one; the done
-- table has none of them, since a done job starts no more. Keys are at most
-- 512 bytes, compared byte for byte. jobs_rated finds whether a queue has
-- pending rate-limited jobs at all.
ALTER TABLE {p}jobs ADD COLUMN rate_key VARBINARY(512) NULL,
    ADD COLUMN rate_max INT NULL,
    ADD COLUMN rate_per_us BIGINT NULL,
    ADD KEY {p}jobs_rated (queue, state, rate_max);
-- A row per rate key ever started: its theoretical arrival time, in
-- microseconds on the database's clock, read and written by claims under
-- the key's row of limit_locks.
CREATE TABLE {p}rates (
    rate_key VARBINARY(512) NOT NULL PRIMARY KEY,
    tat BIGINT NOT NULL
) ENGINE = InnoDB;
