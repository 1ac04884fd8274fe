ALTER TABLE {p}jobs ADD KEY {p}jobs_purge (state, finished_at);
INSERT INTO {p}jobs SELECT * FROM {p}done;
DROP TABLE {p}done;
