-- A statement on one job (`WHERE id = ? AND state = 1`, `... AND state = 0`)
-- also implies a partial index's `WHERE state = …`, and a generic plan may
-- then scan that whole index, dead entries included, instead of the primary
-- key: completions slowed down as jobs piled up. Each partial index now also
-- requires a column only its own statements constrain (the claim's
-- `run_at <= now`, recovery's `deadline <= now`), so one-job statements
-- always go through the primary key.
DROP INDEX {p}jobs_ready;
CREATE INDEX {p}jobs_ready ON {p}jobs (queue, priority DESC, id) WHERE state = 0 AND run_at IS NOT NULL;
DROP INDEX {p}jobs_lease;
CREATE INDEX {p}jobs_lease ON {p}jobs (deadline) WHERE state = 1 AND deadline IS NOT NULL;
