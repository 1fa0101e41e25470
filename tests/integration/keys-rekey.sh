#!/bin/sh
# keys-rekey.sh - device key rotation (issue 6, agent/rekey.c,
# platform/rekey.c): the old key signs the new one; a batch sealed under
# the old key before the rekey is still accepted, batches after it are
# signed with the new key; a rekey not signed by the device's current key
# (a copy of the home holding the old key, another device's key) is
# refused, and the old key cannot sign new batches.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
DEV_A=$DEV_ID
dkid_of_seq() {
	sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(envelope, 137, 8))) FROM batches JOIN batch_envelopes ON batch = id WHERE device_id = x'$DEV_A' AND seq = $1"
}
agent_pk() { sqlite3 "$1/agent.db" "SELECT lower(hex(sign_pk)) FROM device"; }

collect_people 5 91 || fail "collect 5"
expect_exit 0 "sync" ag sync
OLD_PK=$(agent_pk "$AH")
K_OLD=$(dkid_of_seq 1)
# (Every check of a key id below compares two of them: none may be empty.)
echo "$K_OLD" | grep -Eq '^[0-9a-f]{16}$' && ok "batch 1 names the device key ($K_OLD)" ||
	fail "batch 1 names the device key ($K_OLD)"

# A batch sealed under the old key while the platform is down.
stop_platform
collect_people 4 92 || fail "collect 4 offline"
expect_exit 75 "sync with the platform down seals batch 2 (75)" ag sync --retries 0
restart_platform || fail "platform restarts"
cp -r "$AH" "$T_TMP/stolen"

expect_exit 0 "rekey" ag rekey
K_NEW=$(cat "$T_TMP/out")
[ -n "$K_NEW" ] && [ "$K_NEW" != "$K_OLD" ] && [ "$(agent_pk "$AH")" != "$OLD_PK" ] &&
	ok "a new device key ($K_NEW)" || fail "a new device key ($K_NEW)"
[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM device_keys WHERE device_id = x'$DEV_A' AND lower(hex(prev_kid)) = '$K_OLD' AND lower(hex(kid)) = '$K_NEW'")" = 1 ] &&
	ok "the platform recorded the chain old -> new" ||
	fail "the platform recorded the chain old -> new"

expect_exit 0 "sync after the rekey" ag sync
[ -n "$K_OLD" ] && [ "$(dkid_of_seq 2)" = "$K_OLD" ] &&
	ok "batch 2, sealed before the rekey under the old key, accepted" ||
	fail "batch 2, sealed before the rekey under the old key, accepted"
collect_people 3 93 || fail "collect 3"
expect_exit 0 "sync a batch made after the rekey" ag sync
[ "$(dkid_of_seq 3)" = "$K_NEW" ] && ok "batch 3 signed with the new key" ||
	fail "batch 3 signed with the new key"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/a" "$T_TMP/p" && [ "$(wc -l <"$T_TMP/p")" = 12 ] &&
	ok "the platform holds all 12 records" || fail "the platform holds all 12 records"

# The copy still holds the old key: its rekey is refused...
expect_exit 65 "a rekey signed by the old (no longer current) key is refused" \
	"$GRIDAGENT" --home "$T_TMP/stolen" rekey
grep -q 'not signed by the device' "$T_TMP/err" && ok "... as a bad signature" ||
	fail "... as a bad signature"
# ... and so is a new batch it signs with the old key.
"$GRIDGEN" --type person --count 2 --seed 94 |
	"$GRIDAGENT" --home "$T_TMP/stolen" collect person --json - >/dev/null ||
	fail "collect on the copy"
"$GRIDAGENT" --home "$T_TMP/stolen" sync --retries 0 >/dev/null 2>"$T_TMP/err"
rc=$?
# (Nothing stored holds too when the copy's sync never got there: the
# platform must have refused it.)
[ "$rc" = 65 ] && grep -q 'refused by the platform: bad_signature' "$T_TMP/err" &&
	[ "$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches WHERE device_id = x'$DEV_A'")" = 3 ] &&
	ok "a new batch signed with the old key is not accepted" ||
	fail "a new batch signed with the old key is not accepted"

# Another device's key signing a rekey for this device: refused.
B="$T_TMP/b"
sync_enroll "$B" w002 || fail "enroll device B"
sqlite3 "$B/agent.db" "UPDATE device SET device_id = x'$DEV_A'" || fail "retarget B"
expect_exit 65 "a rekey for A signed by B's key is refused" "$GRIDAGENT" --home "$B" rekey
grep -q 'the platform refused the new key: .*not signed by the device' "$T_TMP/err" &&
	ok "... by the platform, as not signed by A" ||
	fail "... by the platform, as not signed by A"
[ "$(sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(device_pk, 1, 32))) FROM devices WHERE device_id = x'$DEV_A'")" = "$(agent_pk "$AH")" ] &&
	ok "A's key on the platform is still the one A holds" ||
	fail "A's key on the platform is still the one A holds"
expect_exit 0 "A still syncs" ag sync

done_testing
