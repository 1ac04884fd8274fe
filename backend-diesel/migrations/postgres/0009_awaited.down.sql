CREATE OR REPLACE FUNCTION {p}jobs_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone WHERE ordering_key IS NOT NULL) THEN
        PERFORM pg_notify('{p}jobs', '');
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION {p}jobs_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed WHERE state = 0 OR (state > 1 AND ordering_key IS NOT NULL)) THEN
        PERFORM pg_notify('{p}jobs', '');
    END IF;
    RETURN NULL;
END $$;
ALTER TABLE {p}jobs DROP COLUMN awaited;
