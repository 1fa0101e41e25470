-- 0011-sealed-creation.sql - a new record's creation, once sealed into a
-- batch, is one narrow row here whose state is its batch's; the usual
-- receipt writes no change row for it at all (issue 3: end-to-end
-- throughput).
--
-- Append-only like every migration.
--
-- Until now the seal wrote each pending creation's change row in state 1
-- (the table, change_inflight and change_by_batch: 15k instructions a
-- record) and the receipt moved it to state 2 (the row rewritten, out of
-- change_inflight: 12k).  From here on the seal moves the creation's
-- pending_creation row here, with the batch's seq, and nothing else.  A
-- row here is the creation's change, in the state of its batch:
-- * batched (1) while the outbox row is 'sealed';
-- * delivered (2) once it is 'acked' by a receipt that applied every
--   change by fast-forward (no results): the receipt writes only the
--   record's rev (1, in record_rev) and leaves the row here for good.
-- Every other receipt (results listed, a quarantine) and a rejection
-- first write the batch's rows out as the change rows the seal used to
-- write (state 1, updated_at the batch's created_at) and delete them
-- here, then move them on as before: no row here belongs to a rejected or
-- quarantined batch.  Every other column of the change follows from the
-- record row as for pending_creation (0008): op 'upsert', base_rev 0, no
-- fields, the record's type, form version, grid, author and created_at.
--
-- Every reader of a change's state counts these rows in their batch's
-- state: status and the outbox's counts, the record's "pending" flag
-- (get/show, pull's skip), enroll's claim, the retention purge (a
-- delivered creation's record is purged like any other).  An edit or
-- delete of a record whose creation is in flight first writes its change
-- row, batched, with its batch (agent/store.c), so it is never sent
-- twice; one whose creation was delivered leaves the row here alone.
--
-- The outbox row says where its sealed creations are: their uuids lie in
-- [first_creation, last_creation] (NULL: the batch holds none, as every
-- batch sealed before this version).  Readers go batch by batch through
-- that range of the primary key, keeping only the rows of the batch: a
-- record saved later under a clock set back can lie inside an older
-- batch's range.
CREATE TABLE sealed_creation (
	uuid TEXT PRIMARY KEY,          -- record.uuid
	change_id TEXT NOT NULL,        -- as it was in pending_creation
	batch_seq INTEGER NOT NULL      -- outbox.seq
) WITHOUT ROWID;
ALTER TABLE outbox ADD COLUMN first_creation TEXT;
ALTER TABLE outbox ADD COLUMN last_creation TEXT;
