-- 0009-record-rev.sql - a receipt records the platform revisions it
-- brings in a narrow table instead of rewriting every record row
-- (issue 3: end-to-end throughput).
--
-- Append-only like every migration.
--
-- Until now a receipt raised record.rev of every record of the batch: one
-- UPDATE of the wide record row (its fields, ~700 bytes for a person) per
-- record, i.e. about 700 KB of pages into the WAL per 1,000-record batch
-- and the same again at the checkpoint, to change one integer.  From here
-- on the receipt writes (uuid, rev) here, with max() semantics: a row per
-- record of about 45 bytes.
--
-- The platform revision a record is at is max(record.rev, record_rev.rev)
-- (no row here: record.rev), and every reader takes it so (AG_SQL_REV in
-- agent/store.h): the base_rev of the next edit or delete, pull's "is the
-- platform's revision newer" check, get/show, list/export.  record.rev
-- still holds what a pull wrote (a pull applies a revision only when it
-- is at least the one above, so it never lowers it) and what older
-- programs wrote; it is never lowered, nor is a row here.
CREATE TABLE record_rev (
	uuid TEXT PRIMARY KEY,          -- record.uuid
	rev INTEGER NOT NULL CHECK (rev > 0)
) WITHOUT ROWID;
