#!/bin/sh
# agent-sync-revoke.sh - "revoke but drain": a revoked device's batches
# are verified and kept in the platform's quarantine (never applied, never
# dropped); the device is told with a signed receipt, marks its changes
# quarantined, shows "revoked" in status and exits 77.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

if ! sync_platform || ! sync_enroll "$AH"; then
	fail "platform and enrolled agent"
	done_testing
	exit 1
fi

collect_people 50 31 || fail "collect 50"
expect_exit 0 "sync before revocation" ag sync
expect_exit 0 "the admin revokes the device" pf revoke "$DEV_ID"

ag list --json | uuids_of >"$T_TMP/before"
collect_people 20 32 || fail "collect 20 after revocation"
ag list --json | uuids_of >"$T_TMP/all"
LC_ALL=C comm -13 "$T_TMP/before" "$T_TMP/all" >"$T_TMP/new"
expect_exit 77 "sync of a revoked device exits 77" ag sync
grep -q 'revoked' "$T_TMP/err" && ok "... saying revoked" || fail "... saying revoked"

expect_exit 0 "status --json" ag status --json
cp "$T_TMP/out" "$T_TMP/st"
[ "$(json_get "$T_TMP/st" 'd["device"]["revoked"]')" = True ] &&
	ok "status shows revoked" || fail "status shows revoked"
[ "$(json_get "$T_TMP/st" 'd["changes"]["quarantined"]')" = 20 ] &&
	[ "$(json_get "$T_TMP/st" 'd["changes"]["unsent"]')" = 0 ] &&
	[ "$(json_get "$T_TMP/st" 'd["outbox"]["quarantined"]')" = 1 ] &&
	[ "$(json_get "$T_TMP/st" 'd["outbox"]["sealed"]')" = 0 ] &&
	ok "status: the 20 changes are quarantined, nothing left to send" ||
	fail "status: the 20 changes are quarantined, nothing left to send"
expect_exit 0 "status (text)" ag status
grep -q 'revoked: true' "$T_TMP/out" && ok "text status says revoked: true" ||
	fail "text status says revoked: true"

pf quarantine --json >"$T_TMP/q"
"$PY" -c '
import json, sys
print("\n".join(sorted(q["uuid"] for q in json.load(open(sys.argv[1]))
      if q["device_id"] == sys.argv[2])))' "$T_TMP/q" "$DEV_ID" >"$T_TMP/qu"
cmp -s "$T_TMP/new" "$T_TMP/qu" &&
	ok "the platform's quarantine holds exactly the 20 new records" ||
	fail "the platform's quarantine holds exactly the 20 new records"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/before" "$T_TMP/p" &&
	ok "the main store still holds only the 50 from before" ||
	fail "the main store still holds only the 50 from before"

# Revoke but drain: later saves still go to quarantine; nothing is resent.
collect_people 5 33 || fail "collect 5 more"
expect_exit 77 "a later sync still exits 77" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["quarantined_batches"]')" = 1 ] &&
	[ "$(json_get "$T_TMP/out" 'd["sealed_records"]')" = 5 ] &&
	ok "... draining only the 5 new saves into quarantine" ||
	fail "... draining only the 5 new saves into quarantine"
[ "$(pf quarantine --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 25 ] &&
	ok "the platform's quarantine now holds 25" ||
	fail "the platform's quarantine now holds 25"
expect_exit 77 "and again: nothing left to send, still 77" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["sealed_batches"]')" = 0 ] &&
	[ "$(json_get "$T_TMP/out" 'd["requests"]')" -le 1 ] &&
	ok "... without sending anything" || fail "... without sending anything"
agent_integrity "$AH" && ok "agent store integrity_check ok" ||
	fail "agent store integrity_check ok"

done_testing
