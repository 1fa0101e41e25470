#!/bin/sh
# readonly-home.sh - a home that cannot be written (flash remounted
# read-only after errors, an image mounted read-only by support, chmod
# a-w): the read commands give the same answers as before, with one
# warning line; the write commands fail at once with one line naming the
# read-only home, exit 74, and change nothing; a store that needs a
# migration is refused as well, untouched; once writable again everything
# works and one sync delivers exactly once.  The platform's read commands
# too.  Root and bind mounts only (a read-only bind mount is read-only
# for root too; permissions are not), skipped otherwise; the chmod case
# runs as nobody when setpriv can switch to it.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

PROBE=$T_TMP/probe
mkdir -p "$PROBE"
if [ "$(id -u)" -ne 0 ] || ! mount --bind "$PROBE" "$PROBE" 2>/dev/null; then
	echo "# skipped: needs root and bind mounts for a read-only home"
	echo "1..0"
	exit 0
fi
umount "$PROBE"

# ro_on DIR: DIR itself becomes a read-only view of itself; ro_off undoes.
MOUNTS=""
ro_on() {
	mount --bind "$1" "$1" && MOUNTS="$1 $MOUNTS" &&
		mount -o remount,bind,ro "$1"
}
ro_off() {
	while mountpoint -q "$1"; do umount "$1" || return 1; done
}
# The platform and its children go first, the mounts next, T_TMP last.
trap '[ -n "${PF_PID:-}" ] && stop_platform; for m in $MOUNTS; do ro_off "$m"; done; t_cleanup' EXIT

sum() { cat "$1"/agent.db* 2>/dev/null | sha256sum; ls "$1"; }

sync_ready
collect_people 30 1 2>/dev/null
ag sync >/dev/null 2>&1 || fail "first sync"
collect_people 5 2 2>/dev/null
UUID=$(ag list --json | head -n 1 | uuids_of)

# The answers of a writable home, to compare with.
B=$T_TMP/before
mkdir -p "$B"
READS="status|status --json|list|list --json|show $UUID|show $UUID --json|list --reveal|show $UUID --reveal|tasks --json|config retention-days"
n=0
IFS='|'
for c in $READS; do
	IFS=' '
	# shellcheck disable=SC2086
	ag $c >"$B/$n" 2>/dev/null
	n=$((n + 1))
	IFS='|'
done
IFS=' '
# (An empty answer before would make 'answers as before' vacuous.)
empty=""
i=0
while [ $i -lt $n ]; do
	[ -s "$B/$i" ] || empty="$empty $i"
	i=$((i + 1))
done
[ -z "$empty" ] && ok "the writable home's $n read answers, to compare with, are not empty" ||
	fail "the writable home's read answers are not empty (empty:$empty)"

# read_same WHAT: every read command answers as before, exit 0, with one
# warning line naming the read-only home.
read_same() {
	n=0
	IFS='|'
	for c in $READS; do
		IFS=' '
		# shellcheck disable=SC2086
		ag $c >"$T_TMP/out" 2>"$T_TMP/err"
		rc=$?
		if [ $rc -eq 0 ] && cmp -s "$B/$n" "$T_TMP/out" &&
			grep -q "^gridagent: warning: $AH is read-only" "$T_TMP/err"; then
			ok "$1: $c answers as before"
		else
			fail "$1: $c answers as before (exit $rc)"
			sed 's/^/#   err: /' "$T_TMP/err" | head -n 3
		fi
		n=$((n + 1))
		IFS='|'
	done
	IFS=' '
}

# write_refused WHAT: every write command exits 74 with the one line and
# leaves the store exactly as it was.
write_refused() {
	before=$(sum "$AH")
	for c in "collect person name=王五 id_number=110101199003070014 pop_type=REGISTERED address=北京市东城区1号" \
		"edit $UUID name=赵六" "delete $UUID" "sync" "sync --watch" \
		"lock" "unlock --passphrase-file $AG_PASS" \
		"config retention-days 9" "purge" "rekey" \
		"attach $UUID $AG_PASS"; do
		case $c in "sync --watch") l=$c ;; *) l=${c%% *} ;; esac
		# shellcheck disable=SC2086
		ag $c >"$T_TMP/out" 2>"$T_TMP/err"
		rc=$?
		if [ $rc -eq 74 ] && [ "$(wc -l <"$T_TMP/err")" -eq 1 ] &&
			grep -q "^gridagent: $AH is read-only (Read-only file system)" "$T_TMP/err" &&
			[ "$(sum "$AH")" = "$before" ]; then
			ok "$1: $l exits 74 with one line, nothing changed"
		else
			fail "$1: $l exits 74 with one line, nothing changed (exit $rc)"
			sed 's/^/#   err: /' "$T_TMP/err" | head -n 3
		fi
	done
}

