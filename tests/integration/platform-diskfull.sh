#!/bin/sh
# platform-diskfull.sh - the platform's disk fills up (a small tmpfs; root
# only, skipped otherwise): an init that cannot finish leaves nothing that
# blocks the next one; a device whose upload or enrollment the platform
# cannot store keeps everything and takes it as a temporary failure (sync
# exits 75, `sync --watch` keeps going, enroll exits 69 and the code stays
# good); once space is back one sync delivers every record exactly once.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

MNT=$T_TMP/mnt
mkdir -p "$MNT"
if [ "$(id -u)" -ne 0 ] ||
	! mount -t tmpfs -o size=3m tmpfs "$MNT" 2>/dev/null; then
	echo "# skipped: needs root and tmpfs to fill a disk"
	echo "1..0"
	exit 0
fi
# The platform and its children go first, the mount next, T_TMP last.
trap '[ -n "${PF_PID:-}" ] && stop_platform; umount "$MNT" 2>/dev/null; t_cleanup' EXIT
PH=$MNT/pf

# fill: the rest of the tmpfs in one file (dd stops at ENOSPC).
fill() {
	dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null
	sync
}

# ---- an init that runs out of room: its key files fit, its store not
fill
truncate -s -100K "$MNT/fill"
expect_exit 74 "init on a full disk exits 74" pf init --public-url http://127.0.0.1:9
check "... naming the full disk" grep -q '^gridplatform: .*disk is full' "$T_TMP/err"
check "... and leaves no half-made deployment" test ! -e "$PH/batch.key" -a ! -e "$PH/platform.db"
rm -f "$MNT/fill"
sync_ready "init, serve and enroll once space is back"
ok "init, serve and enroll once space is back"

# ---- uploads into a full disk
collect_people 5000 21 && ok "collect 5000" || fail "collect 5000"
CODE=$(pf enroll --worker w002 --name 李四 --grid 110101001 --ttl 600)
fill
expect_exit 75 "sync into a full platform exits 75 (kept for later)" ag sync --retries 0
check "... saying the platform failed" grep -q 'the platform failed: .*disk is full' "$T_TMP/err"
GRIDAGENT_BACKOFF_MS=50 timeout 3 "$GRIDAGENT" --home "$AH" sync --watch \
	>"$T_TMP/watch.out" 2>&1
check "sync --watch keeps going against a full platform" test $? -eq 124
expect_exit 69 "enroll into a full platform exits 69" "$GRIDAGENT" --home "$T_TMP/ag2" \
	enroll "$CODE" --platform "$PF_URL" --passphrase-file "$AG_PASS"
check "... saying the platform failed" grep -q 'the platform failed' "$T_TMP/err"

# ---- space is back
rm -f "$MNT/fill"
mount -o remount,size=64m "$MNT"
expect_exit 0 "sync completes once space is back" ag sync
expect_exit 0 "the same enrollment code works" "$GRIDAGENT" --home "$T_TMP/ag2" \
	enroll "$CODE" --platform "$PF_URL" --passphrase-file "$AG_PASS"
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
check "5000 records on the device" test "$(wc -l <"$T_TMP/a")" -eq 5000
check "the platform holds each of them exactly once" cmp -s "$T_TMP/a" "$T_TMP/p"
check "platform integrity ok" test "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" = ok
check "agent integrity ok" agent_integrity "$AH"

done_testing
