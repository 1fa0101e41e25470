#!/bin/sh
# attach-reconcile.sh - `gridplatform reconcile` shows, per record, the
# attachments expected and present: a record whose photo never arrived is
# an issue for an admin (and fails --check) until the photo arrives.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

jpeg() { { printf '\377\330\377\340'; head -c "$2" /dev/urandom; } >"$1"; }
event() {
	ag collect event category=CM_MANHOLE title=井盖破损 place=鹏城社区 \
		occurred_at=2026-04-01T10:00:00Z urgency=URGENT
}
if ! sync_platform || ! sync_enroll "$AH"; then
	fail "platform and enrolled agent"
	done_testing
	exit 1
fi
jpeg "$T_TMP/a.jpg" 50000
jpeg "$T_TMP/b.jpg" 60000
E1=$(event)
E2=$(event)
ag attach "$E1" "$T_TMP/a.jpg" >/dev/null
HB=$(ag attach "$E2" "$T_TMP/b.jpg")
# The photo of E2 is lost before it is sent: its record arrives, it never.
mv "$AH/attachments/sealed/$HB" "$T_TMP/b.sealed"
expect_exit 65 "sync: the records and one photo go, the lost one cannot" ag sync
ag status --json | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert a["failed"] == 1 and a["done"] == 1 and a["records_waiting"] == 1, a' &&
	ok "status: one attachment failed, one done, one record waiting" ||
	fail "status: one attachment failed, one done, one record waiting"
expect_exit 1 "reconcile --check fails: a record misses its photo" pf reconcile --check
pf reconcile >"$T_TMP/rec"
grep -q "attachments: 2 record(s) expect 2, 1 present; 1 record(s) missing attachments" "$T_TMP/rec" &&
	ok "reconcile counts expected and present" || { fail "reconcile counts expected and present"; sed 's/^/#   /' "$T_TMP/rec" | tail -4; }
grep -q "MISSING $E2 event: $HB" "$T_TMP/rec" && ok "reconcile names the record and the missing hash" ||
	fail "reconcile names the record and the missing hash"
pf reconcile --json | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert a["records"] == 2 and a["expected"] == 2 and a["present"] == 1, a
assert [m["uuid"] for m in a["missing"]] == [sys.argv[1]], a' "$E2" &&
	ok "reconcile --json: attachments.missing" || fail "reconcile --json: attachments.missing"
pf export --format ndjson | "$PY" -c '
import json, sys
got = {}
for l in sys.stdin:
    d = json.loads(l)
    got[d["uuid"]] = d.get("attachments")
assert got[sys.argv[1]] == {"expected": 1, "present": 1}, got
assert got[sys.argv[2]] == {"expected": 1, "present": 0}, got' "$E1" "$E2" &&
	ok "export: attachments expected and present per record" ||
	fail "export: attachments expected and present per record"
for t in "" "--type event"; do
	# shellcheck disable=SC2086
	pf export --format csv $t | "$PY" -c '
import csv, io, sys
rows = list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")))
assert rows[0][-2:] == ["attachments_expected", "attachments_present"], rows[0]
got = {r[0]: r[-2:] for r in rows[1:]}
assert got[sys.argv[1]] == ["1", "1"], got
assert got[sys.argv[2]] == ["1", "0"], got
assert all(len(r) == len(rows[0]) for r in rows), rows' "$E1" "$E2" &&
		ok "export csv ${t:-(all types)}: attachments expected and present columns" ||
		fail "export csv ${t:-(all types)}: attachments expected and present columns"
done
pf export --format csv --type event --headers zh | head -n 1 | grep -q '附件应有,附件已到' &&
	ok "export csv --headers zh: the attachment columns in Chinese" ||
	fail "export csv --headers zh: the attachment columns in Chinese"
# Found again (restored from a backup): it goes, and all is reconciled.
mv "$T_TMP/b.sealed" "$AH/attachments/sealed/$HB"
check "the next sync sends it" ag sync
expect_exit 0 "reconcile --check passes" pf reconcile --check
grep -q "0 record(s) missing attachments" "$T_TMP/out" && ok "... with nothing missing" ||
	fail "... with nothing missing"
# Another device attaches the same photo (sealed with another chunk size,
# so another sealed length): the platform already holds it, and answers
# with a receipt for this device; nothing is stored twice.
A2="$T_TMP/ag2"
sync_enroll "$A2" w002 || fail "enroll a second device"
E5=$("$GRIDAGENT" --home "$A2" collect event category=CM_MANHOLE title=井盖 \
	place=二村 occurred_at=2026-04-01T10:00:00Z urgency=URGENT)
"$GRIDAGENT" --home "$A2" attach "$E5" "$T_TMP/a.jpg" --chunk 4096 >/dev/null &&
	ok "device 2 attaches the same photo" || fail "device 2 attaches the same photo"
check "device 2 syncs" "$GRIDAGENT" --home "$A2" sync
"$GRIDAGENT" --home "$A2" status --json | "$PY" -c '
import json, sys
a = json.load(sys.stdin)["attachments"]
assert a["done"] == 1 and a["records_waiting"] == 0, a' &&
	ok "device 2 holds a receipt for it" || fail "device 2 holds a receipt for it"
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM attachments")" = 2 ] &&
	[ "$(ls "$PH/attachments" | grep -c '^[0-9a-f]\{64\}$')" = 2 ] &&
	ok "the platform still stores it once" || fail "the platform still stores it once"
done_testing
