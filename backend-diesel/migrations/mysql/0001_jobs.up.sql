-- Jobs: times are microseconds since the Unix epoch on the database's clock;
-- state 0 pending, 1 running, 2 done, 3 dead. {p} is the table prefix.
CREATE TABLE {p}jobs (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    command VARCHAR(255) NOT NULL,
    args LONGBLOB NOT NULL,
    queue VARCHAR(255) NOT NULL,
    ordering_key VARCHAR(255) NULL,
    priority INT NOT NULL DEFAULT 0,
    attempt INT NOT NULL DEFAULT 0,
    max_attempts INT NOT NULL,
    state INT NOT NULL DEFAULT 0,
    token BIGINT NOT NULL DEFAULT 0,
    run_at BIGINT NOT NULL,
    enqueued_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL,
    deadline BIGINT NULL,
    duration_us BIGINT NULL,
    last_error TEXT NULL,
    result LONGBLOB NULL,
    -- the claim walks this index in claim order and stops at its limit
    KEY {p}jobs_ready (queue, state, priority DESC, id),
    KEY {p}jobs_key (queue, ordering_key, state, id),
    KEY {p}jobs_lease (state, deadline),
    KEY {p}jobs_state (queue, state, finished_at),
    KEY {p}jobs_purge (state, finished_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE {p}ticks (
    name VARCHAR(255) NOT NULL,
    tick BIGINT NOT NULL,
    PRIMARY KEY (name, tick)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
