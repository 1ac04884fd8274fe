-- How long one attempt of the job may run, in whole milliseconds, as it was
-- enqueued with it; NULL leaves it to the command's own timeout. Kept
-- through retries, release and recovery, and carried to the done table with
-- the row. Both tables gain the column in the same place, so a job still
-- reads the same from either. A nullable column added last: InnoDB adds it
-- in place (instantly on MariaDB 10.3 and MySQL 8.0.12 and later).
ALTER TABLE {p}jobs ADD COLUMN timeout_ms BIGINT NULL;
ALTER TABLE {p}done ADD COLUMN timeout_ms BIGINT NULL;
