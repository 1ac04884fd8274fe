DROP TABLE IF EXISTS {p}ticks;
DROP TABLE IF EXISTS {p}jobs;
DROP FUNCTION IF EXISTS {p}jobs_notify_update();
DROP FUNCTION IF EXISTS {p}jobs_notify();
