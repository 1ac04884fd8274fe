-- Finished jobs move out of the jobs table into a table of their own, in the
-- same transaction that records them done, so the jobs table only holds
-- pending, running and dead jobs and the claim's cost does not grow with the
-- history kept for the retention period. Same columns, same order as jobs
-- (state is always 2 here). Ids are never reused: jobs is AUTOINCREMENT.
CREATE TABLE {p}done (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    args BLOB NOT NULL,
    queue TEXT NOT NULL,
    ordering_key TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 2,
    token BIGINT NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    deadline BIGINT,
    duration_us BIGINT,
    last_error TEXT,
    result BLOB
);
CREATE INDEX {p}done_queue ON {p}done (queue, finished_at);
CREATE INDEX {p}done_purge ON {p}done (finished_at);
INSERT INTO {p}done SELECT * FROM {p}jobs WHERE state = 2;
DELETE FROM {p}jobs WHERE state = 2;
DROP INDEX {p}jobs_purge;
