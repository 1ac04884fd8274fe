ALTER TABLE {p}jobs DROP KEY {p}jobs_rate_keys, DROP KEY {p}jobs_limit_keys,
    DROP KEY {p}jobs_free, DROP COLUMN limited;
