-- Before this migration a cancelled job was deleted, and any code past 3 is
-- malformed: cancelled jobs are deleted, and requests to cancel forgotten.
DELETE FROM {p}jobs WHERE state = 4;
ALTER TABLE {p}jobs DROP COLUMN cancel_reason;
