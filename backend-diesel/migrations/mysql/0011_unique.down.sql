DROP TABLE {p}unique_keys;
