#!/bin/sh
# agent-migrate-lean.sh - a store written by the program before agent
# migration 0006 (a creation's change carrying its fields, the change
# table under five b-trees) opens, is migrated, and syncs exactly once:
# unsent creations, an edit of a delivered record, a delete, an edit
# folded into an unsent creation.
#
# The old store is made from a new one: its change table is put back the
# way 0001/0002 made it, with every creation's fields written into its
# change as the old program wrote them, and user_version set back to 5.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

DB="$AH/agent.db"
q() { sqlite3 "$DB" "$1"; }

sync_ready "platform and device"

# Three records delivered (rev 1 on the platform).
collect_people 3 61 || fail "collect 3"
expect_exit 0 "first sync" ag sync
set -- $(ag list --json | uuids_of)
A=$1 B=$2 C=$3
# Unsent changes of every kind.
collect_people 2 62 || fail "collect 2 more"
set -- $(ag list --json | uuids_of)
D=$4 E=$5
expect_exit 0 "edit a delivered record" ag edit "$A" note=edited-after-sync
expect_exit 0 "delete a delivered record" ag delete "$B" --reason duplicate
expect_exit 0 "edit an unsent creation" ag edit "$D" note=folded
# (E's creation waits in pending_creation: schema/agent/0008.)
[ "$(q "SELECT count(*) FROM change WHERE state = 0")" = 3 ] &&
	[ "$(q "SELECT uuid FROM pending_creation")" = "$E" ] &&
	ok "four unsent changes" || fail "four unsent changes"

# Back to the schema and rows of 0005.
sqlite3 "$DB" >"$T_TMP/old.out" 2>&1 <<'EOF' || fail "make the old store"
BEGIN;
-- Every creation had a change row before 0008.
INSERT INTO change(change_id, uuid, type, form_version, grid, op, base_rev,
	fields, reason, author, state, created_at, updated_at)
	SELECT p.change_id, r.uuid, r.type, r.form_version, r.grid, 'upsert',
	0, NULL, NULL, r.author, 0, r.created_at, r.created_at
	FROM pending_creation AS p JOIN record AS r ON r.uuid = p.uuid;
DROP TABLE pending_creation;
-- ... and every sealed creation, batched or delivered with its batch
-- (0011-sealed-creation.sql).
INSERT INTO change(change_id, uuid, type, form_version, grid, op, base_rev,
	fields, reason, author, state, batch_seq, created_at, updated_at)
	SELECT s.change_id, r.uuid, r.type, r.form_version, r.grid, 'upsert',
	0, NULL, NULL, r.author, CASE o.state WHEN 'acked' THEN 2 ELSE 1 END,
	s.batch_seq, r.created_at,
	CASE o.state WHEN 'acked' THEN o.acked_at ELSE o.created_at END
	FROM sealed_creation AS s JOIN record AS r ON r.uuid = s.uuid
	JOIN outbox AS o ON o.seq = s.batch_seq;
-- A creation delivered with its batch is at rev 1 by that alone
-- (0012-delivered-rev.sql); the old program wrote it into record.rev.
UPDATE record SET rev = 1 WHERE rev = 0 AND uuid IN (SELECT s.uuid
	FROM sealed_creation AS s JOIN outbox AS o ON o.seq = s.batch_seq
	WHERE o.state = 'acked');
DROP TABLE sealed_creation;
ALTER TABLE outbox DROP COLUMN first_creation;
ALTER TABLE outbox DROP COLUMN last_creation;
CREATE TABLE change_old (
	change_id TEXT PRIMARY KEY,
	uuid TEXT NOT NULL,
	type TEXT NOT NULL,
	form_version INTEGER NOT NULL,
	grid TEXT NOT NULL,
	op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
	base_rev INTEGER NOT NULL,
	fields TEXT,
	reason TEXT,
	author TEXT NOT NULL,
	state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 5),
	batch_seq INTEGER,
	problem TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	CHECK ((op = 'delete') = (fields IS NULL))
) WITHOUT ROWID;
INSERT INTO change_old SELECT c.change_id, c.uuid, c.type, c.form_version,
	c.grid, c.op, c.base_rev,
	CASE WHEN c.op = 'upsert' THEN coalesce(c.fields, r.fields) END,
	c.reason, c.author, c.state, c.batch_seq, c.problem, c.created_at,
	c.updated_at
	FROM change AS c JOIN record AS r ON r.uuid = c.uuid;
DROP TABLE change;
ALTER TABLE change_old RENAME TO change;
CREATE UNIQUE INDEX change_one_unsent ON change(uuid) WHERE state = 0;
CREATE INDEX change_by_state ON change(state, change_id);
CREATE INDEX change_by_batch ON change(batch_seq);
-- What migrations after 0006 made (0007-reference.sql; 0008 above;
-- 0009-record-rev.sql: the old program kept the revs in record.rev).
DROP TABLE reference_doc;
UPDATE record SET rev = max(rev, (SELECT rr.rev FROM record_rev AS rr
	WHERE rr.uuid = record.uuid))
	WHERE uuid IN (SELECT uuid FROM record_rev);
DROP TABLE record_rev;
-- 0010-outbox-envelope.sql: the old program kept each envelope in its
-- outbox row.
ALTER TABLE outbox ADD COLUMN envelope BLOB;
UPDATE outbox SET envelope = (SELECT e.envelope FROM outbox_envelope AS e
	WHERE e.seq = outbox.seq);
