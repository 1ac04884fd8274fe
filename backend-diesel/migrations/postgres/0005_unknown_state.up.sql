-- Rows whose state code is none of 0 to 3 (written past outband, by a broken
-- migration or a manual fix) are never claimed; the recovery step moves them
-- to dead. This index holds only them, so that step finds them without
-- reading the table, and it costs nothing to keep up while there are none.
-- Its condition is the recovery statement's word for word (SQLite needs that).
CREATE INDEX {p}jobs_unknown ON {p}jobs (state) WHERE state < 0 OR state > 3;
