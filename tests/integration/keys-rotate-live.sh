#!/bin/sh
# keys-rotate-live.sh - `gridplatform keys rotate` against the home of a
# running `gridplatform serve` (no restart): the server picks up the new
# key bundle at the next health request, takes the new batch key so
# batches sealed to it open, and devices move to it at their next sync
# (`gridagent status` shows the bundle serial they hold).
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
kid_of_last_batch() {
	sqlite3 "$PH/platform.db" "SELECT lower(hex(substr(envelope, 129, 8))) FROM batches JOIN batch_envelopes ON batch = id WHERE device_id = x'$DEV_ID' ORDER BY seq DESC LIMIT 1"
}
bundle_serial() { ag status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["key_bundle"]["serial"])'; }

collect_people 5 81 || fail "collect 5"
expect_exit 0 "sync before the rotation" ag sync
K1=$(kid_of_last_batch)
[ "$(bundle_serial)" = 1 ] && ok "the device holds key bundle 1" ||
	fail "the device holds key bundle 1"
expect_exit 0 "keys rotate while serve runs" pf keys rotate
K2=$(cat "$T_TMP/out")
[ -n "$K2" ] && [ "$K2" != "$K1" ] && ok "a new key id" || fail "a new key id"
curl -s "$PF_URL/v1/health" >"$T_TMP/h.json"
[ "$(json_get "$T_TMP/h.json" 'd["keys"]["serial"]')" = 2 ] &&
	ok "the running server serves key bundle 2 (no restart)" ||
	fail "the running server serves key bundle 2 (no restart)"
grep -q 'serving key bundle 2' "$PH/serve.log" && ok "... and logs it" ||
	fail "... and logs it"
expect_exit 0 "the device syncs" ag sync
[ "$(bundle_serial)" = 2 ] && ok "the device took key bundle 2" ||
	fail "the device took key bundle 2"
collect_people 4 82 || fail "collect 4"
expect_exit 0 "the device syncs records sealed to the new key" ag sync
[ "$(kid_of_last_batch)" = "$K2" ] && ok "... its last batch is sealed to $K2 and was accepted" ||
	fail "... its last batch is sealed to $K2 and was accepted"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
cmp -s "$T_TMP/a" "$T_TMP/p" && [ "$(wc -l <"$T_TMP/p")" = 9 ] &&
	ok "the platform holds all 9 records" || fail "the platform holds all 9 records"
# After a restart the same keys load from the home.
restart_platform || fail "platform restarts"
collect_people 2 83 || fail "collect 2"
expect_exit 0 "sync after a restart" ag sync
[ "$(pf export --format ndjson | wc -l)" = 11 ] && ok "11 records" || fail "11 records"
# A key file retired by another process between an admin command's open
# and its read (renamed, overwritten with zeros, unlinked: rotate.c
# cmd_retire) is a key gone, not a damaged one.  It failed the reader
# loops below now and then ("batch-KID.key is damaged", 74); the fault
# makes it happen every time, to the first old key read (K1), in a copy
# of the home.
cp -a "$PH" "$T_TMP/pfcopy"
GRIDPLATFORM_FAULT=retire-while-read=2 "$GRIDPLATFORM" --home "$T_TMP/pfcopy" \
	quarantine >"$T_TMP/rwr.out" 2>"$T_TMP/rwr.err"
rc=$?
[ "$rc" = 0 ] && [ ! -e "$T_TMP/pfcopy/batch-$K1.key" ] &&
	[ -e "$PH/batch-$K1.key" ] && ! grep -q damaged "$T_TMP/rwr.err" &&
	ok "a key retired while an admin command read it: exit 0, not 'damaged'" ||
	{ fail "a key retired while an admin command read it: exit $rc"; sed 's/^/#   /' "$T_TMP/rwr.err"; }
# A command opening the home reads which batch key the store names, then
# that key's files.  A 'keys rotate' and a 'keys retire' of that key in
# another process between the two made the files look wrong for what the
# store had said: "batch.pub does not match the store" (65), once in the
# reader loops below.  The fault holds the open in that window for 3 s;
# the rotation must wait for it (keys.lock), and both succeed.
cp -a "$PH" "$T_TMP/pfcopy2"
KC=$("$GRIDPLATFORM" --home "$T_TMP/pfcopy2" keys list --json |
	"$PY" -c 'import json,sys; print([k["kid"] for k in json.load(sys.stdin) if k["state"] == "current"][0])')
GRIDPLATFORM_FAULT=open-pause=3000 "$GRIDPLATFORM" --home "$T_TMP/pfcopy2" \
	devices >/dev/null 2>"$T_TMP/op.err" &
OPR=$!
T_PIDS="$T_PIDS $OPR"
i=0
while ! grep -q 'open paused' "$T_TMP/op.err" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$GRIDPLATFORM" --home "$T_TMP/pfcopy2" keys rotate >/dev/null 2>"$T_TMP/op.rot" &&
	"$GRIDPLATFORM" --home "$T_TMP/pfcopy2" keys retire "$KC" --force \
	>/dev/null 2>>"$T_TMP/op.rot"
rrc=$?
wait "$OPR"
orc=$?
[ "$orc" = 0 ] && [ "$rrc" = 0 ] && [ ! -e "$T_TMP/pfcopy2/batch-$KC.key" ] &&
	ok "keys rotate and retire while a command opens the home: both succeed" ||
	{ fail "keys rotate and retire while a command opens the home: reader exit $orc, rotate/retire exit $rrc"
	  sed 's/^/#   /' "$T_TMP/op.err" "$T_TMP/op.rot"; }
