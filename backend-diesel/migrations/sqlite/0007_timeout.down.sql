ALTER TABLE {p}done DROP COLUMN timeout_ms;
ALTER TABLE {p}jobs DROP COLUMN timeout_ms;
