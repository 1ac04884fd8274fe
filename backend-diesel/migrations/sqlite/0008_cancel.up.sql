-- Cancelling. A cancelled job is state 4: it stays in this table, like a
-- dead one, with when it was cancelled (finished_at) and why (last_error),
-- until a purge deletes it by its finish time, as it deletes done jobs. It
-- holds no ordering key: the claim waits only behind pending and running
-- jobs of a key. A running job asked to cancel keeps running with the
-- request's reason in cancel_reason, NULL otherwise, until its attempt ends.
-- Nullable, no default: adding it rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN cancel_reason TEXT;
-- 4 is a known state now: the index of unknown state codes no longer holds
-- it. Its condition is the recovery statement's word for word.
DROP INDEX {p}jobs_unknown;
CREATE INDEX {p}jobs_unknown ON {p}jobs (state) WHERE state < 0 OR state > 4;
-- The purge finds the cancelled jobs that finished long enough ago here.
CREATE INDEX {p}jobs_cancelled ON {p}jobs (finished_at) WHERE state = 4;
