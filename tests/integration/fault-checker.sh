#!/bin/sh
# fault-checker.sh - the invariant checker has teeth: on a clean synced
# pair it finds nothing, and each kind of damage it is meant to catch is
# reported under its invariant (on copies of the stores).
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

CHECK="$PY $GS_TOP/tests/checker/gscheck.py"
sync_ready
collect_people 30 5 >/dev/null || fail "collect"
ag list --json | "$PY" -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["uuid"])' >"$T_TMP/saved"
# (The checker holds the device to what it reported saved: none would
# leave invariant 1 nothing to check.)
check "the device reported 30 saves" test "$(wc -l <"$T_TMP/saved")" -eq 30
expect_exit 0 "sync" ag sync --batch-records 10
stop_platform
expect_exit 0 "a clean synced pair: no violation" \
	$CHECK --quiescent --platform "$PH/platform.db" --agent "$AH/agent.db:$T_TMP/saved"

# damaged WHAT INVARIANT SQL_PLATFORM SQL_AGENT: a copy of both stores,
# the damage, and the checker must name the invariant.
damaged() {
	rm -rf "$T_TMP/c"
	mkdir -p "$T_TMP/c"
	sqlite3 "$PH/platform.db" ".backup '$T_TMP/c/p.db'"
	sqlite3 "$AH/agent.db" ".backup '$T_TMP/c/a.db'"
	[ -n "$3" ] && sqlite3 "$T_TMP/c/p.db" "PRAGMA foreign_keys=OFF; $3"
	[ -n "$4" ] && sqlite3 "$T_TMP/c/a.db" "$4"
	$CHECK --quiescent --platform "$T_TMP/c/p.db" \
		--agent "$T_TMP/c/a.db:${5:-$T_TMP/saved}" >"$T_TMP/c/out" 2>&1
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q "VIOLATION $2 " "$T_TMP/c/out"; then
		ok "$1: reported as $2"
	else
		fail "$1: reported as $2 (exit $rc)"
		sed 's/^/#   /' "$T_TMP/c/out" | head -n 5
	fi
}

damaged "a delivered change missing on the platform" I1 \
	"DELETE FROM changes WHERE change_id = (SELECT min(change_id) FROM changes)" ""
damaged "a reported save gone from the device" I1 "" \
	"PRAGMA foreign_keys=OFF; DELETE FROM record WHERE uuid = '$(sed -n 1p "$T_TMP/saved")'"
# (The 30 saves are creations: delivered, each is a sealed_creation row of
# an acked batch, schema/agent/0011; unsent, a pending_creation row.)
damaged "a change left unsent after a clean sync" I1 "" \
	"INSERT INTO pending_creation SELECT uuid, change_id FROM sealed_creation WHERE uuid = (SELECT min(uuid) FROM sealed_creation); DELETE FROM sealed_creation WHERE uuid IN (SELECT uuid FROM pending_creation)"
damaged "a platform envelope that does not hash to its name" I3 \
	"UPDATE batch_envelopes SET envelope = zeroblob(300) WHERE batch = (SELECT min(id) FROM batches)" ""
damaged "a platform record without its batch" I3 \
	"UPDATE records SET batch = 999999 WHERE uuid = (SELECT min(uuid) FROM records)" ""
damaged "a platform batch the device never sealed" I3 \
	"" "DELETE FROM outbox WHERE seq = 1; UPDATE change SET batch_seq = NULL WHERE batch_seq = 1"
damaged "an acked batch the platform does not hold" I4 \
	"PRAGMA foreign_keys=OFF; DELETE FROM records WHERE batch = (SELECT max(id) FROM batches); DELETE FROM revisions WHERE batch = (SELECT max(id) FROM batches); DELETE FROM changes WHERE batch = (SELECT max(id) FROM batches); DELETE FROM batches WHERE id = (SELECT max(id) FROM batches)" ""
damaged "a device receipt that is not the platform's" I4 "" \
	"UPDATE outbox SET receipt = zeroblob(209) WHERE seq = 2"
done_testing
