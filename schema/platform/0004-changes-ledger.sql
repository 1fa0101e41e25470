-- 0004-changes-ledger.sql - the changes ledger rebuilt for ingest speed
-- (issue 3's end-to-end benchmark; bench/RESULTS.md): the same columns,
-- rules and rows, stored as
--   * one b-tree instead of two (WITHOUT ROWID: the change id is the key,
--     and a row is about a hundred bytes), and
--   * the outcome check written as comparisons: for CHECK (x IN (a list of
--     three or more)) SQLite builds a temporary b-tree of the list on every
--     single-row INSERT, which cost about a tenth of ingesting a record.
--
-- Append-only like every migration; this number is outside the ranges
-- given to the issues (0010-0049).

CREATE TABLE changes_new (
	change_id TEXT PRIMARY KEY,
	batch INTEGER NOT NULL REFERENCES batches (id),
	uuid TEXT NOT NULL,
	outcome TEXT NOT NULL CHECK (outcome = 'applied' OR
		outcome = 'merged' OR outcome = 'conflict' OR
		outcome = 'quarantined'),
	rev INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO changes_new (change_id, batch, uuid, outcome, rev)
	SELECT change_id, batch, uuid, outcome, rev FROM changes;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
