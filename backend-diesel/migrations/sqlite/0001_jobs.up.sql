-- Jobs: times are microseconds since the Unix epoch on the database's clock;
-- state 0 pending, 1 running, 2 done, 3 dead. {p} is the table prefix.
CREATE TABLE {p}jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    args BLOB NOT NULL,
    queue TEXT NOT NULL,
    ordering_key TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
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
-- The claim walks this index in claim order and stops at its limit; finished
-- rows are not in it, so they never slow the claim down.
CREATE INDEX {p}jobs_ready ON {p}jobs (queue, priority DESC, id) WHERE state = 0;
-- Whether an ordering key is held: by a running job, or an earlier pending one.
CREATE INDEX {p}jobs_key ON {p}jobs (queue, ordering_key, state, id) WHERE ordering_key IS NOT NULL;
CREATE INDEX {p}jobs_lease ON {p}jobs (deadline) WHERE state = 1;
CREATE INDEX {p}jobs_state ON {p}jobs (queue, state, finished_at);
CREATE INDEX {p}jobs_purge ON {p}jobs (finished_at) WHERE state = 2;
CREATE TABLE {p}ticks (
    name TEXT NOT NULL,
    tick BIGINT NOT NULL,
    PRIMARY KEY (name, tick)
);
