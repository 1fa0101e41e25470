#!/bin/sh
# reconcile-fork.sh - faults an admin must see: a device store restored
# from an old backup seals the same seqs again (a FORK: flagged, both
# chains kept, nothing lost), and a withheld batch shows as a missing seq
# until it arrives.  reconcile --check is 1 on each fault, 0 when clean.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_platform || exit 1
sync_enroll "$AH" w001 || { fail "enroll"; done_testing; exit 1; }

# --- a withheld batch: seq 2 arrives before seq 1 ---------------------
kill -STOP "$PF_PID"
GRIDAGENT_TIMEOUT_MS=1000 GRIDAGENT_CONNECT_TIMEOUT_MS=500 ag sync >/dev/null 2>&1
collect_people 3 1
GRIDAGENT_TIMEOUT_MS=1000 GRIDAGENT_CONNECT_TIMEOUT_MS=500 ag sync >/dev/null 2>&1
collect_people 3 2
GRIDAGENT_TIMEOUT_MS=1000 GRIDAGENT_CONNECT_TIMEOUT_MS=500 ag sync >/dev/null 2>&1
kill -CONT "$PF_PID"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state = 'sealed'")" = 2 ] &&
	ok "two batches sealed while the platform did not answer" ||
	fail "two batches sealed while the platform did not answer"
# Hold seq 1 back (as a relay or a lost SD card would): mark it aside.
sqlite3 "$AH/agent.db" "UPDATE outbox SET state = 'rejected' WHERE seq = 1"
ag sync >/dev/null 2>&1
expect_exit 1 "reconcile --check is 1 with seq 1 missing" pf reconcile --check
grep -q 'device says 2 batches sealed, platform holds 1: seq 1 missing' "$T_TMP/out" &&
	ok "... 'device says 2 batches sealed, platform holds 1: seq 1 missing'" ||
	{ fail "... 'device says 2 batches sealed, platform holds 1: seq 1 missing'"; sed 's/^/# /' "$T_TMP/out"; }
pf reconcile --json >"$T_TMP/r.json"
[ "$(json_get "$T_TMP/r.json" 'd["devices"][0]["missing_ranges"]')" = "[[1, 1]]" ] &&
	ok "JSON: missing_ranges [[1,1]]" || fail "JSON: missing_ranges [[1,1]]"
sqlite3 "$AH/agent.db" "UPDATE outbox SET state = 'sealed' WHERE seq = 1"
expect_exit 0 "the withheld batch is sent" ag sync
expect_exit 0 "reconcile --check is 0 once it arrived" pf reconcile --check
[ "$(pf export --format ndjson | wc -l)" -eq 6 ] && ok "all 6 records held" ||
	fail "all 6 records held"

# --- a store restored from an old backup -------------------------------
mkdir "$T_TMP/backup"
cp "$AH"/agent.db* "$T_TMP/backup/"
collect_people 4 3
expect_exit 0 "4 more records synced (seq 3)" ag sync
rm -f "$AH"/agent.db*
cp "$T_TMP/backup"/agent.db* "$AH/"
collect_people 5 4
expect_exit 0 "the restored store collects 5 and syncs (seq 3 again)" ag sync
expect_exit 1 "reconcile --check is 1 on the fork" pf reconcile --check
grep -q 'FORK: seq 3 held twice' "$T_TMP/out" && ok "... flagged as a FORK at seq 3" ||
	{ fail "... flagged as a FORK at seq 3"; sed 's/^/# /' "$T_TMP/out"; }
pf reconcile --json >"$T_TMP/r.json"
[ "$(json_get "$T_TMP/r.json" 'd["devices"][0]["forks"]')" = "[3]" ] &&
	[ "$(json_get "$T_TMP/r.json" 'd["devices"][0]["batches"]')" = 4 ] &&
	ok "JSON: forks [3], both batches kept (4 in all)" ||
	fail "JSON: forks [3], both batches kept (4 in all)"
[ "$(pf export --format ndjson | wc -l)" -eq 15 ] &&
	ok "nothing lost: 6 + 4 + 5 records on the platform" ||
	fail "nothing lost: 6 + 4 + 5 records on the platform"
[ "$(ag list --json | wc -l)" -eq 15 ] &&
	ok "the restored device got back the 4 records its old copy lacked" ||
	fail "the restored device got back the 4 records its old copy lacked"
check "platform store intact" sh -c "[ \"\$(sqlite3 '$PH/platform.db' 'PRAGMA integrity_check')\" = ok ]"
done_testing
