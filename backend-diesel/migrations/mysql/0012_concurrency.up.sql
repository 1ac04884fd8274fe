-- Concurrency limits: a job enqueued with one holds limit_key while it
-- runs, and no claim starts it while limit_max jobs holding the key are
-- running, in any queue. Both NULL for a job without a limit; the done table
-- has neither, since a done job holds no slot. Keys are at most 512 bytes,
-- compared byte for byte. jobs_limit counts a key's running jobs;
-- jobs_limited finds whether a queue has pending limited jobs at all.
ALTER TABLE {p}jobs ADD COLUMN limit_key VARBINARY(512) NULL,
    ADD COLUMN limit_max INT NULL,
    ADD KEY {p}jobs_limit (limit_key, state),
    ADD KEY {p}jobs_limited (queue, state, limit_max);
-- A claim of limited jobs locks a row per key it considers (CRC32 of the
-- key; two keys of one hash merely wait for each other), upserted in
-- ascending order, until it commits, so that two claims never count a key's
-- running jobs at once.
CREATE TABLE {p}limit_locks (
    h BIGINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
