-- 0006-device-keys.sql (issue 6): every Ed25519 key a device has had,
-- keyed by its key id (the envelope header's device_kid picks the key a
-- batch is verified with).  The enrolled key is recorded here at the
-- device's first rekey (prev_kid NULL); each later key names the key that
-- signed it (gs_rekey_sign) and that signature, so the chain can be
-- checked back to enrollment.  last_seq: for a key that is no longer
-- current, the highest batch seq it may sign (what the device had sealed
-- when it rotated); NULL while current.
CREATE TABLE device_keys (
	device_id BLOB NOT NULL REFERENCES devices (device_id),
	kid BLOB NOT NULL CHECK (length(kid) = 8),
	pk BLOB NOT NULL CHECK (length(pk) = 32),
	prev_kid BLOB CHECK (prev_kid IS NULL OR length(prev_kid) = 8),
	sig BLOB CHECK (sig IS NULL OR length(sig) = 64),
	created_at INTEGER NOT NULL,
	last_seq INTEGER,
	PRIMARY KEY (device_id, kid)
) WITHOUT ROWID;
