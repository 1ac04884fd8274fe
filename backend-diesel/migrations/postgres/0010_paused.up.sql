-- Paused queues: a row per queue that no claim takes from until it is
-- resumed, which deletes the row. Every claim statement looks its queue up
-- here by primary key, once per statement, before it reads any job; a queue
-- that holds no job may have a row too. paused_at is when it was paused, in
-- microseconds since the Unix epoch on the database's clock. Flushes and
-- purges leave this table alone.
CREATE TABLE {p}paused (
    queue TEXT PRIMARY KEY,
    paused_at BIGINT NOT NULL
);
-- A resumed queue's ready jobs may be claimed again: wake idle consumers as
-- an enqueue does, on the channel they listen on. A row trigger, so a
-- resume of a queue that was not paused notifies no one; a row deleted by
-- hand wakes them as well.
CREATE FUNCTION {p}paused_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{p}jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER {p}paused_delete AFTER DELETE ON {p}paused
    FOR EACH ROW EXECUTE FUNCTION {p}paused_notify();
