DROP INDEX {p}jobs_ready;
CREATE INDEX {p}jobs_ready ON {p}jobs (queue, priority DESC, id) WHERE state = 0;
DROP INDEX {p}jobs_lease;
CREATE INDEX {p}jobs_lease ON {p}jobs (deadline) WHERE state = 1;
