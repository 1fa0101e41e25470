-- 0004-attachments.sql - photos and other attachments (issue 5,
-- docs/PROTOCOL.md section 8).
--
-- The sealed file of an attachment is kept in the agent home as
-- attachments/sealed/HASH (hex of the plaintext's BLAKE2b-256) from the
-- moment it is attached until the platform's signed receipt covers it;
-- a plaintext copy is kept in attachments/plain/HASH only when the worker
-- asked for it (--keep).  The record's "attachments" field names the
-- hashes, so the platform knows what to expect.

-- One row per distinct file (content address): the same photo attached
-- to two records is sealed, stored and uploaded once.
-- state: 'sealed' (waiting for, or in, upload), 'done' (a verified
-- receipt covers it), 'failed' (refused for good by the platform, or its
-- sealed file is gone: retried by an explicit `gridagent sync`, never by
-- --watch on its own, and sealed again if the same file is attached again).  sent: the platform's offset at the last answer
-- (for status: partial uploads).  resent: bytes sent that the platform
-- did not keep (connections cut mid-chunk), for the benchmark.
CREATE TABLE attachment (
	hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
	mime TEXT NOT NULL,
	plain_len INTEGER NOT NULL CHECK (plain_len > 0),
	sealed_len INTEGER NOT NULL CHECK (sealed_len > 0),
	state TEXT NOT NULL DEFAULT 'sealed'
		CHECK (state IN ('sealed', 'done', 'failed')),
	sent INTEGER NOT NULL DEFAULT 0,
	resent INTEGER NOT NULL DEFAULT 0,
	plain_kept INTEGER NOT NULL DEFAULT 0 CHECK (plain_kept IN (0, 1)),
	receipt BLOB,
	created_at INTEGER NOT NULL,
	done_at INTEGER,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT
);
CREATE INDEX attachment_by_state ON attachment(state, created_at);

-- Which record names which attachment.  A record is delivered only when
-- its changes are AND every attachment it names is 'done'.
CREATE TABLE record_attachment (
	uuid TEXT NOT NULL,
	hash BLOB NOT NULL REFERENCES attachment(hash),
	added_at INTEGER NOT NULL,
	PRIMARY KEY (uuid, hash)
) WITHOUT ROWID;
CREATE INDEX record_attachment_by_hash ON record_attachment(hash);
