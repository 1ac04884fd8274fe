-- Paused queues: a row per queue that no claim takes from until it is
-- resumed, which deletes the row. Every claim statement looks its queue up
-- here by primary key, once per statement, before it reads any job; a queue
-- that holds no job may have a row too. paused_at is when it was paused, in
-- microseconds since the Unix epoch on the database's clock. Flushes and
-- purges leave this table alone. WITHOUT ROWID: the lookup is one search of
-- the primary key's tree.
CREATE TABLE {p}paused (
    queue TEXT NOT NULL PRIMARY KEY,
    paused_at BIGINT NOT NULL
) WITHOUT ROWID;
