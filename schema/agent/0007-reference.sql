-- 0007-reference.sql - reference data fetched from the platform (issue 4
-- item 6): form versions and code tables an admin published, laid over
-- the ones built into the program (agent/reference.c).  Each document is
-- kept byte for byte as published, and only after its digest matched the
-- one the platform's signed feed lists and the whole schema loaded with
-- it.  Rows are in the order the platform published them (a later code
-- table of the same name replaces an earlier one).
--
-- Append-only like every migration.
CREATE TABLE reference_doc (
	id INTEGER PRIMARY KEY,
	digest BLOB NOT NULL UNIQUE,     -- BLAKE2b-256 of doc
	kind TEXT NOT NULL CHECK (kind IN ('form', 'codes')),
	name TEXT NOT NULL,
	version INTEGER NOT NULL,        -- a form's version; 0 for a table
	doc BLOB NOT NULL,
	received_at INTEGER NOT NULL
) STRICT;
