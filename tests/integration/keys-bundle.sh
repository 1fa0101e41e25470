#!/bin/sh
# keys-bundle.sh - the platform's key bundle (issue 6, platform/root.c,
# agent/rootkeys.c): the enrollment code pins the platform ROOT key; a
# device enrolled before a rotation takes the new bundle at its next sync
# and seals new batches to the new batch key; a rolled-back (older) bundle
# is refused and the device keeps its keys.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
kid_of_last_batch() {
	sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(envelope, 129, 8))) FROM batches JOIN batch_envelopes ON batch = id WHERE device_id = x'$DEV_ID' ORDER BY seq DESC LIMIT 1"
}
agent_meta() { sqlite3 "$AH/agent.db" "SELECT value FROM meta WHERE key = '$1'"; }
# GET /v1/keys: serial of the served bundle
served_serial() {
	"$PY" -c '
import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/v1/keys"))["serial"])
' "$PF_URL"
}

# root.pub: the Ed25519 public key, 64 hex digits and a newline.
[ "$(stat -c %a "$PH/root.key")" = 600 ] &&
	[ "$(wc -l <"$PH/root.pub")" = 1 ] && grep -Eqx '[0-9a-f]{64}' "$PH/root.pub" &&
	ok "init made the root key (0600) and root.pub (64 hex digits)" ||
	fail "init made the root key (0600) and root.pub (64 hex digits)"
[ "$(served_serial)" = 1 ] && ok "GET /v1/keys serves bundle 1" ||
	fail "GET /v1/keys serves bundle 1"
[ "$(agent_meta root_pk)" = "$(cat "$PH/root.pub")" ] &&
	[ "$(agent_meta bundle_serial)" = 1 ] &&
	ok "the device pinned the root key and bundle 1 at enrollment" ||
	fail "the device pinned the root key and bundle 1 at enrollment"

OLD_CODE=$(pf enroll --worker w009 --name "李四" --grid 110101001 --ttl 600)
collect_people 5 81 || fail "collect 5"
expect_exit 0 "sync" ag sync
K1=$(kid_of_last_batch)

# Rotation: bundle 2; the device was enrolled before it.
expect_exit 0 "keys rotate" pf keys rotate
K2=$(cat "$T_TMP/out")
restart_platform || fail "platform restarts"
[ "$(served_serial)" = 2 ] && ok "bundle 2 served after the rotation" ||
	fail "bundle 2 served after the rotation"
collect_people 5 82 || fail "collect 5 more"
expect_exit 0 "sync after the rotation" ag sync
[ "$(kid_of_last_batch)" = "$K2" ] && [ "$K2" != "$K1" ] &&
	ok "the device took bundle 2 and sealed to the new key $K2" ||
	fail "the device took bundle 2 and sealed to the new key ($K1 -> $(kid_of_last_batch), want $K2)"
[ "$(agent_meta bundle_serial)" = 2 ] && ok "... and stored serial 2" ||
	fail "... and stored serial 2"
[ "$(sqlite3 "$AH/agent.db" "SELECT lower(hex(batch_kid)) FROM device")" = "$K2" ] &&
	ok "... and the new batch key" || fail "... and the new batch key"

# Rotate again (bundle 3), then the platform replays bundle 2.
expect_exit 0 "keys rotate again" pf keys rotate
K3=$(cat "$T_TMP/out")
restart_platform || fail "platform restarts"
expect_exit 0 "sync takes bundle 3" ag sync
[ "$(agent_meta bundle_serial)" = 3 ] && ok "... serial 3 stored" ||
	fail "... serial 3 stored"
GRIDPLATFORM_TEST_BUNDLE_SERIAL=2
export GRIDPLATFORM_TEST_BUNDLE_SERIAL
restart_platform || fail "platform restarts serving the old bundle"
unset GRIDPLATFORM_TEST_BUNDLE_SERIAL
[ "$(served_serial)" = 2 ] && ok "the platform serves the old bundle 2" ||
	fail "the platform serves the old bundle 2"
collect_people 3 83 || fail "collect 3"
expect_exit 0 "sync against a rolled-back bundle still syncs" ag sync
grep -q 'rolled back' "$T_TMP/err" && ok "... warning that the bundle is rolled back" ||
	fail "... warning that the bundle is rolled back"
[ "$(agent_meta bundle_serial)" = 3 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT lower(hex(batch_kid)) FROM device")" = "$K3" ] &&
	ok "... and keeps serial 3 and its keys" || fail "... and keeps serial 3 and its keys"
[ "$(kid_of_last_batch)" = "$K3" ] && ok "... sealing to the key of bundle 3" ||
	fail "... sealing to the key of bundle 3"

restart_platform || fail "platform restarts"
# A code made before the rotations still enrolls: it pins the root key,
# not a batch key.
D="$T_TMP/d"
"$GRIDAGENT" --home "$D" enroll "$OLD_CODE" --platform "$PF_URL" \
	--passphrase-file "$AG_PASS" >/dev/null 2>"$T_TMP/d.err" &&
	[ "$(sqlite3 "$D/agent.db" "SELECT lower(hex(batch_kid)) FROM device")" = "$K3" ] &&
	ok "a code made before the rotations enrolls, with the current key" ||
	fail "a code made before the rotations enrolls, with the current key: $(cat "$T_TMP/d.err")"
# keys --help says so, and not that codes pin the batch key.
"$GRIDPLATFORM" keys --help >"$T_TMP/keys.help" 2>&1
check "keys --help: codes made before a rotation stay valid" \
	sh -c "tr '\\n' ' ' <'$T_TMP/keys.help' |
	grep -q 'codes made before a rotation stay valid' &&
	! grep -q 'new codes pin it' '$T_TMP/keys.help'"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/a" "$T_TMP/p" && [ "$(wc -l <"$T_TMP/p")" = 13 ] &&
	ok "the platform holds all 13 records" || fail "the platform holds all 13 records"

done_testing
