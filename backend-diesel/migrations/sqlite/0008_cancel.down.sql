-- Before this migration a cancelled job was deleted, and any code past 3 is
-- malformed: cancelled jobs are deleted, and requests to cancel forgotten.
DROP INDEX {p}jobs_cancelled;
DELETE FROM {p}jobs WHERE state = 4;
DROP INDEX {p}jobs_unknown;
CREATE INDEX {p}jobs_unknown ON {p}jobs (state) WHERE state < 0 OR state > 3;
ALTER TABLE {p}jobs DROP COLUMN cancel_reason;
