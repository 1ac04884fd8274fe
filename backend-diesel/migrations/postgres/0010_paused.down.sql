DROP TABLE {p}paused;
DROP FUNCTION {p}paused_notify();
