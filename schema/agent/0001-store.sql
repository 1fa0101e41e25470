-- 0001-store.sql: the agent's local store (DESIGN.md sections 3 and 4).
--
-- Migrations are append-only: never edit this file once released; add
-- 0002-*.sql instead.  sync/db.c runs each file in one transaction and
-- sets PRAGMA user_version to its number.  Times are Unix milliseconds UTC.

-- Device settings: 'grid' (primary grid code), 'worker' (worker id),
-- 'created_at' (ms), 'device' ... (key/value so later issues add keys
-- without a migration).
CREATE TABLE meta (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- record and change are WITHOUT ROWID tables: the uuid / change_id is the
-- b-tree key itself, so a save touches one b-tree per table instead of a
-- table plus its primary-key index.  Each b-tree touched is one more page
-- written and fsync'd at every commit.
--
-- The current local state of every record the device holds, including
-- tombstones (deleted = 1: kept so the delete can still be sent and so a
-- uuid is never reused).  fields is the record's full JSON object after
-- every local change; rev is the platform revision it is at (0 = never
-- seen by the platform).
CREATE TABLE record (
	uuid TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	form_version INTEGER NOT NULL,
	grid TEXT NOT NULL,
	fields TEXT NOT NULL,
	rev INTEGER NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	author TEXT NOT NULL
) WITHOUT ROWID;
-- No index by type: every index costs each save one more page written and
-- fsync'd, while counting by type for `status` scans the table (about
-- half a second for 100,000 records on the development VM).

-- Changes waiting for, or done with, the trip to the platform.  One row per
-- change_id (UUIDv7), forever: the platform applies each change_id once.
-- fields holds only what THIS change sets (all fields for a new record,
-- JSON null = field cleared); NULL for a delete.
-- state: 0 unsent, 1 batched (in an envelope in flight: never touched
-- again locally), 2 delivered, 3 rejected, 4 quarantined, 5 conflicted.
CREATE TABLE change (
	change_id TEXT PRIMARY KEY,
	uuid TEXT NOT NULL,
	type TEXT NOT NULL,
	form_version INTEGER NOT NULL,
	grid TEXT NOT NULL,
	op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
	base_rev INTEGER NOT NULL,
	fields TEXT,
	reason TEXT,
	author TEXT NOT NULL,
	state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 5),
	batch_seq INTEGER,
	problem TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	CHECK ((op = 'delete') = (fields IS NULL))
) WITHOUT ROWID;
-- At most one unsent change per record: later edits coalesce into it.
CREATE UNIQUE INDEX change_one_unsent ON change(uuid) WHERE state = 0;
CREATE INDEX change_by_state ON change(state, change_id);

-- Append-only local audit: who did what to which record when (no field
-- values: the audit must not become a second copy of personal data).
-- A bulk import writes ONE row (action 'import', detail names the count
-- and the first and last uuid) instead of one row per record.
CREATE TABLE audit (
	id INTEGER PRIMARY KEY,
	at INTEGER NOT NULL,
	action TEXT NOT NULL,
	uuid TEXT,
	type TEXT,
	detail TEXT
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