DROP TABLE outbox_envelope;
PRAGMA user_version = 5;
COMMIT;
EOF
[ "$(q "PRAGMA user_version")" = 5 ] &&
	[ "$(q "SELECT count(*) FROM change WHERE fields IS NULL")" = 1 ] &&
	ok "an old store: every upsert carries its fields" ||
	fail "an old store: every upsert carries its fields"
q "SELECT change_id, uuid, op, base_rev, fields, state FROM change
	ORDER BY change_id" >"$T_TMP/before"

expect_exit 0 "the new program opens it (status)" ag status --json
[ "$(q "PRAGMA user_version")" -ge 6 ] && ok "... and migrates it" ||
	fail "... and migrates it"
[ "$(q "SELECT count(*) FROM outbox AS o JOIN outbox_envelope AS e
	ON e.seq = o.seq WHERE length(e.envelope) = o.bytes")" = \
	"$(q "SELECT count(*) FROM outbox")" ] &&
	[ "$(q "SELECT count(*) FROM outbox")" -gt 0 ] &&
	ok "... each batch's envelope moved to outbox_envelope" ||
	fail "... each batch's envelope moved to outbox_envelope"
q "SELECT change_id, uuid, op, base_rev, fields, state FROM change
	ORDER BY change_id" >"$T_TMP/after"
# (Two queries that failed compare equal: the rows are A's, B's and D's
# unsent changes, E's creation and the three delivered ones.)
[ "$(wc -l <"$T_TMP/before")" -eq 7 ] && cmp -s "$T_TMP/before" "$T_TMP/after" &&
	ok "every change row kept as it was" ||
	fail "every change row kept as it was"
[ "$(q "SELECT count(*) FROM sqlite_schema WHERE name = 'change_by_state'")" = 0 ] &&
	[ "$(q "SELECT count(*) FROM sqlite_schema WHERE name = 'change_unsent'")" = 1 ] &&
	ok "the lean indexes replace the old ones" ||
	fail "the lean indexes replace the old ones"
ag show "$C" --json >"$T_TMP/out" 2>/dev/null
[ "$(json_get "$T_TMP/out" 'd["rev"]')" = 1 ] &&
	ok "a delivered record is still at rev 1" ||
	fail "a delivered record is still at rev 1"
[ "$(q "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok" ||
	fail "integrity_check ok"

# A new save after the migration: the new form, beside the old rows.
F=$(ag collect person name=新人 pop_type=REGISTERED \
	id_number=440307198503151230 address=深圳市大鹏新区葵涌街道1号) ||
	fail "collect after the migration"
[ "$(q "SELECT count(*) FROM change WHERE uuid = '$F'")" = 0 ] &&
	[ "$(q "SELECT count(*) FROM pending_creation WHERE uuid = '$F'")" = 1 ] &&
	ok "a new creation waits in pending_creation, no change row" ||
	fail "a new creation waits in pending_creation, no change row"
expect_exit 0 "edit an old-style unsent creation" ag edit "$E" note=late

expect_exit 0 "sync after the migration" ag sync
[ "$(q "SELECT count(*) FROM change WHERE state <> 2")" = 0 ] &&
	[ "$(q "SELECT count(*) FROM pending_creation")" = 0 ] &&
	[ "$(q "SELECT count(*) FROM sealed_creation AS s JOIN outbox AS o
		ON o.seq = s.batch_seq WHERE o.state <> 'acked'")" = 0 ] &&
	ok "every change delivered" || fail "every change delivered"
pf export --format ndjson >"$T_TMP/pf.ndjson"
"$PY" - "$T_TMP/pf.ndjson" "$A" "$B" "$C" "$D" "$E" "$F" >"$T_TMP/py.out" 2>&1 <<'EOF'
import json, sys
recs = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        recs[r["uuid"]] = r
a, b, c, d, e, f = sys.argv[2:]
bad = []
if recs[a]["fields"].get("note") != "edited-after-sync": bad.append("A note")
if b in recs and not recs[b].get("deleted"): bad.append("B not deleted")
if c not in recs: bad.append("C missing")
if recs[d]["fields"].get("note") != "folded": bad.append("D note")
if recs[e]["fields"].get("note") != "late": bad.append("E note")
if recs[f]["fields"].get("name") != "新人": bad.append("F name")
for u in (d, e, f):
    if "id_number" not in recs[u]["fields"]: bad.append(u + " id_number")
print(" ".join(bad) or "ok")
EOF
[ "$(cat "$T_TMP/py.out")" = ok ] && ok "the platform holds what the device saved" ||
	fail "the platform holds what the device saved: $(cat "$T_TMP/py.out")"
$PY "$GS_TOP/tests/checker/gscheck.py" --quiet --quiescent \
	--platform "$PH/platform.db" --agent "$DB" >"$T_TMP/check" 2>&1 &&
	ok "gscheck: no violation" || fail "gscheck: $(tail -n 3 "$T_TMP/check")"
before=$(q "SELECT count(*) FROM outbox")
expect_exit 0 "a second sync" ag sync
[ "$(q "SELECT count(*) FROM outbox")" = "$before" ] &&
	ok "... sends nothing again (exactly once)" ||
	fail "... sends nothing again (exactly once)"

done_testing
