#!/bin/sh
# agent-sync-revoke.sh - "revoke but drain": a revoked device's batches
# are verified and kept in the platform's quarantine (never applied, never
# dropped); the device is told with a signed receipt, marks its changes
# quarantined, shows "revoked" in status and exits 77, and then destroys
# its data key (issue 6).
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready

collect_people 50 31 || fail "collect 50"
# Ids typed on a command line in upper case are taken and made lower case
# (people type them; the stores and the wire spell them in lower case):
# show and edit did not find the record, review did not either, and a
# task's subject was kept in upper case, a record no device holds.
U=$(ag list --json | uuids_of | head -n 1)
UU=$(printf '%s' "$U" | tr a-f A-F)
expect_exit 0 "show UUID in upper case" ag show "$UU" --json
grep -q "\"uuid\":\"$U\"" "$T_TMP/out" && ok "... shows the record" ||
	fail "... shows the record"
expect_exit 0 "edit UUID in upper case" ag edit "$UU" address=北京市东城区1号
[ "$(cat "$T_TMP/out")" = "$U" ] && ok "... prints the uuid in lower case" ||
	fail "... prints the uuid in lower case ($(cat "$T_TMP/out"))"
expect_exit 0 "sync before revocation" ag sync
expect_exit 0 "review UUID in upper case" pf review "$UU" --state has_issues \
	--comment 地址不全
expect_exit 0 "task add --subject UUID in upper case" pf task add --worker w001 \
	--kind VISIT --subject "$UU" --due 2026-12-01 --title 回访
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM tasks WHERE subject = '$U'")" = 1 ] &&
	ok "... kept in lower case" || fail "... kept in lower case"
expect_exit 0 "the admin revokes the device (its id typed in upper case)" \
	pf revoke "$(printf '%s' "$DEV_ID" | tr a-f A-F)"
grep -q "^revoked $DEV_ID " "$T_TMP/out" && ok "... naming it in lower case" ||
	fail "... naming it in lower case"

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
[ "$(wc -l <"$T_TMP/new")" -eq 20 ] && cmp -s "$T_TMP/new" "$T_TMP/qu" &&
	ok "the platform's quarantine holds exactly the 20 new records" ||
	fail "the platform's quarantine holds exactly the 20 new records"
platform_uuids "$T_TMP/p"
[ "$(wc -l <"$T_TMP/before")" -eq 50 ] && cmp -s "$T_TMP/before" "$T_TMP/p" &&
	ok "the main store still holds only the 50 from before" ||
	fail "the main store still holds only the 50 from before"

# Revoke but drain, then crypto-shred (issue 6): what was sealed went to
# quarantine; then the device destroyed its data key, so no later save
# can be made and nothing is resent.
[ "$(json_get "$T_TMP/st" 'd["pii"]["destroyed"]')" = True ] &&
	ok "status: the data key is destroyed after revocation" ||
	fail "status: the data key is destroyed after revocation"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM keyring WHERE dek_wrap IS NULL AND session_wrap IS NULL")" = 1 ] &&
	ok "... no wrapped key is left in the store" ||
	fail "... no wrapped key is left in the store"
expect_exit 77 "a save after revocation is refused (77)" ag collect person name=x
# Not "locked: run gridagent unlock", which cannot help.
grep -q 'data key was destroyed' "$T_TMP/err" && ! grep -q 'run gridagent unlock' "$T_TMP/err" &&
	ok "... saying the key was destroyed, not to unlock" ||
	{ fail "... saying the key was destroyed, not to unlock"; sed 's/^/#   /' "$T_TMP/err"; }
expect_exit 77 "unlock cannot bring it back (77)" ag unlock --passphrase-file "$AG_PASS"
grep -q 'destroyed' "$T_TMP/err" && ok "... saying the key was destroyed" ||
	fail "... saying the key was destroyed"
expect_exit 0 "masked listing still works" ag list
[ "$(pf quarantine --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 20 ] &&
	ok "the platform's quarantine holds the 20" ||
	fail "the platform's quarantine holds the 20"
expect_exit 77 "and again: nothing left to send, still 77" ag sync --json
[ "$(json_get "$T_TMP/out" 'd["sealed_batches"]')" = 0 ] &&
	[ "$(json_get "$T_TMP/out" 'd["requests"]')" -le 1 ] &&
	ok "... without sending anything" || fail "... without sending anything"
agent_integrity "$AH" && ok "agent store integrity_check ok" ||
	fail "agent store integrity_check ok"

done_testing
