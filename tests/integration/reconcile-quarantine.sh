#!/bin/sh
# reconcile-quarantine.sh - quarantine handling: a change whose author is
# not the device's enrolled worker is quarantined with a clear reason and
# its origin; an admin releases one (re-validated, applied as the admin's
# revision, reaching the device) and rejects another with a reason; a
# revoked device's drained batch is listed for a decision.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_platform || exit 1
sync_enroll "$AH" w001 || { fail "enroll"; done_testing; exit 1; }

# The device now claims another worker for its saves.
sqlite3 "$AH/agent.db" "UPDATE meta SET value = 'w999' WHERE key = 'worker'"
collect_people 2 5
sqlite3 "$AH/agent.db" "UPDATE meta SET value = 'w001' WHERE key = 'worker'"
ag sync >/dev/null 2>&1
pf quarantine --json >"$T_TMP/q.json"
"$PY" - "$T_TMP/q.json" <<'PY' && ok "both quarantined: author_mismatch, with worker, device and seq" || fail "both quarantined: author_mismatch, with worker, device and seq"
import json, sys
q = json.load(open(sys.argv[1]))
assert len(q) == 2, q
for x in q:
    assert x["reasons"][0]["rule"] == "author_mismatch", x
    assert x["worker"] == "w001" and x["seq"] == 1 and x["status"] == "open", x
PY
# The device shows the worker which records and why (DESIGN.md section 6):
# show said "synced" for a quarantined record, status only counted them.
UQ=$(json_get "$T_TMP/q.json" 'd[0]["uuid"]')
expect_exit 0 "show a quarantined record" ag show "$UQ"
check "... says quarantined, and why" sh -c 'grep -q "^state  *quarantined$" "$1" &&
	grep -q "^problem  *author: author .w999. is not the worker" "$1"' - "$T_TMP/out"
expect_exit 0 "... and so does show --json" ag show "$UQ" --json
[ "$(json_get "$T_TMP/out" 'd["sync_problem"]["state"] + " " + d["sync_problem"]["problems"][0]["rule"]')" = \
	"quarantined author_mismatch" ] && ok "... (sync_problem)" || fail "... (sync_problem)"
expect_exit 0 "status --json" ag status --json
[ "$(json_get "$T_TMP/out" 'sorted(set(x["state"] + " " + x["problems"][0]["rule"] for x in d["problem_records"])) + [len(d["problem_records"])]')" = \
	"['quarantined author_mismatch', 2]" ] &&
	ok "... lists both in problem_records" || fail "... lists both in problem_records"
# The text status: a line a record, its reasons under it (it was one line
# of JSON).
expect_exit 0 "status (text)" ag status
sed -n '/^problem_records:$/,$p' "$T_TMP/out" >"$T_TMP/pr.txt"
[ "$(grep -c '^  [0-9a-f-]\{36\}  person  quarantined$' "$T_TMP/pr.txt")" = 2 ] &&
	[ "$(grep -c "^    author: author .w999. is not the worker" "$T_TMP/pr.txt")" = 2 ] &&
	grep -q "^  $UQ  person  quarantined\$" "$T_TMP/pr.txt" &&
	ok "... lists each refused record on a line, the reason under it" ||
	{ fail "... lists each refused record on a line, the reason under it"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 1 "reconcile --check is 1 while they wait" pf reconcile --check
Q1=$(json_get "$T_TMP/q.json" 'd[0]["id"]')
Q2=$(json_get "$T_TMP/q.json" 'd[1]["id"]')
expect_exit 64 "reject needs a reason" pf quarantine reject "$Q2"
expect_exit 0 "reject one with a reason" pf quarantine reject "$Q2" --reason "测试数据" --by admin1
expect_exit 65 "release refuses a fix that does not validate" pf quarantine release "$Q1" --set phone=12
check "... naming the field" grep -q "^gridplatform: phone: should be a mobile number" "$T_TMP/err"
expect_exit 0 "release the other after a fix" pf quarantine release "$Q1" --set phone=13912345678 --by admin1
expect_exit 73 "a decided change is not decided twice" pf quarantine release "$Q1"
U=$(json_get "$T_TMP/q.json" 'd[0]["uuid"]')
[ -n "$U" ] && pf export --format ndjson | grep -q "$U" && ok "the released record is on the platform" ||
	fail "the released record is on the platform"
expect_exit 0 "reconcile --check is 0 after the decisions" pf reconcile --check
ag sync >/dev/null 2>&1
[ "$(ag show "$U" --json --reveal | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d["rev"], d["fields"]["phone"])')" = "1 13912345678" ] &&
	ok "the device holds the released record with the admin's fix" ||
	fail "the device holds the released record with the admin's fix"
ag show "$U" >"$T_TMP/show.rel" 2>&1
check "... shown synced: the release superseded the quarantine" \
	grep -q "^state  *synced$" "$T_TMP/show.rel"
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'len(d["problem_records"])')" = 1 ] &&
	ok "... and status lists only the other" || fail "... and status lists only the other"

pf export --type person --format csv --headers zh >"$T_TMP/zh.csv"
head -c 3 "$T_TMP/zh.csv" | od -An -tx1 | grep -q 'ef bb bf' &&
	head -n 1 "$T_TMP/zh.csv" | grep -q '记录编号,类型,网格' &&
	head -n 1 "$T_TMP/zh.csv" | grep -q '公民身份号码' &&
	ok "CSV with Chinese headers (BOM, field labels)" ||
	fail "CSV with Chinese headers (BOM, field labels)"

# A handheld whose clock was reset (a year behind) still heartbeats and
# pulls: signed requests carry the platform's time, not the device's.
U2=$("$GRIDGEN" --type person --count 1 --seed 8 | ag collect person --json -)
ag sync >/dev/null 2>&1
pf review "$U2" --state approved --comment 好 >/dev/null
GRIDAGENT_CLOCK_SKEW_MS=-31536000000 ag sync >/dev/null 2>"$T_TMP/err"
rc=$?
[ $rc -eq 0 ] && [ "$(ag show "$U2" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["review"]["state"])')" = approved ] &&
	ok "a device with a clock a year off still pulls (the verdict arrives)" ||
	{ fail "a device with a clock a year off still pulls (exit $rc)"; sed 's/^/# /' "$T_TMP/err"; }

# Revoke but drain: the drained batch is listed for a decision.
pf revoke "$DEV_ID" >/dev/null
collect_people 1 6
ag sync >/dev/null 2>&1
pf quarantine --json --open >"$T_TMP/q.json"
[ "$(json_get "$T_TMP/q.json" 'd[0]["cause"] + " " + d[0]["device_status"]')" = "revoked revoked" ] &&
	ok "the revoked device's drained change is listed, open" ||
	fail "the revoked device's drained change is listed, open"
expect_exit 1 "reconcile --check is 1 for it" pf reconcile --check
grep -q 'revoked device, drained' "$T_TMP/out" && ok "... saying why" || fail "... saying why"
done_testing
