CREATE INDEX {p}jobs_purge ON {p}jobs (finished_at) WHERE state = 2;
INSERT INTO {p}jobs SELECT * FROM {p}done;
DROP TABLE {p}done;
