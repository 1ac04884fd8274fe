CREATE FUNCTION {p}jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{p}jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER {p}jobs_insert AFTER INSERT ON {p}jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {p}jobs_notify();
