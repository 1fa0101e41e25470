-- 0011-sealed-creation.sql - a new record's creation, once sealed into a
-- batch, waits for the receipt as one narrow row; its change row is
-- written once, by the receipt, already in its final state (issue 3:
-- end-to-end throughput).
--
-- Append-only like every migration.
--
-- Until now the seal wrote each pending creation's change row in state 1
-- (the table, change_inflight and change_by_batch: 15k instructions a
-- record) and the receipt moved it to state 2 (the row rewritten, out of
-- change_inflight: 12k).  From here on the seal moves the creation's
-- pending_creation row here, with the batch's seq, and nothing else; the
-- receipt that delivers the batch writes its change rows in state 2
-- (quarantined, rejected or listed in the results: in state 1 first, then
-- exactly as before) and deletes the rows here.  A row here is the
-- creation's change in state 1 ("batched"): every column but change_id
-- and batch_seq follows from the record row as for pending_creation
-- (0008), and updated_at is the batch's created_at, the time the seal
-- marked it.  Every reader of state 1 counts these rows too (status, the
-- record's "pending" flag), and an edit or delete of the record writes the
-- change row first, in state 1 with its batch (agent/store.c), so that it
-- is never sent twice.
--
-- The outbox row says where its sealed creations are: their uuids lie in
-- [first_creation, last_creation] (NULL: the batch holds none, as every
-- batch sealed before this version).  The receipt reads that range of the
-- primary key, keeping only the rows of its batch: a record saved later
-- under a clock set back can lie inside an older batch's range.
CREATE TABLE sealed_creation (
	uuid TEXT PRIMARY KEY,          -- record.uuid
	change_id TEXT NOT NULL,        -- as it was in pending_creation
	batch_seq INTEGER NOT NULL      -- outbox.seq
) WITHOUT ROWID;
ALTER TABLE outbox ADD COLUMN first_creation TEXT;
ALTER TABLE outbox ADD COLUMN last_creation TEXT;
