-- Paused queues: a row per queue that no claim takes from until it is
-- resumed, which deletes the row. Every claim statement looks its queue up
-- here by primary key, once per statement, before it reads any job (a
-- const-table read: a paused queue's claim reads no job); a queue that
-- holds no job may have a row too. paused_at is when it was paused, in
-- microseconds since the Unix epoch on the database's clock. Flushes and
-- purges leave this table alone. The names compare as the jobs table's do,
-- byte for byte (utf8mb4_bin).
CREATE TABLE {p}paused (
    queue VARCHAR(255) NOT NULL PRIMARY KEY,
    paused_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
