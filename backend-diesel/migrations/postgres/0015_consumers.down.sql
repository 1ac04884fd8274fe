DROP TABLE {p}consumers;
