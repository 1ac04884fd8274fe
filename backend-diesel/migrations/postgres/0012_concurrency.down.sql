CREATE OR REPLACE FUNCTION {p}jobs_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)
               OR (awaited AND state NOT IN (0, 1))) THEN
        IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM changed
            WHERE awaited AND state NOT IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {p}jobs_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL OR (awaited AND state IN (0, 1))) THEN
        IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL) THEN
            PERFORM pg_notify('{p}jobs', '');
        END IF;
        PERFORM pg_notify('{p}finished', CAST(id AS TEXT)) FROM gone
            WHERE awaited AND state IN (0, 1);
    END IF;
    RETURN NULL;
END $$;
DROP INDEX {p}jobs_limited;
DROP INDEX {p}jobs_limit;
ALTER TABLE {p}jobs DROP COLUMN limit_max;
ALTER TABLE {p}jobs DROP COLUMN limit_key;
