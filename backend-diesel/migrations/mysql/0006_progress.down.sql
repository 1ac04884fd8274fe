ALTER TABLE {p}done DROP COLUMN progress_note, DROP COLUMN progress;
ALTER TABLE {p}jobs DROP COLUMN progress_note, DROP COLUMN progress;