# ---- a store closed cleanly: no -wal, no -shm (read as immutable)
ro_on "$AH" || { fail "read-only bind mount of the home"; done_testing; exit 1; }
read_same "closed store"
write_refused "closed store"
ro_off "$AH"

# ---- a store left by a process that did not close it: the last save is
# only in the -wal, and the -shm is there (read with the WAL)
: >"$T_TMP/holder.out"
"$PY" -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
c.execute("SELECT count(*) FROM sqlite_master").fetchall()
print("open", flush=True)
time.sleep(60)
' "$AH/agent.db" >"$T_TMP/holder.out" &
HOLDER=$!
T_PIDS="$T_PIDS $HOLDER"
i=0
while [ $i -lt 100 ] && ! grep -q open "$T_TMP/holder.out"; do sleep 0.05; i=$((i + 1)); done
NEW=$("$GRIDGEN" --type person --count 1 --seed 3 |
	ag collect person --json - 2>/dev/null)
# (Read while the holder is there: the last connection to close would
# checkpoint the -wal into the file and remove it.)
ag list --json | uuids_of >"$T_TMP/crash-before"
ag status --json >"$T_TMP/crash-status" 2>/dev/null
[ -s "$T_TMP/crash-before" ] && [ -s "$T_TMP/crash-status" ] &&
	ok "crashed store: list and status before the read-only mount answered" ||
	fail "crashed store: list and status before the read-only mount answered"
kill -9 "$HOLDER"
wait "$HOLDER" 2>/dev/null
ro_on "$AH"
ag list --json 2>"$T_TMP/err" | uuids_of >"$T_TMP/crash-ro"
check "crashed store: list shows every record, the last one only in the -wal" \
	sh -c "[ -n '$NEW' ] && [ -s '$AH/agent.db-wal' ] && [ -e '$AH/agent.db-shm' ] && grep -q '$NEW' '$T_TMP/crash-ro' && cmp -s '$T_TMP/crash-before' '$T_TMP/crash-ro' && grep -q '^gridagent: warning: $AH is read-only: showing what is saved' '$T_TMP/err'"
ag status --json >"$T_TMP/out" 2>"$T_TMP/err"
check "crashed store: status --json answers as before, saying the home is read-only" \
	sh -c "cmp -s '$T_TMP/crash-status' '$T_TMP/out' && grep -q '^gridagent: warning: $AH is read-only' '$T_TMP/err'"
write_refused "crashed store"
ro_off "$AH"

# ---- a store that needs a migration cannot be migrated: refused, untouched
AH2=$T_TMP/ag-old
mkdir -p "$AH2"
cp "$AH/agent.db" "$AH2/agent.db"
sqlite3 "$AH2/agent.db" "PRAGMA user_version = $(($(sqlite3 "$AH2/agent.db" 'PRAGMA user_version') - 1))"
ro_on "$AH2"
before=$(sum "$AH2")
"$GRIDAGENT" --home "$AH2" status >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
check "a store that needs a migration: status exits 74 saying so, nothing changed" \
	sh -c "[ $rc -eq 74 ] && grep -q '^gridagent: .*needs its schema upgraded .* read-only' '$T_TMP/err' && [ \"\$(cat '$AH2'/agent.db* | sha256sum; ls '$AH2')\" = \"$before\" ]"
ro_off "$AH2"

