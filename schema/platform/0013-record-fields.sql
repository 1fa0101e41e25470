-- 0013-record-fields.sql - a record made by one change does not keep its
-- fields a second time, and a run of new records has one feed row
-- (issue 3's end-to-end benchmark, bench/RESULTS.md "End to end").
-- The records row held the record's current fields, and the revision
-- that made them (uuid, rev) holds them too: in its fields
-- column, or, for a record collected as sent (platform 0010), as the
-- "fields" member of its line.  For a collected person that is about 360
-- of the 1,600 bytes it takes in the tables, written twice.
--
-- From this version a records row whose fields are, character for
-- character, its current revision's line's "fields" member (ingest:
-- platform/store_sqlite.c put_revision and the runs of creations, when
-- struct pf_revision fields_in_change) has fields NULL, and its fields
-- are read from that revision (revision_fields, 0010).  Rows written
-- before keep their fields; a deleted record's fields stay NULL as ever
-- (deleted tells the two NULLs apart); an admin's writes (platform/
-- admin.c) keep the fields in the row as before.
--
-- Readers take a record's fields from record_fields, never from
-- records.fields.  record_fields has every column of records.
--
-- And one pull feed row (0007) for a run of collections, not one each
-- (platform/store_sqlite.c feed_flush): a row (and an entry of
-- feed_by_grid) per record was about a tenth of ingesting it, and a
-- pull of the device that sent them walked them all to skip its own.
-- A 'record' row whose ref lists uuids, comma-separated (a uuid has no
-- comma), stands for that many items in that order, each with the row's
-- rev, grid, device_id and own; its seq is the last item's, and the
-- items before it have the seqs before it, which no other row takes (a
-- row of n items is numbered max(seq) + n).  The items and their seqs
-- are those rows of their own had: platform/pull.c rows_add lists them.
-- Rows of one record, as before, stay for everything else.
--
-- Append-only like every migration.

CREATE VIEW record_fields AS
	SELECT r.uuid, r.type, r.form_version, r.grid, r.rev,
		CASE WHEN r.fields IS NOT NULL OR r.deleted THEN r.fields
		ELSE (SELECT v.fields FROM revision_fields v
			WHERE v.uuid = r.uuid AND v.rev = r.rev)
		END AS fields,
		r.deleted, r.created_at, r.updated_at, r.author, r.device_id,
		r.batch
	FROM records r;
