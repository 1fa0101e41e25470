#!/bin/sh
# reconcile-merge.sh - two workers' devices edit the same resident offline:
# disjoint fields merge; the same field is one conflict, visible, resolvable,
# and the resolution reaches both devices through pull.  Review verdicts
# and tasks round-trip; a visit naming a task closes it.  reconcile --check
# is 0 when clean and 1 while a conflict waits.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

AH2="$T_TMP/ag2"
ag2() { "$GRIDAGENT" --home "$AH2" "$@"; }
# field NAME of record U as the device holds it (revealed)
fld() { "$GRIDAGENT" --home "$1" show "$2" --json --reveal |
	"$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["fields"].get(sys.argv[1], "")) if sys.argv[1] != "rev" else print(d["rev"])' "$3"; }

sync_platform || exit 1
sync_enroll "$AH" w001 && sync_enroll "$AH2" w002 ||
	{ fail "enroll two devices of two workers in one grid"; done_testing; exit 1; }
ok "enroll two devices of two workers in one grid"

U=$("$GRIDGEN" --type person --count 1 --seed 7 | ag collect person --json -)
expect_exit 0 "device A syncs the new person" ag sync
expect_exit 0 "device B syncs (pull)" ag2 sync
[ "$(fld "$AH2" "$U" rev)" = 1 ] && ok "B received the person at rev 1" ||
	fail "B received the person at rev 1"
expect_exit 0 "reconcile --check is 0 on a clean run" pf reconcile --check

# Disjoint fields, offline on both.
ag edit "$U" phone=13800138000 >/dev/null
ag2 edit "$U" address=北京市朝阳区幸福路1号 >/dev/null
expect_exit 0 "A syncs its phone edit" ag sync
expect_exit 0 "B syncs its address edit (merged)" ag2 sync
expect_exit 0 "A syncs again" ag sync
for h in "$AH" "$AH2"; do
	[ "$(fld "$h" "$U" phone)" = 13800138000 ] &&
	[ "$(fld "$h" "$U" address)" = 北京市朝阳区幸福路1号 ] &&
	[ "$(fld "$h" "$U" rev)" = 3 ] &&
		ok "disjoint edits merged on $(basename "$h") (rev 3)" ||
		fail "disjoint edits merged on $(basename "$h") (rev 3)"
done
[ "$(pf conflicts --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] &&
	ok "no conflict for disjoint fields" || fail "no conflict for disjoint fields"

# The same field, different values.
ag edit "$U" address=甲地 >/dev/null
ag2 edit "$U" address=乙地 >/dev/null
expect_exit 0 "A syncs address=甲地" ag sync
expect_exit 0 "B syncs address=乙地 (kept as a conflict)" ag2 sync
pf conflicts --json >"$T_TMP/c.json"
"$PY" - "$T_TMP/c.json" <<'PY' && ok "one open conflict on address with both values" || fail "one open conflict on address with both values"
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 1 and c[0]["status"] == "open", c
f = c[0]["fields"]
assert len(f) == 1 and f[0]["field"] == "address", f
assert f[0]["platform"] == "甲地" and f[0]["device"] == "乙地", f
PY
ID=$(json_get "$T_TMP/c.json" 'd[0]["id"]')
expect_exit 1 "reconcile --check is 1 while the conflict waits" pf reconcile --check
grep -q 'conflict(s) to resolve' "$T_TMP/out" && ok "... and says why" ||
	fail "... and says why"
[ "$(fld "$AH2" "$U" address)" = 甲地 ] &&
	ok "B holds the platform's value until resolved" ||
	fail "B holds the platform's value until resolved"
expect_exit 64 "resolve needs --take or --set" pf resolve "$ID"
expect_exit 0 "resolve --take device --by admin1" pf resolve "$ID" --take device --by admin1
expect_exit 73 "a resolved conflict cannot be resolved again" pf resolve "$ID" --take platform
expect_exit 0 "A syncs" ag sync
expect_exit 0 "B syncs" ag2 sync
for h in "$AH" "$AH2"; do
	[ "$(fld "$h" "$U" address)" = 乙地 ] && [ "$(fld "$h" "$U" rev)" = 5 ] &&
		ok "the resolution (rev 5, 乙地) reached $(basename "$h")" ||
		fail "the resolution (rev 5, 乙地) reached $(basename "$h")"
done
pf conflicts --json | grep -q '"resolved_by": "admin1"' &&
	ok "the resolution names its admin" || fail "the resolution names its admin"
expect_exit 0 "reconcile --check is 0 again" pf reconcile --check

# --set resolution and release by field values.
ag edit "$U" address=丙地 >/dev/null
ag2 edit "$U" address=丁地 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ID2=$(pf conflicts --json --open | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
expect_exit 0 "resolve --set address=戊地" pf resolve "$ID2" --set address=戊地
ag sync >/dev/null 2>&1
[ "$(fld "$AH" "$U" address)" = 戊地 ] && ok "an admin's own value reaches A" ||
	fail "an admin's own value reaches A"

# An edit against a delete is a conflict too, never a silent win.
ag delete "$U" --reason 搬离 >/dev/null
ag2 edit "$U" phone=13700137000 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
pf conflicts --json --open >"$T_TMP/c.json"
[ "$(json_get "$T_TMP/c.json" 'd[0]["fields"][0]["rule"]')" = edit_delete ] &&
	ok "an edit against a delete is kept as a conflict (edit_delete)" ||
	fail "an edit against a delete is kept as a conflict (edit_delete)"
expect_exit 0 "resolve it by taking the device's edit (undelete)" \
	pf resolve "$(json_get "$T_TMP/c.json" 'd[0]["id"]')" --take device
ag sync >/dev/null 2>&1
[ "$(ag show "$U" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["deleted"])')" = False ] &&
	[ "$(fld "$AH" "$U" phone)" = 13700137000 ] &&
	ok "the record is back on A with B's edit" ||
	fail "the record is back on A with B's edit"

# Review verdict and task round trip.
expect_exit 0 "review has_issues" pf review "$U" --state has_issues --comment "电话号码不对" --by admin1
expect_exit 64 "review with a bad state" pf review "$U" --state maybe --comment x
T=$(pf task add --worker w001 --kind VISIT --subject "$U" --due 2026-12-01 --title "回访张三")
[ -n "$T" ] && ok "task add prints the task id" || fail "task add prints the task id"
expect_exit 64 "task add with a bad kind" pf task add --worker w001 --kind PARTY --due 2026-12-01 --title x
expect_exit 0 "A syncs" ag sync
ag show "$U" --json >"$T_TMP/show.json"
[ "$(json_get "$T_TMP/show.json" 'd["review"]["state"]')" = has_issues ] &&
	ok "show --json carries the verdict" || fail "show --json carries the verdict"
ag list --json | grep -q '"review":{"state":"has_issues"' && ok "list --json carries it" ||
	fail "list --json carries it"
ag show "$U" | grep -q '^review *has_issues by admin1: 电话号码不对' &&
	ok "show prints the verdict" || fail "show prints the verdict"
ag list 2>/dev/null | grep "$U" | grep -q '\[review: has_issues\]' &&
	ok "list marks the record" || fail "list marks the record"
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'd["reviews"]["has_issues"]')" = 1 ] &&
	[ "$(json_get "$T_TMP/st.json" 'd["tasks"]["open"]')" = 1 ] &&
	ok "status counts the verdict and the open task" ||
	fail "status counts the verdict and the open task"
[ "$(json_get "$T_TMP/st.json" 'd["reference_stale"]')" = "[]" ] &&
	ok "status: reference data in step with the platform's" ||
	fail "status: reference data in step with the platform's"
ag tasks --json >"$T_TMP/t.json"
[ "$(json_get "$T_TMP/t.json" 'd[0]["id"]')" = "$T" ] &&
	[ "$(json_get "$T_TMP/t.json" 'd[0]["title"]')" = 回访张三 ] &&
	ok "gridagent tasks lists it" || fail "gridagent tasks lists it"
# (B pulls first: its last pull was before the task was made, so it
# could not have heard of it either way.)
expect_exit 0 "B syncs after the task was made" ag2 sync
ag2 tasks --json >"$T_TMP/t2.json" 2>"$T_TMP/err"
rc=$?
[ -n "$T" ] && [ "$rc" = 0 ] && [ "$(json_get "$T_TMP/t2.json" 'len(d)')" = 0 ] &&
	ok "B (another worker) does not get A's task" ||
	fail "B (another worker) does not get A's task (exit $rc: $(cat "$T_TMP/t2.json"))"
V=$(ag collect visit kind=HOME_VISIT subject="$U" purpose=INFO_VERIFY outcome=NORMAL \
	place=张三家 started_at=2026-11-20T09:00:00Z task="$T" 2>"$T_TMP/err")
[ -n "$V" ] && ok "a visit naming the task is collected" ||
	{ fail "a visit naming the task is collected"; sed 's/^/# /' "$T_TMP/err"; }
expect_exit 0 "A syncs the visit" ag sync
expect_exit 0 "A syncs again (hears the task closed)" ag sync
ag tasks --json >"$T_TMP/t.json"
[ "$(json_get "$T_TMP/t.json" 'd[0]["status"]')" = done ] &&
	[ "$(json_get "$T_TMP/t.json" 'd[0]["closed_by"]')" = "$V" ] &&
	ok "the visit closed the task" || fail "the visit closed the task"

pf reconcile --json --worker w002 >"$T_TMP/r.json"
[ "$(json_get "$T_TMP/r.json" 'len(d["devices"])')" = 1 ] &&
	[ "$(json_get "$T_TMP/r.json" 'd["devices"][0]["worker"]')" = w002 ] &&
	ok "reconcile --worker filters" || fail "reconcile --worker filters"
[ "$(pf reconcile --json --grid 999 | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["devices"]))')" = 0 ] &&
	ok "reconcile --grid filters" || fail "reconcile --grid filters"

# Heartbeat and pull are believed only with the device's signature.
now=$(($(date +%s) * 1000))
zero=$(printf '%0128d' 0)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	--data '{"unsent":0,"outbox":0,"last_seq":99,"acked_seq":99,"rejected":0,"quarantined":0,"chain_head":"","version":"x","free_bytes":0}' \
	"$PF_URL/v1/devices/$DEV_ID/heartbeat?since=0&t=$now&sig=$zero")
[ "$code" = 401 ] && ok "a forged heartbeat is refused (401)" ||
	fail "a forged heartbeat is refused (401, got $code)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$PF_URL/v1/devices/$DEV_ID/pull?since=0&t=$now&sig=$zero")
[ "$code" = 401 ] && ok "an unsigned pull is refused (401)" ||
	fail "an unsigned pull is refused (401, got $code)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$PF_URL/v1/devices/$DEV_ID/pull")
[ "$code" = 405 ] && ok "pull with another method: 405" || fail "pull with another method: 405 (got $code)"

pf stats --json >"$T_TMP/stats.json"
[ "$(json_get "$T_TMP/stats.json" 'd["workers"]["w001"]["visits"]')" = 1 ] &&
	ok "stats counts the visit for w001" || fail "stats counts the visit for w001"
check "agent stores intact" agent_integrity "$AH"
check "platform store intact" sh -c "[ \"\$(sqlite3 '$PH/platform.db' 'PRAGMA integrity_check')\" = ok ]"
done_testing
