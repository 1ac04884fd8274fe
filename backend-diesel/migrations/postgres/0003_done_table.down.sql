DROP TRIGGER {p}jobs_delete ON {p}jobs;
DROP FUNCTION IF EXISTS {p}jobs_notify_delete();
CREATE TRIGGER {p}jobs_delete AFTER DELETE ON {p}jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {p}jobs_notify();
CREATE INDEX {p}jobs_purge ON {p}jobs (finished_at) WHERE state = 2;
INSERT INTO {p}jobs SELECT * FROM {p}done;
DROP TABLE {p}done;
