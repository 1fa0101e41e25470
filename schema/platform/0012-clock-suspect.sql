-- 0012-clock-suspect.sql - record revisions whose device times cannot be
-- right (reliability-anchors.md A20; mission-anchors.md 3.9: forms dated
-- January 1970 after a handheld's battery was out).  Such a revision is
-- accepted like any other (the device's seq governs order, never its
-- clock) and flagged here for admins: `reconcile` counts them per device
-- and `export` marks the records that have one.  Nothing is quarantined
-- for its times alone.
--
-- Ingest (platform/store_sqlite.c put_revision) writes a row when the
-- change's created_at or updated_at is before the time floor
-- (GS_TIME_FLOOR_MS, sync/core/util.h: 2026-01-01, no correct clock reads
-- earlier) or more than a day after the batch was received (applied_at).
-- Only flagged revisions have a row: a correct device costs one
-- comparison per record.  Revisions written before this version are not
-- looked at again.
--
-- Append-only like every migration.

CREATE TABLE clock_suspect (
	uuid TEXT NOT NULL,
	rev INTEGER NOT NULL,
	device_id BLOB NOT NULL,
	created_at INTEGER NOT NULL,      -- the device's times, as sent
	updated_at INTEGER NOT NULL,
	received_at INTEGER NOT NULL,     -- the platform's, at the batch
	PRIMARY KEY (uuid, rev)
) STRICT, WITHOUT ROWID;
CREATE INDEX clock_suspect_device ON clock_suspect (device_id);
