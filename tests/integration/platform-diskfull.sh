#!/bin/sh
# platform-diskfull.sh - the platform's disk fills up (a small tmpfs; root
# only, skipped otherwise): an init that cannot finish leaves nothing that
# blocks the next one.
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
if ! sync_platform || ! sync_enroll "$AH"; then
	fail "init, serve and enroll once space is back"
	done_testing
	exit 1
fi
ok "init, serve and enroll once space is back"

done_testing
