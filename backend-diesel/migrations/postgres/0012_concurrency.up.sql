-- Concurrency limits: a job enqueued with one holds limit_key while it
-- runs, and no claim starts it while limit_max jobs holding the key are
-- running, in any queue. Both NULL for a job without a limit; the done table
-- has neither, since a done job holds no slot. Nullable, no default: adding
-- them rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN limit_key TEXT;
ALTER TABLE {p}jobs ADD COLUMN limit_max INTEGER;
-- How many jobs holding a key are running, read by each claim of the key
-- under the key's lock.
CREATE INDEX {p}jobs_limit ON {p}jobs (limit_key, state) WHERE limit_key IS NOT NULL;
-- The ready limited jobs of a queue, in claim order: the claim looks here
-- whether it has limited jobs to consider at all, and the unlimited claim
-- keeps walking jobs_ready.
CREATE INDEX {p}jobs_limited ON {p}jobs (queue, priority DESC, id)
    WHERE state = 0 AND limit_key IS NOT NULL;
-- A running limited job that ends (dead, cancelled, or deleted: done) frees
-- a slot of its key: wake idle consumers when pending jobs of the key wait
-- for one. A retried or requeued job is pending, and wakes them already.
CREATE OR REPLACE FUNCTION {p}jobs_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)
               OR (awaited AND state NOT IN (0, 1)) OR (state > 1 AND limit_key IS NOT NULL)) THEN
        IF EXISTS (SELECT 1 FROM changed c WHERE c.state = 0
                   OR (c.state > 1 AND c.ordering_key IS NOT NULL)
                   OR (c.state > 1 AND c.limit_key IS NOT NULL AND EXISTS (SELECT 1 FROM {p}jobs p
                       WHERE p.limit_key = c.limit_key AND p.state = 0))) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM changed
            WHERE awaited AND state NOT IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {p}jobs_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL OR (awaited AND state IN (0, 1))
               OR (state = 1 AND limit_key IS NOT NULL)) THEN
        IF EXISTS (SELECT 1 FROM gone g WHERE g.ordering_key IS NOT NULL
                   OR (g.state = 1 AND g.limit_key IS NOT NULL AND EXISTS (SELECT 1 FROM {p}jobs p
                       WHERE p.limit_key = g.limit_key AND p.state = 0))) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM gone
            WHERE awaited AND state IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
