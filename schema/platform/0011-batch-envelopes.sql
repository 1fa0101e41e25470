-- 0011-batch-envelopes.sql - a batch's envelope in a table of its own
-- (issue 3's end-to-end benchmark, bench/RESULTS.md "End to end").  The
-- batches row held the envelope (about 125 KB for a full batch) before
-- the columns its outcome fills in (status, counts, chain, receipt,
-- results), and SQLite writes a row whole: finishing each batch wrote
-- the envelope's 31 pages a second time, and every look at a batch's
-- stored receipt read them all to reach the columns after it.  From this
-- version the envelope is in batch_envelopes, keyed by the batch row's
-- id, written once when the batch arrives and never changed; the batches
-- row keeps the rest, as before.  Every batches row has its envelope
-- (ingest writes both in the batch's transaction).
--
-- Append-only like every migration.

CREATE TABLE batch_envelopes (
	batch INTEGER PRIMARY KEY REFERENCES batches (id),
	envelope BLOB NOT NULL
) STRICT;
INSERT INTO batch_envelopes (batch, envelope) SELECT id, envelope FROM batches;
ALTER TABLE batches DROP COLUMN envelope;
