-- Waiting for a job's end. A waiter sets awaited on the job's row (having
-- first listened on "{p}finished"), and only such a row notifies that
-- channel, with the job's id, when the job ends: its state leaves pending
-- and running (dead, cancelled, a code outband does not know), or its
-- pending or running row is deleted (moved to the done table, flushed).
-- The done table has no such column: a done job was heard ending as it
-- left this table. Nullable, no default: adding it rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN awaited BOOLEAN;
-- The statement triggers of updates and deletes, which wake idle consumers,
-- tell the ends too. The rows of a statement are read once, as before,
-- by a test that also looks for awaited jobs that ended; only a statement
-- that has something to tell reads them again. So the statements of jobs
-- nobody waits on (a claim, jobs done) run no query more than before.
CREATE OR REPLACE FUNCTION {p}jobs_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)
               OR (awaited AND state NOT IN (0, 1))) THEN
        IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM changed
            WHERE awaited AND state NOT IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {p}jobs_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL OR (awaited AND state IN (0, 1))) THEN
        IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM gone
            WHERE awaited AND state IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
