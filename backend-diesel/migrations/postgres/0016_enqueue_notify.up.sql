-- The statements that insert jobs notify `{p}jobs` themselves (a
-- `pg_notify` in their WHERE clause): outband's only inserts into the table,
-- they wake idle consumers as the insert trigger did, at the commit, for
-- less work at every enqueue than firing a statement trigger.
DROP TRIGGER {p}jobs_insert ON {p}jobs;
DROP FUNCTION {p}jobs_notify();
