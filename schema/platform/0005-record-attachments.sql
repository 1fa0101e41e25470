-- 0005-record-attachments.sql - which attachments each record expects,
-- kept at ingest so that reconcile does not parse every record's fields.
--
-- A record names the attachments it expects in its "attachments" field
-- (a JSON array of objects with a "hash", docs/PROTOCOL.md section 8).
-- Triggers keep this index equal to the live records' fields: every
-- writer (ingest, merge, resolve, quarantine release) feeds it without
-- knowing.  The instr() test skips the JSON work for the many records
-- that name no attachment.

CREATE TABLE record_attachments (
	uuid TEXT NOT NULL,
	hash TEXT NOT NULL,               -- lower-case hex, as in the fields
	PRIMARY KEY (uuid, hash)
) WITHOUT ROWID;

-- Joins the hex hash of a record to the stored attachment's blob key.
CREATE INDEX attachments_by_hex ON attachments (lower(hex(hash)));

CREATE TRIGGER record_attachments_ins AFTER INSERT ON records
WHEN new.deleted = 0 AND instr(new.fields, '"attachments"') > 0
BEGIN
	INSERT OR IGNORE INTO record_attachments (uuid, hash)
	SELECT new.uuid, lower(json_extract(j.value, '$.hash'))
	FROM json_each(new.fields, '$.attachments') AS j
	WHERE json_type(j.value, '$.hash') = 'text';
END;

CREATE TRIGGER record_attachments_upd AFTER UPDATE OF fields, deleted
ON records
BEGIN
	DELETE FROM record_attachments WHERE uuid = new.uuid;
	INSERT OR IGNORE INTO record_attachments (uuid, hash)
	SELECT new.uuid, lower(json_extract(j.value, '$.hash'))
	FROM json_each(new.fields, '$.attachments') AS j
	WHERE new.deleted = 0 AND instr(new.fields, '"attachments"') > 0
	  AND json_type(j.value, '$.hash') = 'text';
END;

CREATE TRIGGER record_attachments_del AFTER DELETE ON records
BEGIN
	DELETE FROM record_attachments WHERE uuid = old.uuid;
END;

-- The records already held.
INSERT OR IGNORE INTO record_attachments (uuid, hash)
SELECT r.uuid, lower(json_extract(j.value, '$.hash'))
FROM records AS r, json_each(r.fields, '$.attachments') AS j
WHERE r.deleted = 0 AND instr(r.fields, '"attachments"') > 0
  AND json_type(j.value, '$.hash') = 'text';
