-- Claims beside limited jobs that cannot start. `limited` is 1 for a job
-- with a concurrency or rate limit: the claim of unlimited jobs walks
-- jobs_free at limited = 0, past no limited job, so 10,000 jobs of a full
-- concurrency key ahead of the free ones cost it nothing. jobs_limit_keys
-- and jobs_rate_keys give the distinct keys of a queue's pending limited
-- jobs, one probe each, with the greatest limit_max or rate_per_us of the
-- key's jobs at the key's end: whether limited jobs may start is decided
-- per key, and a key that is full, or whose turn is far, costs no look at
-- its jobs.
ALTER TABLE {p}jobs
    ADD COLUMN limited TINYINT AS (limit_key IS NOT NULL OR rate_key IS NOT NULL) VIRTUAL,
    ADD KEY {p}jobs_free (queue, state, limited, priority DESC, id),
    ADD KEY {p}jobs_limit_keys (queue, state, limit_key, limit_max),
    ADD KEY {p}jobs_rate_keys (queue, state, rate_key, rate_per_us);
