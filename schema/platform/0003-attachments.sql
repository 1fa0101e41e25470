-- 0003-attachments.sql - sealed attachments (issue 5, docs/PROTOCOL.md
-- section 8).
--
-- The sealed files themselves live under the platform home in
-- attachments/HASH (complete, verified) and attachments/partial/ (uploads
-- in progress); the file is the truth and this table its index.  A record
-- names the attachments it expects in its "attachments" field.

-- One row per stored attachment, keyed by the plaintext's BLAKE2b-256
-- (the content address): the same photo sent twice is stored once.
CREATE TABLE attachments (
	hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
	device_id BLOB NOT NULL,          -- the device whose upload completed it
	plain_len INTEGER NOT NULL CHECK (plain_len > 0),
	sealed_len INTEGER NOT NULL CHECK (sealed_len > 0),
	chunk_size INTEGER NOT NULL,
	created_at INTEGER NOT NULL,      -- sealed at (device clock)
	received_at INTEGER NOT NULL
) STRICT;

-- Every admin action that opens an attachment: who, when, what, where to.
-- Written before the plaintext is, append-only.
CREATE TABLE attachment_access (
	id INTEGER PRIMARY KEY,
	hash BLOB NOT NULL,
	at INTEGER NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT
) STRICT;
CREATE TRIGGER attachment_access_no_update BEFORE UPDATE ON attachment_access
BEGIN
	SELECT RAISE(ABORT, 'attachment_access is append-only');
END;
CREATE TRIGGER attachment_access_no_delete BEFORE DELETE ON attachment_access
BEGIN
	SELECT RAISE(ABORT, 'attachment_access is append-only');
END;
