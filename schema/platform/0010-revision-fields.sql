-- 0010-revision-fields.sql - a new record's revision does not keep its
-- fields a second time (issue 3's end-to-end benchmark, bench/RESULTS.md
-- "End to end").  A revision kept the change as the device sent it (its
-- canonical line) and the record's fields after it; for a record made by
-- the change alone (a collection) those fields are the line's own
-- "fields" member, character for character, and were written twice:
-- about 500 of the 2,400 bytes a collected person takes in the database.
-- From this version such a revision's fields column is NULL (ingest:
-- platform/store_sqlite.c create_put), and its fields are read from its
-- line.  Revisions written before keep their fields; a deleted
-- revision's fields stay NULL as ever.
--
-- Readers take a revision's fields from revision_fields, never from
-- revisions.fields.  The line is the canonical encoding (docs/PROTOCOL.md
-- section 2): "fields" is its last member, so the object runs from after
-- the first ,"fields": to the line's closing brace (a JSON string cannot
-- hold ," unescaped, so no value before it can contain that text).
--
-- Append-only like every migration.

CREATE VIEW revision_fields AS
	SELECT uuid, rev, change_id, base_rev, device_id, batch, deleted,
		applied_at, by_admin,
		CASE WHEN fields IS NOT NULL OR deleted THEN fields
		ELSE substr(change, instr(change, ',"fields":') + 10,
			length(change) - instr(change, ',"fields":') - 10)
		END AS fields
	FROM revisions;
