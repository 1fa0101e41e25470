-- 0006-lean-change.sql - a leaner change table (issues 2 and 6: save
-- latency and bulk import rate).
--
-- Append-only like every migration.
--
-- Every save writes one page per b-tree it touches, and every byte it
-- writes twice (WAL, then checkpoint).  Until now a new record's fields
-- were stored twice (record.fields and change.fields) and a change row
-- sat in five b-trees (the table, change_one_unsent, change_by_state,
-- change_by_batch).  From here on:
--
-- * A CREATION's change carries no fields (fields IS NULL with op
--   'upsert'): it stands for the record's fields as they are in `record`
--   when the outbox batches it.  The record cannot change under it without
--   the edit coalescing into the same unsent change, so "the record as it
--   is now" is exactly what the change sets.  An edit's change still
--   carries only the fields it sets; a delete none.  Rows written by older
--   programs (a creation with its fields) stay as they are and are sent as
--   they are.
-- * Only the unsent changes are indexed for the save path:
--   change_one_unsent (by record, unique: coalescing) and change_unsent
--   (by change_id: the outbox's order).  Batched changes are indexed by
--   batch (change_by_batch, now partial: an unsent change has no batch)
--   and, while in flight, by record (change_inflight: "pending" for
--   get and pull).  Rejected and quarantined changes are counted by the
--   heartbeat through their own small partial indexes.  change_by_state,
--   which held every change forever, is gone: a save touches the table
--   and two small indexes instead of four.
--
-- The table is rebuilt (a CHECK constraint cannot be altered in place);
-- every row is copied unchanged.

CREATE TABLE change_new (
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
	-- A delete carries no fields; an upsert without fields is a
	-- creation that sends the record's current fields.
	CHECK (op = 'upsert' OR fields IS NULL)
) WITHOUT ROWID;

INSERT INTO change_new(change_id, uuid, type, form_version, grid, op,
	base_rev, fields, reason, author, state, batch_seq, problem,
	created_at, updated_at)
SELECT change_id, uuid, type, form_version, grid, op, base_rev, fields,
	reason, author, state, batch_seq, problem, created_at, updated_at
FROM change;

DROP TABLE change;
ALTER TABLE change_new RENAME TO change;

CREATE UNIQUE INDEX change_one_unsent ON change(uuid) WHERE state = 0;
CREATE INDEX change_unsent ON change(change_id) WHERE state = 0;
CREATE INDEX change_inflight ON change(uuid) WHERE state = 1;
CREATE INDEX change_by_batch ON change(batch_seq)
	WHERE batch_seq IS NOT NULL;
CREATE INDEX change_rejected ON change(uuid) WHERE state = 3;
CREATE INDEX change_quarantined ON change(uuid) WHERE state = 4;
