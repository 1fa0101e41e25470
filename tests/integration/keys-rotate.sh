#!/bin/sh
# keys-rotate.sh - rotation of the platform's batch-encryption key (issue
# 6, platform/rotate.c, platform/root.c): a device that was offline across
# the rotation still syncs (the batch it sealed while offline is sealed to
# the old key, which the platform kept), and then takes the new key
# bundle and seals new batches to the new key; a device enrolled after it
# seals to the new key; the old key cannot be retired while a device may
# still use it (unless --force), and once it is, a batch sealed to it is
# refused and kept on the device; a retire killed between its rename and
# its unlink is finished by the next command.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
DEV_A=$DEV_ID
kid_of_last_batch() {
	sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(envelope, 129, 8))) FROM batches JOIN batch_envelopes ON batch = id WHERE device_id = x'$1' ORDER BY seq DESC LIMIT 1"
}

collect_people 20 71 || fail "collect 20"
expect_exit 0 "sync before the rotation" ag sync
K1=$(kid_of_last_batch "$DEV_A")
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'd["key_bundle"]["serial"]')" = 1 ] &&
	ok "status shows key bundle 1 held" || fail "status shows key bundle 1 held"
expect_exit 0 "keys list" pf keys list --json
[ "$(json_get "$T_TMP/out" 'len(d)')" = 1 ] &&
	[ "$(json_get "$T_TMP/out" 'd[0]["kid"]')" = "$K1" ] &&
	[ "$(json_get "$T_TMP/out" 'd[0]["state"]')" = current ] &&
	ok "one current key, the one the device used" ||
	fail "one current key, the one the device used"

# A third device (C) enrolled before the rotation, and both go offline:
# what they save is sealed to the old key while the platform is down.
C="$T_TMP/c"
sync_enroll "$C" w003 || fail "enroll device C"
DEV_C=$DEV_ID
stop_platform
collect_people 10 72 || fail "collect 10 while offline"
expect_exit 75 "sync while the platform is down seals and waits (75)" ag sync --retries 0
"$GRIDGEN" --type person --count 3 --seed 75 |
	"$GRIDAGENT" --home "$C" collect person --json - >/dev/null || fail "collect on C"
expect_exit 75 "... the same on C" "$GRIDAGENT" --home "$C" sync --retries 0
expect_exit 0 "keys rotate" pf keys rotate
K2=$(cat "$T_TMP/out")
[ -n "$K2" ] && [ "$K2" != "$K1" ] && ok "a new key id ($K2)" || fail "a new key id ($K2)"
grep -q 'key bundle 2' "$T_TMP/err" && ok "... and key bundle 2 names it" ||
	fail "... and key bundle 2 names it"
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
	ok "... its batch sealed offline to the old key opened" ||
	fail "... its batch sealed offline to the old key opened"
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
# (77 is also 'no deployment': each refusal says why.)
expect_exit 77 "retire the current key is refused" pf keys retire "$K2"
check "... saying it is current" grep -q "$K2 is the current key" "$T_TMP/err"
expect_exit 77 "retire the old key while a device's last batch used it is refused" \
	pf keys retire "$K1"
grep -q 'may still be in use' "$T_TMP/err" && ok "... saying why" || fail "... saying why"
[ -f "$PH/batch-$K1.key" ] && ok "... and the key is still there" ||
	fail "... and the key is still there"

# Device A took key bundle 2 at that sync: its next batch uses the new key.
collect_people 4 76 || fail "collect 4"
expect_exit 0 "the device syncs again" ag sync
[ "$(kid_of_last_batch "$DEV_A")" = "$K2" ] &&
	ok "... sealed to the new key (the bundle moved it)" ||
	fail "... sealed to the new key (the bundle moved it)"
ag status --json >"$T_TMP/st.json"
[ "$(json_get "$T_TMP/st.json" 'd["key_bundle"]["serial"]')" = 2 ] &&
	ok "status shows key bundle 2 held" || fail "status shows key bundle 2 held"

# C (enrolled before the rotation, nothing sent yet) still blocks it.
expect_exit 77 "retire while an older device has sent nothing is refused" \
	pf keys retire "$K1"
check "... saying a device enrolled before the rotation has sent nothing" \
	grep -q "$K1 may still be in use: the last batch of 0 device(s) used it and 1 device(s) enrolled before the rotation have sent nothing" "$T_TMP/err"
# A retire killed between its rename and its unlink (retire-crash=1) left
# the whole secret key behind as batch-KID.key.retired, for good: nothing
# looked at that name again.  The next command (keys list here) finishes
# the retirement: overwritten, removed, one warning line.
cp "$PH/batch-$K1.key" "$T_TMP/k1.key"
GRIDPLATFORM_FAULT=retire-crash=1 pf keys retire "$K1" --force \
	>/dev/null 2>&1
[ ! -e "$PH/batch-$K1.key" ] &&
	cmp -s "$PH/batch-$K1.key.retired" "$T_TMP/k1.key" &&
	ok "retire --force killed after its rename: the secret key is left as .retired" ||
	fail "retire --force killed after its rename: the secret key is left as .retired"
