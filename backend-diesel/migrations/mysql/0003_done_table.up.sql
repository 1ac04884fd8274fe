-- Finished jobs move out of the jobs table into a table of their own, in the
-- same transaction that records them done, so the jobs table only holds
-- pending, running and dead jobs: it stays small enough for InnoDB's buffer
-- pool and the claim's cost does not grow with the history kept for the
-- retention period. Same columns, same order as jobs (state is always 2
-- here). InnoDB keeps the AUTO_INCREMENT counter across restarts (MariaDB
-- 10.2.4 and later, MySQL 8), so ids are never reused.
CREATE TABLE {p}done (
    id BIGINT NOT NULL PRIMARY KEY,
    command VARCHAR(255) NOT NULL,
    args LONGBLOB NOT NULL,
    queue VARCHAR(255) NOT NULL,
    ordering_key VARCHAR(255) NULL,
    priority INT NOT NULL DEFAULT 0,
    attempt INT NOT NULL DEFAULT 0,
    max_attempts INT NOT NULL,
    state INT NOT NULL DEFAULT 2,
    token BIGINT NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL,
    deadline BIGINT NULL,
    duration_us BIGINT NULL,
    last_error TEXT NULL,
    result LONGBLOB NULL,
    KEY {p}done_queue (queue, finished_at),
    KEY {p}done_purge (finished_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO {p}done SELECT * FROM {p}jobs WHERE state = 2;
DELETE FROM {p}jobs WHERE state = 2;
ALTER TABLE {p}jobs DROP INDEX {p}jobs_purge;
