-- 0002-reconcile.sql - reconciliation for admins (issue 4): device
-- heartbeats, per-field merge conflicts, admin decisions on quarantine,
-- review verdicts, tasks, the pull feed, and the per-device tallies that
-- let `reconcile` answer without scanning every record.
--
-- Append-only like every migration.

-- The newest heartbeat of each device: what the device says about itself
-- (signed by its key), kept beside what the platform holds so an admin
-- sees "the device says 152 batches sent, we hold 151".
CREATE TABLE heartbeats (
	device_id BLOB PRIMARY KEY REFERENCES devices (device_id),
	received_at INTEGER NOT NULL,
	device_time INTEGER NOT NULL,
	unsent INTEGER NOT NULL,         -- changes not yet sealed
	outbox INTEGER NOT NULL,         -- sealed batches not yet acked
	last_seq INTEGER NOT NULL,       -- newest seq the device sealed
	acked_seq INTEGER NOT NULL,      -- batches the device holds receipts for
	rejected INTEGER NOT NULL,
	quarantined INTEGER NOT NULL,
	chain_head BLOB,
	version TEXT NOT NULL,
	free_bytes INTEGER NOT NULL,
	report TEXT NOT NULL             -- the signed report as sent
) STRICT;

-- Who made a revision when it was not a device: an admin's resolution or
-- released quarantine (NULL for device changes).
ALTER TABLE revisions ADD COLUMN by_admin TEXT;

-- A conflict's fields: [{field, rule, base, platform, device}], the merged
-- state with the platform's values (what --take platform gives) and the
-- decision.
ALTER TABLE conflicts ADD COLUMN fields TEXT;
ALTER TABLE conflicts ADD COLUMN merged TEXT;
ALTER TABLE conflicts ADD COLUMN merged_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conflicts ADD COLUMN resolved_at INTEGER;
ALTER TABLE conflicts ADD COLUMN resolved_by TEXT;
ALTER TABLE conflicts ADD COLUMN resolution TEXT;
CREATE INDEX conflicts_by_device ON conflicts (device_id, status);

-- An admin's decision on a quarantined change: 'open', 'released' (applied
-- after a fix, re-validated) or 'rejected' (with the reason).
ALTER TABLE quarantine ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE quarantine ADD COLUMN decided_at INTEGER;
ALTER TABLE quarantine ADD COLUMN decided_by TEXT;
ALTER TABLE quarantine ADD COLUMN decision TEXT;

-- Review verdicts on records, newest last.
CREATE TABLE reviews (
	id INTEGER PRIMARY KEY,
	uuid TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('approved', 'has_issues',
	    'rejected')),
	comment TEXT NOT NULL,
	by_admin TEXT NOT NULL,
	worker TEXT NOT NULL,            -- the record's author: who hears it
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX reviews_by_uuid ON reviews (uuid);

-- Tasks sent down to a worker's devices.
CREATE TABLE tasks (
	id TEXT PRIMARY KEY,             -- UUIDv7
	worker TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('VISIT', 'VERIFY_EVENT',
	    'DATA_CHECK')),
	subject TEXT,
	due TEXT NOT NULL,               -- YYYY-MM-DD
	title TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done',
	    'cancelled')),
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	closed_at INTEGER,
	closed_by TEXT                   -- the visit's uuid
) STRICT;
CREATE INDEX tasks_by_worker ON tasks (worker, status);

-- The pull feed: one row per thing a device may need to hear, in the
-- order it happened.  The cursor a device sends is the seq of the last
-- row it applied.  Filled by the triggers below, so every writer (ingest,
-- resolutions, releases, reviews, tasks) feeds it without knowing.
CREATE TABLE feed (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL CHECK (kind IN ('record', 'task', 'review')),
	ref TEXT NOT NULL,               -- record uuid, task id, review id
	rev INTEGER NOT NULL DEFAULT 0,
	grid TEXT,                       -- records: whose grid hears it
	worker TEXT,                     -- tasks, reviews: who hears it
	device_id BLOB,                  -- records: the device that wrote it
	own INTEGER NOT NULL DEFAULT 0   -- 1: a plain fast-forward of that
					 -- device's change (it has it)
);
CREATE INDEX feed_by_grid ON feed (grid, seq);
CREATE INDEX feed_by_worker ON feed (worker, seq);

CREATE TRIGGER feed_revision AFTER INSERT ON revisions
BEGIN
	INSERT INTO feed (kind, ref, rev, grid, device_id, own)
	VALUES ('record', NEW.uuid, NEW.rev,
	    (SELECT grid FROM records WHERE uuid = NEW.uuid), NEW.device_id,
	    NEW.by_admin IS NULL AND NEW.rev = NEW.base_rev + 1);
END;
CREATE TRIGGER feed_task_new AFTER INSERT ON tasks
BEGIN
	INSERT INTO feed (kind, ref, worker) VALUES ('task', NEW.id,
	    NEW.worker);
END;
CREATE TRIGGER feed_task_update AFTER UPDATE OF status ON tasks
BEGIN
	INSERT INTO feed (kind, ref, worker) VALUES ('task', NEW.id,
	    NEW.worker);
END;
CREATE TRIGGER feed_review AFTER INSERT ON reviews
BEGIN
	INSERT INTO feed (kind, ref, worker) VALUES ('review',
	    CAST(NEW.id AS TEXT), NEW.worker);
END;

-- Per-device tallies kept at ingest: current records by type last written
-- by the device ('rec:<type>') and revisions made ('rev').  reconcile
-- reads these instead of counting a million rows per question.
CREATE TABLE device_tally (
	device_id BLOB NOT NULL,
	key TEXT NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (device_id, key)
) STRICT, WITHOUT ROWID;

INSERT INTO device_tally (device_id, key, n)
	SELECT device_id, 'rec:' || type, count(*) FROM records
	GROUP BY device_id, type;
INSERT INTO device_tally (device_id, key, n)
	SELECT device_id, 'rev', count(*) FROM revisions GROUP BY device_id;

CREATE TRIGGER tally_record_new AFTER INSERT ON records
BEGIN
	INSERT INTO device_tally (device_id, key, n)
	VALUES (NEW.device_id, 'rec:' || NEW.type, 1)
	ON CONFLICT (device_id, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tally_record_move AFTER UPDATE OF device_id ON records
	WHEN OLD.device_id <> NEW.device_id
BEGIN
	UPDATE device_tally SET n = n - 1
	WHERE device_id = OLD.device_id AND key = 'rec:' || OLD.type;
	INSERT INTO device_tally (device_id, key, n)
	VALUES (NEW.device_id, 'rec:' || NEW.type, 1)
	ON CONFLICT (device_id, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tally_revision AFTER INSERT ON revisions
BEGIN
	INSERT INTO device_tally (device_id, key, n)
	VALUES (NEW.device_id, 'rev', 1)
	ON CONFLICT (device_id, key) DO UPDATE SET n = n + 1;
END;