expect_exit 0 "keys list" pf keys list --json
[ ! -e "$PH/batch-$K1.key.retired" ] && [ ! -e "$PH/batch-$K1.key" ] &&
	[ -f "$PH/batch-$K1.pub" ] &&
	ok "... finishes it: the secret key is gone, the public key stays on record" ||
	fail "... finishes it: the secret key is gone, the public key stays on record"
check "... saying so in one line" sh -c 'test "$(wc -l <"$1")" = 1 &&
	grep -q "^gridplatform: warning: finished retiring batch key $2: " "$1"' \
	- "$T_TMP/err" "$K1"
[ "$(json_get "$T_TMP/out" '[k["state"] for k in d if k["kid"] == "'"$K1"'"][0]')" = retired ] &&
	ok "... shows it retired" || fail "... shows it retired"
restart_platform || fail "platform restarts"
expect_exit 65 "C's batch sealed to the retired key is refused (65)" \
	"$GRIDAGENT" --home "$C" sync
[ "$(sqlite3 "$C/agent.db" "SELECT count(*) FROM outbox WHERE state = 'rejected'")" = 1 ] &&
	ok "... and kept on the device" || fail "... and kept on the device"

# The same cut short once half of the file is overwritten
# (retire-crash=2), finished by the next command of any kind (devices);
# the platform goes on opening batches with the keys it has left.
expect_exit 0 "keys rotate again" pf keys rotate
K3=$(cat "$T_TMP/out")
collect_people 2 77 || fail "collect 2"
expect_exit 0 "the device syncs (sealed to the previous key)" ag sync
collect_people 2 78 || fail "collect 2 more"
expect_exit 0 "the device syncs again" ag sync
[ "$(kid_of_last_batch "$DEV_A")" = "$K3" ] &&
	ok "... sealed to the newest key" || fail "... sealed to the newest key"
GRIDPLATFORM_FAULT=retire-crash=2 pf keys retire "$K2" --force \
	>/dev/null 2>&1
[ ! -e "$PH/batch-$K2.key" ] && [ -s "$PH/batch-$K2.key.retired" ] &&
	[ "$(head -c 1 "$PH/batch-$K2.key.retired" | od -An -tx1 | tr -d ' ')" = 00 ] &&
	ok "retire killed half-way through the overwrite: .retired left, half zeroed" ||
	fail "retire killed half-way through the overwrite: .retired left, half zeroed"
expect_exit 0 "devices" pf devices
[ ! -e "$PH/batch-$K2.key.retired" ] && [ ! -e "$PH/batch-$K2.key" ] &&
	grep -q "finished retiring batch key $K2" "$T_TMP/err" &&
	ok "... finishes it, saying so" || fail "... finishes it, saying so"
expect_exit 0 "keys list" pf keys list --json
"$PY" -c '
import json, sys
d = {k["kid"]: k["state"] for k in json.load(open(sys.argv[1]))}
assert d == {sys.argv[2]: "retired", sys.argv[3]: "retired",
             sys.argv[4]: "current"}, d
' "$T_TMP/out" "$K1" "$K2" "$K3" &&
	! ls "$PH" | grep -q 'retired$' &&
	ok "... lists two retired keys and the current one, no file left" ||
	fail "... lists two retired keys and the current one, no file left"
restart_platform || fail "platform restarts"
collect_people 3 79 || fail "collect 3"
expect_exit 0 "the device still syncs with the key left" ag sync
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
# (41 saved on it, and what the feed brought from the other devices.)
[ "$(wc -l <"$T_TMP/a")" -ge 41 ] && cmp -s "$T_TMP/a" "$T_TMP/p" &&
	ok "the device and the platform hold the same records" ||
	fail "the device and the platform hold the same records"

# A rotation killed after it wrote a key to its tmp name
# (batch-KID.key.tmp.PID, rotate.c write_hex) and before the rename left
# the whole secret key there for good.  The next command removes such
# files whose writer is gone (overwritten first), and leaves those of a
# writer still running (here a name with this shell's pid).
GRIDPLATFORM_FAULT=rotate-tmp-crash=1 pf keys rotate >/dev/null 2>&1
ls "$PH" | grep -q '^batch-[0-9a-f]*\.key\.tmp\.[0-9]*$' &&
	ok "keys rotate killed after writing a key's tmp file: it is left" ||
	fail "keys rotate killed after writing a key's tmp file: it is left"
printf 'live\n' >"$PH/batch.key.tmp.$$"
expect_exit 0 "devices" pf devices
! ls "$PH" | grep -q '^batch-.*\.tmp\.' &&
	grep -q "^gridplatform: warning: removed .*\.key\.tmp\.[0-9]*, left by a 'keys rotate' that stopped" "$T_TMP/err" &&
	ok "... the next command removes it, saying so" ||
	{ fail "... the next command removes it, saying so"; ls "$PH" | sed 's/^/#   /'; sed 's/^/#   /' "$T_TMP/err"; }
[ -e "$PH/batch.key.tmp.$$" ] &&
	ok "... and leaves the tmp file of a writer still running" ||
	fail "... and leaves the tmp file of a writer still running"
rm -f "$PH/batch.key.tmp.$$"
expect_exit 0 "keys rotate after the crash" pf keys rotate

done_testing
