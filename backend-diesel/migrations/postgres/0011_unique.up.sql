-- Unique keys: a row per key that a unique enqueue took, naming the last
-- job stored with it. The key is free when that job no longer holds it
-- (by its state, read from jobs or done) or is gone, so a row whose job was
-- deleted holds nothing; the deletes that remove jobs remove their rows.
-- An enqueue locks its key's row (an upsert, so that two first enqueues of
-- a key wait for each other) until it commits; job_id is 0 only inside the
-- enqueue that creates the row. Keys are at most 512 bytes and global,
-- across queues. The index of job_id serves those deletes.
CREATE TABLE {p}unique_keys (
    unique_key TEXT PRIMARY KEY,
    job_id BIGINT NOT NULL
);
CREATE INDEX {p}unique_keys_job ON {p}unique_keys (job_id);
