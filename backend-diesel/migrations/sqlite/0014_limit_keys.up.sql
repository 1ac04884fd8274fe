-- Claims beside limited jobs that cannot start. The claim of unlimited jobs
-- walks jobs_free, which holds no limited job: 10,000 jobs of a full
-- concurrency key ahead of the free ones cost it nothing. Its condition is
-- the claim's own (UNLIMITED in src/sql.rs), word for word.
CREATE INDEX {p}jobs_free ON {p}jobs (queue, priority DESC, id)
    WHERE state = 0 AND run_at IS NOT NULL AND limit_key IS NULL AND rate_key IS NULL;
-- The distinct keys of a queue's pending limited jobs, one probe each, with
-- the greatest limit_max or rate_per_us of the key's jobs at the key's end:
-- whether limited jobs may start is decided per key, and a key that is
-- full, or whose turn is far, costs no look at its jobs.
CREATE INDEX {p}jobs_limit_keys ON {p}jobs (queue, limit_key, limit_max)
    WHERE state = 0 AND limit_key IS NOT NULL;
CREATE INDEX {p}jobs_rate_keys ON {p}jobs (queue, rate_key, rate_per_us)
    WHERE state = 0 AND rate_key IS NOT NULL;
