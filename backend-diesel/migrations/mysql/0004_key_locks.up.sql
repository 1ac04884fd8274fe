-- A lock per ordering key for enqueues. The claim takes a keyed job only
-- when no job of its key is running or pending with a smaller id, and it
-- cannot see an insert that has not committed: two enqueues of one key that
-- committed in the opposite order of their ids could let two claims run both
-- jobs at once. So an enqueue with keys first upserts their rows here, which
-- InnoDB keeps locked until the transaction ends, and a second enqueue of a
-- key waits for the first to commit. Rows are the keys' hashes modulo 65,536,
-- so the table never grows past that; two keys with one hash merely wait for
-- each other.
CREATE TABLE {p}keys (
    h INT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
