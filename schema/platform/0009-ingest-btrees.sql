-- 0009-ingest-btrees.sql - fewer b-trees written per ingested record
-- (issue 3's end-to-end benchmark, bench/RESULTS.md "End to end").  The
-- same columns, rules and rows, stored as
--   * revisions without the unique index on change_id: every change id a
--     revision carries is claimed first in the changes ledger, whose key
--     it is (ingest: revision_put writes both in one transaction; a
--     change id found in the ledger is never applied again), or is a
--     fresh UUIDv7 (an admin's revision, platform/admin.c), so the index
--     was a second copy of the ledger's key, written for every revision;
--   * record_attachments kept by the store's code (record_attach in
--     platform/store_sqlite.c, called by every writer of records: ingest
--     and platform/admin.c) instead of the AFTER INSERT and AFTER UPDATE
--     triggers of 0005: the trigger's instr() over every record's fields
--     and its program ran for every record, and a trigger makes each
--     insert a multi-row statement (a statement journal).  The rows are
--     the ones the triggers wrote; the AFTER DELETE trigger stays;
--   * records without records_by_type (type, grid): no query reads it
--     (export walks the records in uuid order, by their key; the counts
--     by type come from device_tally), and it was written for every new
--     record.
--
-- The revisions table is rebuilt with the same rows (and rowids).
--
-- Append-only like every migration.

DROP TRIGGER record_attachments_ins;
DROP TRIGGER record_attachments_upd;

CREATE TABLE revisions_new (
	uuid TEXT NOT NULL,
	rev INTEGER NOT NULL,
	change_id TEXT NOT NULL,
	base_rev INTEGER NOT NULL,
	device_id BLOB NOT NULL,
	batch INTEGER NOT NULL REFERENCES batches (id),
	change TEXT NOT NULL,
	fields TEXT,
	deleted INTEGER NOT NULL,
	applied_at INTEGER NOT NULL,
	by_admin TEXT,
	PRIMARY KEY (uuid, rev)
) STRICT;
INSERT INTO revisions_new (rowid, uuid, rev, change_id, base_rev, device_id,
	batch, change, fields, deleted, applied_at, by_admin)
	SELECT rowid, uuid, rev, change_id, base_rev, device_id, batch, change,
	fields, deleted, applied_at, by_admin FROM revisions;
DROP TABLE revisions;
ALTER TABLE revisions_new RENAME TO revisions;

DROP INDEX records_by_type;
