DROP INDEX {p}jobs_unknown;
