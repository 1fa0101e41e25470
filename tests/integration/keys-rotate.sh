#!/bin/sh
# keys-rotate.sh - rotation of the platform's batch-encryption key (issue
# 6, platform/rotate.c): a device that was offline across the rotation
# still syncs (its batches are sealed to the old key, which the platform
# kept); a device enrolled after it seals to the new key; the old key
# cannot be retired while a device's last batch used it (unless --force),
# and once it is, batches sealed to it are refused and kept on the device.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

if ! sync_platform || ! sync_enroll "$AH"; then
	fail "platform and enrolled agent"
	done_testing
	exit 1
fi
DEV_A=$DEV_ID
kid_of_last_batch() {
	sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(envelope, 129, 8))) FROM batches WHERE device_id = x'$1' ORDER BY seq DESC LIMIT 1"
}

collect_people 20 71 || fail "collect 20"
expect_exit 0 "sync before the rotation" ag sync
K1=$(kid_of_last_batch "$DEV_A")
expect_exit 0 "keys list" pf keys list --json
[ "$(json_get "$T_TMP/out" 'len(d)')" = 1 ] &&
	[ "$(json_get "$T_TMP/out" 'd[0]["kid"]')" = "$K1" ] &&
	[ "$(json_get "$T_TMP/out" 'd[0]["state"]')" = current ] &&
	ok "one current key, the one the device used" ||
	fail "one current key, the one the device used"

# The device is offline across the rotation: it saves, the platform rotates.
collect_people 10 72 || fail "collect 10 while offline"
expect_exit 0 "keys rotate" pf keys rotate
K2=$(cat "$T_TMP/out")
[ -n "$K2" ] && [ "$K2" != "$K1" ] && ok "a new key id ($K2)" || fail "a new key id ($K2)"
[ "$(stat -c %a "$PH/batch-$K1.key")" = 600 ] && [ -f "$PH/batch-$K2.key" ] &&
	ok "both secret keys kept in the home (0600)" ||
	fail "both secret keys kept in the home (0600)"
restart_platform || fail "platform restarts"
expect_exit 0 "keys list after the rotation" pf keys list --json
"$PY" -c '
import json, sys
d = {k["kid"]: k for k in json.load(open(sys.argv[1]))}
assert d[sys.argv[2]]["state"] == "old" and d[sys.argv[2]]["last_batch_devices"] == 1
assert d[sys.argv[3]]["state"] == "current"
' "$T_TMP/out" "$K1" "$K2" && ok "old key in use by one device, new key current" ||
	fail "old key in use by one device, new key current"

expect_exit 0 "the offline device syncs after the rotation" ag sync
[ "$(kid_of_last_batch "$DEV_A")" = "$K1" ] &&
	ok "... its batch was sealed to the old key, and opened" ||
	fail "... its batch was sealed to the old key, and opened"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/a" "$T_TMP/p" && [ "$(wc -l <"$T_TMP/p")" = 30 ] &&
	ok "the platform holds all 30 records" || fail "the platform holds all 30 records"

# A device enrolled after the rotation pins the new key.
B="$T_TMP/b"
sync_enroll "$B" w002 || fail "enroll a second device"
"$GRIDGEN" --type person --count 5 --seed 73 |
	"$GRIDAGENT" --home "$B" collect person --json - >/dev/null || fail "collect on B"
expect_exit 0 "the new device syncs" "$GRIDAGENT" --home "$B" sync
[ "$(kid_of_last_batch "$DEV_ID")" = "$K2" ] &&
	ok "... sealed to the new key" || fail "... sealed to the new key"

# Retiring.
expect_exit 77 "retire the current key is refused" pf keys retire "$K2"
expect_exit 77 "retire the old key while a device's last batch used it is refused" \
	pf keys retire "$K1"
grep -q 'may still be in use' "$T_TMP/err" && ok "... saying why" || fail "... saying why"
[ -f "$PH/batch-$K1.key" ] && ok "... and the key is still there" ||
	fail "... and the key is still there"
expect_exit 0 "retire --force" pf keys retire "$K1" --force
[ ! -e "$PH/batch-$K1.key" ] && [ -f "$PH/batch-$K1.pub" ] &&
	ok "... the secret key is gone, the public key stays on record" ||
	fail "... the secret key is gone, the public key stays on record"
expect_exit 0 "keys list" pf keys list --json
[ "$(json_get "$T_TMP/out" '[k["state"] for k in d if k["kid"] == "'"$K1"'"][0]')" = retired ] &&
	ok "... shows it retired" || fail "... shows it retired"
restart_platform || fail "platform restarts"
collect_people 3 74 || fail "collect 3"
expect_exit 65 "a batch sealed to the retired key is refused (65)" ag sync
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state = 'rejected'")" = 1 ] &&
	ok "... and kept on the device" || fail "... and kept on the device"

done_testing
