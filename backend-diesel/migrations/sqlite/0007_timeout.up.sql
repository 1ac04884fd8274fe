-- How long one attempt of the job may run, in whole milliseconds, as it was
-- enqueued with it; NULL leaves it to the command's own timeout. Kept
-- through retries, release and recovery, and carried to the done table with
-- the row. Nullable, no default: adding it rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN timeout_ms BIGINT;
ALTER TABLE {p}done ADD COLUMN timeout_ms BIGINT;
