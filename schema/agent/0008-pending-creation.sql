-- 0008-pending-creation.sql - a new record's creation waits in a small
-- table until the outbox batches it (issues 2 and 6: save latency and
-- bulk import rate).
--
-- Append-only like every migration.
--
-- Since 0006 a creation's change carried no fields of its own: it stood
-- for the record as it is when batched.  It still cost a change row in
-- three b-trees (the table, change_one_unsent, change_unsent), about two
-- thirds of the SQLite work of a bulk-imported record (callgrind: 23k of
-- 37k instructions).  From here on a save of a NEW record writes the
-- record row and one row here (its uuid and the change_id its creation
-- will have), and nothing in `change`.  The row here is the creation's
-- change, unsent: every other column of that change follows from the
-- record row (op 'upsert', base_rev 0, no fields, the record's type,
-- form version, grid, author and created_at).
--
-- The change row is written ("materialized", agent/store.c) when it is
-- first needed, in the same transaction as what needs it, and the row
-- here deleted:
-- * by the outbox, for every pending creation, before it picks what to
--   batch (agent/outbox.c), so batching, receipts and every state after
--   are exactly as before;
-- * by an edit or delete of the record before it was batched, so that
--   coalescing into the unsent change works as before.
-- A record is never changed in between in a way its creation would not
-- send: a pulled platform revision skips a record with a pending change,
-- and an edit materializes first.  Counts of unsent changes (status, the
-- heartbeat) add the rows here.  Creations saved by older programs keep
-- their change rows and are sent as they are.
CREATE TABLE pending_creation (
	uuid TEXT PRIMARY KEY,      -- record.uuid
	change_id TEXT NOT NULL     -- UUIDv7, made at the save
) WITHOUT ROWID;
