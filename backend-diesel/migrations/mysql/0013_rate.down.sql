DROP TABLE {p}rates;
ALTER TABLE {p}jobs DROP KEY {p}jobs_rated,
    DROP COLUMN rate_per_us, DROP COLUMN rate_max, DROP COLUMN rate_key;