# The same window, rotate only: the command read the old key from the
# store, found its files (kept), then saw a bundle naming the new key and
# re-issued one naming the old key, which devices would then take (and
# seal to a key a retire may delete next).  The current bundle must name
# the store's current key.
cp -a "$PH" "$T_TMP/pfcopy3"
GRIDPLATFORM_FAULT=open-pause=3000 "$GRIDPLATFORM" --home "$T_TMP/pfcopy3" \
	enroll --worker w9 --name n9 --grid 440307001001 \
	>/dev/null 2>"$T_TMP/op3.err" &
OPR=$!
T_PIDS="$T_PIDS $OPR"
i=0
while ! grep -q 'open paused' "$T_TMP/op3.err" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
"$GRIDPLATFORM" --home "$T_TMP/pfcopy3" keys rotate >/dev/null 2>"$T_TMP/op3.rot"
rrc=$?
wait "$OPR"
orc=$?
"$PY" - "$T_TMP/pfcopy3/platform.db" <<'PYCHK'
import sqlite3, sys
m = dict(sqlite3.connect(sys.argv[1]).execute("SELECT key, value FROM meta"))
sys.exit(0 if bytes.fromhex(m["batch_pk"]) in bytes.fromhex(m["bundle"]) else 1)
PYCHK
brc=$?
[ "$orc" = 0 ] && [ "$rrc" = 0 ] && [ "$brc" = 0 ] &&
	ok "keys rotate while a command opens the home: the current bundle names the current key" ||
	{ fail "keys rotate while a command opens the home: reader exit $orc, rotate exit $rrc, bundle names the current key: $brc"
	  sed 's/^/#   /' "$T_TMP/op3.err" "$T_TMP/op3.rot"; }
# Admin commands while 'keys rotate' runs in another process: each one
# lists the home's key files, and used to read a pair still being
# written ("gridplatform: not found", "cannot open batch-KID.pub", exit
# 65 or 74; or a half-written key, "is damaged"), and a key file that
# 'keys retire' was overwriting ("is damaged", 74).  60 rotations, each
# retiring the key the one before made (never the device's), two reader
# loops, not one failure.
rm -f "$T_TMP/rotated" "$T_TMP/readers.err" "$T_TMP"/reads.*
(
	i=0 prev=""
	while [ $i -lt 60 ]; do
		new=$(pf keys rotate 2>/dev/null) || echo "rotate failed" \
			>>"$T_TMP/readers.err"
		if [ -n "$prev" ]; then
			pf keys retire "$prev" --force >/dev/null 2>&1 ||
				echo "retire failed" >>"$T_TMP/readers.err"
		fi
		prev=$new
		i=$((i + 1))
	done
	: >"$T_TMP/rotated"
) &
ROT=$!
T_PIDS="$T_PIDS $ROT"
reader() {
	while [ ! -e "$T_TMP/rotated" ]; do
		echo >>"$T_TMP/reads.$1"
		pf "$@" >/dev/null 2>>"$T_TMP/readers.err.$1" ||
			echo "$* exit $?" >>"$T_TMP/readers.err.$1"
	done
}
reader devices &
RD=$!
T_PIDS="$T_PIDS $RD"
reader quarantine
wait "$ROT" "$RD"
cat "$T_TMP"/readers.err* 2>/dev/null | grep -v 'more than 64 old' |
	sed 's/^/#   /' | head -n 5
# (No failure is worth something only if both loops ran during the
# rotations, a few times each.)
nd=$(cat "$T_TMP/reads.devices" 2>/dev/null | wc -l)
nq=$(cat "$T_TMP/reads.quarantine" 2>/dev/null | wc -l)
[ "$nd" -ge 3 ] && [ "$nq" -ge 3 ] &&
	[ -z "$(cat "$T_TMP"/readers.err* 2>/dev/null | grep -v 'more than 64 old')" ] &&
	ok "devices, quarantine ($nd, $nq runs) during 60 'keys rotate', 'retire': no failure" ||
	fail "devices, quarantine ($nd, $nq runs, 3 each at least) during 60 'keys rotate', 'retire': no failure"
# 'keys rotate' in three processes at once: each wrote its key to
# "batch-KID.key.tmp" and renamed it, and one in thirty or so found
# another had renamed it first ("cannot rename ... .tmp: No such file or
# directory"; 1 to 3 of 75 in each of 3 runs by hand).
rm -f "$T_TMP/rot2.err"
rot_loop() {
	i=0
	while [ $i -lt 25 ]; do
		pf keys rotate >/dev/null 2>>"$T_TMP/rot2.err.$1" ||
			echo "rotate exit $?" >>"$T_TMP/rot2.err.$1"
		i=$((i + 1))
	done
}
rot_loop a &
RA=$!
rot_loop b &
RB=$!
T_PIDS="$T_PIDS $RA $RB"
rot_loop c
wait "$RA" "$RB"
grep -hv 'is current\|more than 64 old' "$T_TMP"/rot2.err.* | sed 's/^/#   /' | head -n 5
[ -z "$(grep -hv 'is current\|more than 64 old' "$T_TMP"/rot2.err.*)" ] &&
	ok "three 'keys rotate' loops at once (75 rotations): no failure" ||
	fail "three 'keys rotate' loops at once (75 rotations): no failure"
collect_people 2 85 || fail "collect 2"
expect_exit 0 "sync after the rotations" ag sync

done_testing
