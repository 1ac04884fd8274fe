-- Concurrency limits: a job enqueued with one holds limit_key while it
-- runs, and no claim starts it while limit_max jobs holding the key are
-- running, in any queue. Both NULL for a job without a limit; the done table
-- has neither, since a done job holds no slot. Nullable, no default: adding
-- them rewrites no row. Claims hold the write lock, which serializes them.
ALTER TABLE {p}jobs ADD COLUMN limit_key TEXT;
ALTER TABLE {p}jobs ADD COLUMN limit_max INTEGER;
-- How many jobs holding a key are running.
CREATE INDEX {p}jobs_limit ON {p}jobs (limit_key, state) WHERE limit_key IS NOT NULL;
-- The ready limited jobs of a queue, in claim order: the claim looks here
-- whether it has limited jobs to consider at all.
CREATE INDEX {p}jobs_limited ON {p}jobs (queue, priority DESC, id)
    WHERE state = 0 AND limit_key IS NOT NULL;
