DROP TABLE {p}rates;
DROP INDEX {p}jobs_rated;
ALTER TABLE {p}jobs DROP COLUMN rate_per_us;
ALTER TABLE {p}jobs DROP COLUMN rate_max;
ALTER TABLE {p}jobs DROP COLUMN rate_key;
