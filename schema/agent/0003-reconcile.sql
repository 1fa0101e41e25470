-- 0003-reconcile.sql - what the platform sends down (issue 4): tasks for
-- the worker and review verdicts on the worker's records.  The pull
-- cursor and the reference-data versions live in meta ('pull_cursor',
-- 'pull_at', 'reference').
--
-- Append-only like every migration.

-- Tasks assigned to this device's worker, as the platform last said.
CREATE TABLE task (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	subject TEXT,
	due TEXT NOT NULL,
	title TEXT NOT NULL,
	status TEXT NOT NULL,            -- 'open', 'done', 'cancelled'
	created_at INTEGER NOT NULL,
	closed_by TEXT,                  -- the visit that closed it
	received_at INTEGER NOT NULL
);

-- The newest review verdict on each record.
CREATE TABLE review (
	uuid TEXT PRIMARY KEY,
	state TEXT NOT NULL,             -- 'approved', 'has_issues', 'rejected'
	comment TEXT NOT NULL,
	by TEXT NOT NULL,
	at INTEGER NOT NULL,
	received_at INTEGER NOT NULL
);
