DROP TABLE {p}paused;
