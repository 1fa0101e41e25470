-- 0007-ingest-bookkeeping.sql - the pull feed and the device tallies
-- written by the platform's code instead of triggers (issue 3's
-- end-to-end benchmark, bench/RESULTS.md "End to end").
--
-- The same rows as before, written by
--   * the store's revision_put (every revision ingest applies) and its
--     feed_record / tally_add operations (an admin's revision, admin.c):
--     one feed row per revision, as the feed_revision trigger wrote it;
--   * ingest, which adds up the tallies of a whole batch in memory and
--     writes each (device, key) once per batch, not twice per record.
-- Triggers on records and revisions made every insert into those tables
-- a multi-row statement (SQLite then keeps a statement journal, a copy of
-- every page the statement touches) and ran their own statements per row:
-- together about a third of ingesting a record.
--
-- The feed table is rebuilt with the same rows and seqs:
--   * seq is a plain INTEGER PRIMARY KEY: feed rows are never deleted, so
--     the next rowid (largest + 1) is what AUTOINCREMENT gave, without its
--     sqlite_sequence write per row;
--   * the kind check written as comparisons: CHECK (x IN (three values))
--     builds a temporary b-tree of the list on every single-row insert;
--   * feed_by_worker indexes only the rows that have a worker (tasks and
--     reviews), not every record's NULL.
-- The triggers of tasks and reviews (rare writes) stay as they were; they
-- are dropped and made again around the rebuild because SQLite checks
-- every trigger's tables when a table is renamed.
--
-- Append-only like every migration.

DROP TRIGGER feed_revision;
DROP TRIGGER tally_record_new;
DROP TRIGGER tally_record_move;
DROP TRIGGER tally_revision;
DROP TRIGGER feed_task_new;
DROP TRIGGER feed_task_update;
DROP TRIGGER feed_review;

CREATE TABLE feed_new (
	seq INTEGER PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind = 'record' OR kind = 'task' OR
		kind = 'review'),
	ref TEXT NOT NULL,
	rev INTEGER NOT NULL DEFAULT 0,
	grid TEXT,
	worker TEXT,
	device_id BLOB,
	own INTEGER NOT NULL DEFAULT 0
);
INSERT INTO feed_new (seq, kind, ref, rev, grid, worker, device_id, own)
	SELECT seq, kind, ref, rev, grid, worker, device_id, own FROM feed;
DROP TABLE feed;
ALTER TABLE feed_new RENAME TO feed;
CREATE INDEX feed_by_grid ON feed (grid, seq);
CREATE INDEX feed_by_worker ON feed (worker, seq) WHERE worker IS NOT NULL;

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
