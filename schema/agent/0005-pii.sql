-- 0005-pii.sql - personal data at rest (issue 6): the wrapped data key,
-- the blind index for finding people by id number, and purge stubs.
--
-- Append-only like every migration.

-- The data key (DEK, 32 random bytes) that encrypts every pii field of
-- record.fields and change.fields (agent/crypt.c), never stored in the
-- clear.  At most one row: a home has one DEK.
--   wrap 'passphrase': dek_wrap = nonce(24) || XChaCha20-Poly1305(DEK)
--     under KEK = Argon2id(passphrase, salt, opslimit, memlimit); the
--     limits are stored so a later program can change its defaults.
--   wrap 'keystore': dek_wrap is whatever the embedding app's keystore
--     callback returned (agent/gridagent.h, ag_store_set_keystore).
-- state 'destroyed': dek_wrap was overwritten and removed (too many failed
-- unlocks, or the platform revoked the device); the pii on this device
-- is unreadable for good.  failures counts failed unlocks since the last
-- good one and is committed BEFORE each attempt, so killing the process
-- during the slow key derivation still spends an attempt.
-- session_wrap: the DEK wrapped under a random session key that lives in
-- a file outside the database (agent/unlock.c); NULL when locked.
CREATE TABLE keyring (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	state TEXT NOT NULL DEFAULT 'active'
		CHECK (state IN ('active', 'destroyed')),
	wrap TEXT NOT NULL CHECK (wrap IN ('passphrase', 'keystore')),
	dek_wrap BLOB,
	kdf TEXT,
	salt BLOB,
	opslimit INTEGER,
	memlimit INTEGER,
	failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
	max_failures INTEGER NOT NULL DEFAULT 10 CHECK (max_failures > 0),
	session_wrap BLOB,
	created_at INTEGER NOT NULL,
	destroyed_at INTEGER,
	destroyed_why TEXT,
	CHECK ((state = 'active') = (dek_wrap IS NOT NULL))
);

-- Blind index: tag = BLAKE2b-128 keyed with a subkey of the DEK over the
-- normalized value of an id-number field, so `gridagent find --id-number`
-- and de-duplication work without decrypting every record, while the
-- file alone reveals only which records share a number.  The tag leads
-- the key: one b-tree, one probe per lookup.
CREATE TABLE pii_index (
	tag BLOB NOT NULL CHECK (length(tag) = 16),
	uuid TEXT NOT NULL,
	field TEXT NOT NULL,
	PRIMARY KEY (tag, uuid, field)
) WITHOUT ROWID;

-- A record whose pii was purged after the retention period keeps its
-- row (uuid, type, rev, the non-pii fields) so the ledger still explains
-- every change; purged_at says when.
ALTER TABLE record ADD COLUMN purged_at INTEGER;
