#!/bin/sh
# reconcile-release.sh - releasing a quarantined change goes through the
# same three-way merge as ingest: when the record moved on while the
# change waited (another worker's device edited it), disjoint fields merge
# and the same field becomes an open conflict with both values; the other
# worker's edit is never overwritten.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

AH2="$T_TMP/ag2"
ag2() { "$GRIDAGENT" --home "$AH2" "$@"; }
# pf_field U NAME: the platform's current value of field NAME of U
pf_field() { pf export --format ndjson | "$PY" -c '
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    if d["uuid"] == sys.argv[1]:
        print(d["rev"] if sys.argv[2] == "rev" else d["fields"].get(sys.argv[2], ""))' "$1" "$2"; }
# quarantine A's next edit: it claims another worker
edit_as_stranger() {
	sqlite3 "$AH/agent.db" "UPDATE meta SET value = 'w999' WHERE key = 'worker'"
	ag edit "$@" >/dev/null
	sqlite3 "$AH/agent.db" "UPDATE meta SET value = 'w001' WHERE key = 'worker'"
	ag sync >/dev/null 2>&1
}
open_q() { pf quarantine --json --open | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'; }

sync_platform || exit 1
sync_enroll "$AH" w001 && sync_enroll "$AH2" w002 ||
	{ fail "enroll two devices"; done_testing; exit 1; }
U=$("$GRIDGEN" --type person --count 1 --seed 11 | ag collect person --json -)
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
[ "$(pf_field "$U" rev)" = 1 ] && ok "the person is on the platform at rev 1" ||
	fail "the person is on the platform at rev 1"

# Disjoint: A's phone edit waits in quarantine while B edits the address.
edit_as_stranger "$U" phone=13800138000
Q=$(open_q)
ag2 edit "$U" address=北京市朝阳区幸福路1号 >/dev/null
ag2 sync >/dev/null 2>&1
[ "$(pf_field "$U" rev)" = 2 ] && ok "B's address edit applied (rev 2)" ||
	fail "B's address edit applied (rev 2)"
expect_exit 0 "release A's phone edit" pf quarantine release "$Q" --by admin1
[ "$(pf_field "$U" phone)" = 13800138000 ] &&
	[ "$(pf_field "$U" address)" = 北京市朝阳区幸福路1号 ] &&
	[ "$(pf_field "$U" rev)" = 3 ] &&
	ok "disjoint fields merged: A's phone and B's address (rev 3)" ||
	fail "disjoint fields merged: A's phone and B's address (rev 3)"

# The same field: A's address edit waits; B sets the address again.
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
edit_as_stranger "$U" address=甲地
Q=$(open_q)
ag2 edit "$U" address=乙地 >/dev/null
ag2 sync >/dev/null 2>&1
expect_exit 0 "release A's address edit" pf quarantine release "$Q" --by admin1
grep -q 'released into a conflict' "$T_TMP/out" && ok "... says it became a conflict" ||
	fail "... says it became a conflict"
[ "$(pf_field "$U" address)" = 乙地 ] &&
	ok "B's address is not overwritten by the release" ||
	fail "B's address is not overwritten by the release (now $(pf_field "$U" address))"
pf conflicts --json --open >"$T_TMP/c.json"
"$PY" - "$T_TMP/c.json" <<'PY' && ok "one open conflict on address with both values" || fail "one open conflict on address with both values"
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 1, c
f = c[0]["fields"]
assert len(f) == 1 and f[0]["field"] == "address", f
assert f[0]["platform"] == "乙地" and f[0]["device"] == "甲地", f
PY
pf quarantine --json | "$PY" -c 'import json,sys; q=[x for x in json.load(sys.stdin) if x["id"] == int(sys.argv[1])][0]; assert q["status"] == "released", q' "$Q" &&
	ok "the quarantined change is decided (released)" ||
	fail "the quarantined change is decided (released)"
expect_exit 0 "the conflict resolves (--take device)" \
	pf resolve "$(json_get "$T_TMP/c.json" 'd[0]["id"]')" --take device --by admin1
[ "$(pf_field "$U" address)" = 甲地 ] && ok "the admin's choice applied" ||
	fail "the admin's choice applied"
expect_exit 0 "reconcile --check is 0 after the decisions" pf reconcile --check
done_testing
