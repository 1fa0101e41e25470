-- 0010-outbox-envelope.sql - a sealed batch's bytes in a table of their
-- own (issue 3's end-to-end benchmark, bench/RESULTS.md "End to end").
-- The outbox row held the envelope (about 125 KB for a full batch) beside
-- the columns an upload and its receipt change (attempts, state, receipt,
-- results, acked_at, ...), and SQLite writes a row whole: each receipt
-- wrote the envelope's 31 pages twice more (two UPDATEs), and the
-- checkpoint copied them again, 25 MB a 100,000-record sync.  From this
-- version the envelope is in outbox_envelope, keyed by the batch's seq,
-- written once by the seal and never changed; the outbox row keeps the
-- rest, as before.  Every outbox row has its envelope (agent/outbox.c
-- writes both in the seal's transaction).
--
-- Append-only like every migration.

CREATE TABLE outbox_envelope (
	seq INTEGER PRIMARY KEY CHECK (seq > 0),
	envelope BLOB NOT NULL
);
INSERT INTO outbox_envelope (seq, envelope) SELECT seq, envelope FROM outbox;
ALTER TABLE outbox DROP COLUMN envelope;
