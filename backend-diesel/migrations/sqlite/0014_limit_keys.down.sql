DROP INDEX {p}jobs_rate_keys;
DROP INDEX {p}jobs_limit_keys;
DROP INDEX {p}jobs_free;
