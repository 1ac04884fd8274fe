-- Finished jobs move out of the jobs table into a table of their own, in the
-- same transaction that records them done. The jobs table then only ever
-- holds pending, running and dead jobs: its size, its indexes, its dead
-- tuples between vacuums and the planner's statistics no longer grow with
-- the history kept for the retention period, so the claim's cost stays flat
-- however many finished jobs are kept. Same columns, same order as jobs
-- (state is always 2 here), so a job reads the same from either table.
CREATE TABLE {p}done (LIKE {p}jobs INCLUDING DEFAULTS);
ALTER TABLE {p}done ADD PRIMARY KEY (id);
CREATE INDEX {p}done_queue ON {p}done (queue, finished_at);
CREATE INDEX {p}done_purge ON {p}done (finished_at);
INSERT INTO {p}done SELECT * FROM {p}jobs WHERE state = 2;
DELETE FROM {p}jobs WHERE state = 2;
DROP INDEX {p}jobs_purge;
-- Every completion now deletes a row: wake consumers only when a deleted row
-- held an ordering key that a waiting job may now take.
DROP TRIGGER {p}jobs_delete ON {p}jobs;
CREATE FUNCTION {p}jobs_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL) THEN
        PERFORM pg_notify('{p}jobs', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {p}jobs_delete AFTER DELETE ON {p}jobs REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION {p}jobs_notify_delete();
