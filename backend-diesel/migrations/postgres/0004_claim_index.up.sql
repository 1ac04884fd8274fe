-- The claim reads `jobs_ready` in claim order and stops at its limit. When
-- the statistics were gathered while a queue held no pending job (after a
-- burst was drained, say), the planner expected one pending row and read
-- `jobs_state` (queue, state, …) instead: every pending job of the queue,
-- then a sort, 6 ms a claim with 10,000 pending. `jobs_state` serves
-- counts and the dead-job list, which never ask for pending jobs, so it no
-- longer holds them and the claim has no other index to choose.
DROP INDEX {p}jobs_state;
CREATE INDEX {p}jobs_state ON {p}jobs (queue, state, finished_at) WHERE state <> 0;