# ---- chmod a-w, as a user that permissions stop (nobody)
if command -v setpriv >/dev/null 2>&1 &&
	setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
	AH3=$T_TMP/ag-nobody
	cp -r "$AH" "$AH3"
	chown -R nobody:nogroup "$AH3"
	chmod 755 "$T_TMP"
	chmod a-w "$AH3" "$AH3"/*
	before=$(sum "$AH3")
	asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$GRIDAGENT" --home "$AH3" "$@"; }
	asnobody list --json 2>"$T_TMP/err" | uuids_of >"$T_TMP/nobody"
	check "chmod a-w home, as nobody: list gives every record" \
		sh -c "cmp -s '$T_TMP/crash-before' '$T_TMP/nobody' && grep -q '^gridagent: warning: $AH3 is read-only' '$T_TMP/err'"
	asnobody collect person name=x >/dev/null 2>"$T_TMP/err"
	rc=$?
	check "chmod a-w home, as nobody: collect exits 74 naming it, nothing changed" \
		sh -c "[ $rc -eq 74 ] && grep -q '^gridagent: $AH3 is read-only (Permission denied)' '$T_TMP/err' && [ \"\$(cat '$AH3'/agent.db* | sha256sum; ls '$AH3')\" = \"$before\" ]"
	chmod -R u+w "$AH3"
else
	echo "# chmod case skipped: setpriv cannot run as nobody here"
fi

# ---- the platform's read commands on a read-only view of its home
PRO=$T_TMP/pf-ro
mkdir -p "$PRO"
mount --bind "$PH" "$PRO" && MOUNTS="$PRO $MOUNTS" && mount -o remount,bind,ro "$PRO"
for c in "devices --json" "export --format ndjson" "reconcile --json" "quarantine --json" \
	"keys list --json" "attachment list" "attachment limit --json" \
	"attachment partial-age --json"; do
	# shellcheck disable=SC2086
	pf $c 2>/dev/null | grep -v generated_at >"$T_TMP/pf.rw"
	# shellcheck disable=SC2086
	"$GRIDPLATFORM" --home "$PRO" $c 2>"$T_TMP/err" | grep -v generated_at >"$T_TMP/pf.ro"
	check "platform on a read-only home: $c answers as before" \
		sh -c "[ -s '$T_TMP/pf.rw' ] && cmp -s '$T_TMP/pf.rw' '$T_TMP/pf.ro' && grep -q '^gridplatform: warning: $PRO is read-only' '$T_TMP/err'"
done
# A key bundle due for re-issue (within 30 days of its end: the clock
# moved 340 days on, tests/tools/gsclock.so) was re-issued at open, a
# write: every read failed, "INSERT INTO meta: attempt to write a
# readonly database" (74).  The bundle held is used as it is, and the one
# warning line says so; so is a key left by a 'keys retire' that
# stopped, which the next command on the writable home removes.
CLK="$BUILD_DIR/tools/gsclock.so"
if ldd "$GRIDPLATFORM" 2>/dev/null | grep -q libasan; then
	echo "# stale bundle case skipped: gsclock.so cannot preload under ASan"
elif [ ! -f "$CLK" ]; then
	fail "$CLK is built (make test builds it)"
else
	# (The serve of this home runs: its store is compared by what a
	# re-issue writes, the bundle's serial.)
	psum() {
		sqlite3 "$PH/platform.db" "SELECT value FROM meta WHERE key = 'bundle_serial'"
		ls -l "$PH"
	}
	pf devices --json >"$T_TMP/pf.rw" 2>/dev/null
	LEFT=batch-0123456789abcdef.key.retired
	head -c 65 /dev/zero >"$PH/$LEFT"
	before=$(psum)
	for c in "devices --json" "keys list --json"; do
		# shellcheck disable=SC2086
		LD_PRELOAD="$CLK" GSCLOCK_AT=$(($(date +%s) + 340 * 86400)) \
			"$GRIDPLATFORM" --home "$PRO" $c >"$T_TMP/pf.ro.${c%% *}" \
			2>"$T_TMP/err"
		rc=$?
		check "platform on a read-only home, key bundle due for re-issue: $c exits 0" \
			test "$rc" = 0
		check "... one warning line, saying the bundle is due and the key left" \
			sh -c 'test "$(wc -l <"$1")" = 1 &&
			grep -q "^gridplatform: warning: $2 is read-only: .*; its key bundle is due for re-issue" "$1" &&
			grep -q "; $3 is left by a .keys retire. that stopped" "$1"' \
			- "$T_TMP/err" "$PRO" "$LEFT" ||
			sed 's/^/#   /' "$T_TMP/err"
	done
	check "... devices answers as before" cmp -s "$T_TMP/pf.rw" \
		"$T_TMP/pf.ro.devices"
	check "... nothing changed in the home" test "$(psum)" = "$before"
fi
"$GRIDPLATFORM" --home "$PRO" enroll --worker w009 --name 周九 --grid 110101001 \
	>"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
check "platform on a read-only home: enroll exits 74 naming it" \
	sh -c "[ $rc -eq 74 ] && grep -q '^gridplatform: $PRO is read-only' '$T_TMP/err'"
"$GRIDPLATFORM" --home "$PRO" attachment limit 1000 >"$T_TMP/out" 2>"$T_TMP/err"
rc=$?
check "platform on a read-only home: attachment limit N (a write) exits 74 naming it" \
	sh -c "[ $rc -eq 74 ] && grep -q '^gridplatform: $PRO is read-only' '$T_TMP/err'"
ro_off "$PRO"
if [ -n "${LEFT:-}" ]; then
	expect_exit 0 "writable again: platform devices" pf devices
	check "... removes the key a 'keys retire' left, saying so" sh -c \
		'test ! -e "$1/$2" && grep -q "finished retiring batch key" "$3"' \
		- "$PH" "$LEFT" "$T_TMP/err"
fi

# ---- writable again: everything works, one sync delivers exactly once
"$GRIDGEN" --type person --count 1 --seed 4 >"$T_TMP/one.ndjson"
expect_exit 0 "writable again: collect" ag collect person --json "$T_TMP/one.ndjson"
expect_exit 0 "writable again: sync" ag sync
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
check "37 records on the device, each on the platform exactly once" \
	sh -c "[ \$(wc -l <'$T_TMP/a') -eq 37 ] && cmp -s '$T_TMP/a' '$T_TMP/p'"
check "agent integrity ok" agent_integrity "$AH"
check "platform integrity ok" test "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" = ok

done_testing
