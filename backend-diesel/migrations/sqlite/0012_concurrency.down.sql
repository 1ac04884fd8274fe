DROP INDEX {p}jobs_limited;
DROP INDEX {p}jobs_limit;
ALTER TABLE {p}jobs DROP COLUMN limit_max;
ALTER TABLE {p}jobs DROP COLUMN limit_key;
