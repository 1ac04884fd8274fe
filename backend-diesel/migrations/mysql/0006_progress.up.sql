-- How far a running job got, as its command reports it: a fraction from 0
-- to 1 and a note. Written under the lease, cleared by a claim, kept when
-- the job ends done (moved to the done table with the row) or dead. Both
-- tables gain the columns in the same order, so a job still reads the same
-- from either. Nullable columns added last: InnoDB adds them in place
-- (instantly on MariaDB 10.3 and MySQL 8.0.12 and later).
ALTER TABLE {p}jobs ADD COLUMN progress DOUBLE NULL, ADD COLUMN progress_note TEXT NULL;
ALTER TABLE {p}done ADD COLUMN progress DOUBLE NULL, ADD COLUMN progress_note TEXT NULL;
