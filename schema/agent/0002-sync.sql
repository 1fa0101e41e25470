-- 0002-sync.sql - the agent's side of sync: the device identity made at
-- enrollment, and the outbox of sealed batches.
--
-- Append-only like every migration: later changes go into 0003 and up.

-- The device's identity and what it pinned from the platform at enrollment.
-- At most one row (id = 1): a home is one device.  The row is written in
-- ONE transaction by `gridagent enroll`, so a device is either enrolled
-- with every key pinned or not enrolled at all.
--
-- sign_sk is the Ed25519 secret key (libsodium's 64-byte form) kept in
-- this column, NOT in a separate file, so that the keys and the identity
-- they belong to are committed together.  sk_wrap says how it is stored:
-- 'none' = plain (this migration).  Issue 6 wraps it under a DEK and sets
-- sk_wrap accordingly; readers refuse a wrap they do not know.
CREATE TABLE device (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	device_id BLOB NOT NULL CHECK (length(device_id) = 16),
	deployment BLOB NOT NULL CHECK (length(deployment) = 16),
	platform_url TEXT NOT NULL,
	sign_pk BLOB NOT NULL CHECK (length(sign_pk) = 32),
	sign_sk BLOB NOT NULL,
	sk_wrap TEXT NOT NULL DEFAULT 'none',
	batch_pk BLOB NOT NULL CHECK (length(batch_pk) = 32),
	batch_kid BLOB NOT NULL CHECK (length(batch_kid) = 8),
	receipt_pk BLOB NOT NULL CHECK (length(receipt_pk) = 32),
	worker TEXT,
	grid TEXT,
	-- Limits the platform advertised (enroll answer, refreshed by
	-- /v1/health); the outbox splits batches to fit them.
	max_records INTEGER NOT NULL DEFAULT 1000 CHECK (max_records > 0),
	max_envelope INTEGER NOT NULL DEFAULT 16777216 CHECK (max_envelope > 0),
	max_plain INTEGER NOT NULL DEFAULT 67108864 CHECK (max_plain > 0),
	enrolled_at INTEGER NOT NULL,
	-- Set when the platform answered 403 device_revoked with a valid
	-- signed receipt (never on an unsigned claim).
	revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
	revoked_at INTEGER,
	-- The hash chain: the seq and BLAKE2b-256 of the newest envelope ever
	-- sealed.  Advanced in the same transaction that inserts the outbox
	-- row, so the chain never skips or forks, even if old outbox rows are
	-- purged later.
	last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	chain_head BLOB NOT NULL DEFAULT (zeroblob(32))
		CHECK (length(chain_head) = 32),
	-- The last sync attempt and its outcome, for `status`.
	last_sync_at INTEGER,
	last_sync_result TEXT,
	last_ack_at INTEGER
);

-- One row per sealed batch.  envelope and hash are immutable once
-- written: every upload sends exactly these bytes (never re-sealed), so
-- the platform's idempotency on (device, batch_id) holds.  Rows that are
-- not acked are never deleted.
--
-- state: 'sealed' (waiting for a receipt), 'acked' (verified receipt with
-- status accepted), 'quarantined' (verified receipt with status
-- quarantined: the device was revoked, the platform keeps the data for an
-- admin), 'rejected' (a permanent refusal; every byte kept, reason says
-- why).
CREATE TABLE outbox (
	seq INTEGER PRIMARY KEY CHECK (seq > 0),
	batch_id BLOB NOT NULL UNIQUE CHECK (length(batch_id) = 16),
	envelope BLOB NOT NULL,
	hash BLOB NOT NULL CHECK (length(hash) = 32),
	prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
	record_count INTEGER NOT NULL CHECK (record_count > 0),
	bytes INTEGER NOT NULL,
	plain_bytes INTEGER NOT NULL,
	state TEXT NOT NULL DEFAULT 'sealed'
		CHECK (state IN ('sealed', 'acked', 'quarantined', 'rejected')),
	receipt BLOB,
	results TEXT,
	reason TEXT,
	created_at INTEGER NOT NULL,
	acked_at INTEGER,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_attempt_at INTEGER,
	last_error TEXT
);

CREATE INDEX outbox_by_state ON outbox(state, seq);
CREATE INDEX change_by_batch ON change(batch_seq);
