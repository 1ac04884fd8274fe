DROP INDEX {p}jobs_state;
CREATE INDEX {p}jobs_state ON {p}jobs (queue, state, finished_at);
