-- How far a running job got, as its command reports it: a fraction from 0
-- to 1 and a note. Written under the lease, cleared by a claim, kept when
-- the job ends done (moved to the done table with the row) or dead.
-- Nullable, no default: adding them rewrites no row.
ALTER TABLE {p}jobs ADD COLUMN progress REAL;
ALTER TABLE {p}jobs ADD COLUMN progress_note TEXT;
ALTER TABLE {p}done ADD COLUMN progress REAL;
ALTER TABLE {p}done ADD COLUMN progress_note TEXT;
