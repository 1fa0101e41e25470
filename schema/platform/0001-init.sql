-- 0001-init.sql - the platform store: deployment, enrollment tokens,
-- devices and their ledgers, batches with their kept envelopes, records
-- with every revision, conflicts and quarantine.
--
-- Ids are raw 16-byte blobs; hashes and keys are raw blobs; times are Unix
-- milliseconds.  Nothing here is ever deleted by ingest: a record exists
-- only because a kept, device-signed envelope (batches.envelope) says so.

CREATE TABLE meta (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

-- One-time enrollment codes.  The token is kept only until the code is
-- used or found expired (it is the key of the keyed-hash proof), then wiped.
CREATE TABLE enroll_tokens (
	token_id BLOB PRIMARY KEY CHECK (length(token_id) = 16),
	token BLOB CHECK (token IS NULL OR length(token) = 32),
	worker TEXT NOT NULL,
	name TEXT NOT NULL,
	grid TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at INTEGER,
	device_id BLOB
) STRICT;

CREATE TABLE devices (
	device_id BLOB PRIMARY KEY CHECK (length(device_id) = 16),
	device_pk BLOB NOT NULL CHECK (length(device_pk) = 32),
	token_id BLOB NOT NULL,
	worker TEXT NOT NULL,
	name TEXT NOT NULL,
	grid TEXT NOT NULL,
	agent_version TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'revoked')),
	enrolled_at INTEGER NOT NULL,
	revoked_at INTEGER,
	-- the ledger: highest seq seen, hash of that envelope, chain verdict
	last_seq INTEGER NOT NULL DEFAULT 0,
	chain_head BLOB,
	chain_ok INTEGER NOT NULL DEFAULT 1,
	batches INTEGER NOT NULL DEFAULT 0,
	last_contact INTEGER
) STRICT;

-- One row per (device, batch id), forever: the idempotency key.  The
-- envelope is kept byte for byte (non-repudiation, "no phantom"), with the
-- signed receipt and the results text answered for it.
CREATE TABLE batches (
	id INTEGER PRIMARY KEY,
	device_id BLOB NOT NULL REFERENCES devices (device_id),
	batch_id BLOB NOT NULL CHECK (length(batch_id) = 16),
	seq INTEGER NOT NULL,
	prev_hash BLOB NOT NULL,
	envelope_hash BLOB NOT NULL,
	envelope BLOB NOT NULL,
	received_at INTEGER NOT NULL,
	status INTEGER NOT NULL,          -- receipt status: 1 accepted, 2 quarantined
	http_status INTEGER NOT NULL,
	applied INTEGER NOT NULL,
	conflicted INTEGER NOT NULL,
	quarantined INTEGER NOT NULL,
	chain TEXT NOT NULL,              -- 'ok', 'broken' or 'unknown' (seq-1 not here yet)
	receipt BLOB NOT NULL,
	results TEXT NOT NULL,
	UNIQUE (device_id, batch_id)
) STRICT;
CREATE INDEX batches_by_seq ON batches (device_id, seq);

-- The current state of each record.
CREATE TABLE records (
	uuid TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	form_version INTEGER NOT NULL,
	grid TEXT NOT NULL,
	rev INTEGER NOT NULL,
	fields TEXT,                      -- JSON object; NULL when deleted
	deleted INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	author TEXT NOT NULL,
	device_id BLOB NOT NULL,
	batch INTEGER NOT NULL REFERENCES batches (id)
) STRICT;
CREATE INDEX records_by_type ON records (type, grid);

-- Every revision ever applied, with the change that made it and the full
-- fields after it (the base of a later three-way merge).
CREATE TABLE revisions (
	uuid TEXT NOT NULL,
	rev INTEGER NOT NULL,
	change_id TEXT NOT NULL UNIQUE,
	base_rev INTEGER NOT NULL,
	device_id BLOB NOT NULL,
	batch INTEGER NOT NULL REFERENCES batches (id),
	change TEXT NOT NULL,             -- the change line as the device sent it
	fields TEXT,                      -- the record's fields after this revision
	deleted INTEGER NOT NULL,
	applied_at INTEGER NOT NULL,
	PRIMARY KEY (uuid, rev)
) STRICT;

-- Every change id ever processed and what became of it, so that a change
-- seen again (in another batch) is never applied twice.
CREATE TABLE changes (
	change_id TEXT PRIMARY KEY,
	batch INTEGER NOT NULL REFERENCES batches (id),
	uuid TEXT NOT NULL,
	outcome TEXT NOT NULL CHECK (outcome IN
		('applied', 'merged', 'conflict', 'quarantined')),
	rev INTEGER NOT NULL
) STRICT;

-- Changes that could not be applied because the record moved on under
-- another device: both values kept for an admin (or a later merge).
CREATE TABLE conflicts (
	id INTEGER PRIMARY KEY,
	uuid TEXT NOT NULL,
	change_id TEXT NOT NULL,
	device_id BLOB NOT NULL,
	batch INTEGER NOT NULL REFERENCES batches (id),
	base_rev INTEGER NOT NULL,
	current_rev INTEGER NOT NULL,
	change TEXT NOT NULL,
	current_fields TEXT,
	created_at INTEGER NOT NULL,
	status TEXT NOT NULL DEFAULT 'open'
) STRICT;
CREATE INDEX conflicts_by_uuid ON conflicts (uuid);

-- Changes kept but not applied: invalid records (with the reasons) and
-- everything a revoked device sends.
CREATE TABLE quarantine (
	id INTEGER PRIMARY KEY,
	batch INTEGER NOT NULL REFERENCES batches (id),
	device_id BLOB NOT NULL,
	change_id TEXT NOT NULL,
	uuid TEXT NOT NULL,
	type TEXT NOT NULL,
	grid TEXT NOT NULL,
	cause TEXT NOT NULL CHECK (cause IN ('invalid', 'revoked', 'duplicate')),
	change TEXT NOT NULL,
	reasons TEXT NOT NULL,            -- JSON array of {field, rule, message}
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX quarantine_by_device ON quarantine (device_id);
