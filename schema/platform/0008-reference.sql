-- 0008-reference.sql - reference data an admin publishes (issue 4 item 6):
-- `gridplatform reference add FILE` keeps a form version or a code table
-- here, byte for byte as published, beside the ones built into the
-- programs (schema/forms, schema/codes).  A form is never replaced: a new
-- version is added and records keep the version they were collected with.
-- A code table of the same name as an earlier one replaces it (it must
-- keep every code of it).  Devices fetch each document by its digest
-- (platform/pull.c: GET /v1/devices/{id}/reference/{digest}).
--
-- Append-only like every migration.
CREATE TABLE reference (
	id INTEGER PRIMARY KEY,          -- publication order
	digest BLOB NOT NULL UNIQUE,     -- BLAKE2b-256 of doc
	kind TEXT NOT NULL CHECK (kind IN ('form', 'codes')),
	name TEXT NOT NULL,              -- a form's type or a table's name
	version INTEGER NOT NULL,        -- a form's version; 0 for a table
	doc BLOB NOT NULL,               -- the document as published
	published_at INTEGER NOT NULL,
	published_by TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX reference_form_version ON reference (name, version)
	WHERE kind = 'form';
