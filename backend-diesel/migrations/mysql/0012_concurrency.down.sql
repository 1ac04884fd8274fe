DROP TABLE {p}limit_locks;
ALTER TABLE {p}jobs DROP KEY {p}jobs_limited, DROP KEY {p}jobs_limit,
    DROP COLUMN limit_max, DROP COLUMN limit_key;
