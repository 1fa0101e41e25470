#!/bin/sh
# agent-sync-kill.sh - crashes between sealing and receipt.  The agent is
# killed -9 right after a batch is sealed, right after a receipt arrived
# but before it was recorded (the platform committed, the device did not),
# and at timed points during a large sync; the platform is killed -9 in
# the middle of ingest and restarted.  Every time, the next sync completes
# and each record is on the platform exactly once.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
HOSTPORT=${PF_URL#http://}

# exactly_once WHAT: the uuid sets are equal, nothing twice, nothing
# pending, both stores intact.
exactly_once() {
	agent_uuids "$T_TMP/a"
	platform_uuids "$T_TMP/p"
	if cmp -s "$T_TMP/a" "$T_TMP/p" && [ -z "$(uniq -d "$T_TMP/p")" ] &&
		[ "$(sqlite3 "$AH/agent.db" "SELECT (SELECT count(*) FROM change WHERE state <> 2) + (SELECT count(*) FROM sealed_creation AS s JOIN outbox AS o ON o.seq = s.batch_seq WHERE o.state <> 'acked')")" = 0 ] &&
		[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state <> 'acked'")" = 0 ] &&
		agent_integrity "$AH"; then
		ok "$1: every record exactly once ($(wc -l <"$T_TMP/p"))"
	else
		fail "$1: every record exactly once (agent $(wc -l <"$T_TMP/a"), platform $(wc -l <"$T_TMP/p"), dup $(uniq -d "$T_TMP/p" | wc -l))"
	fi
}

# ---- deterministic crash points
collect_people 2000 21 || fail "collect"
GRIDAGENT_FAULT=kill-after-seal=2 "$GRIDAGENT" --home "$AH" sync \
	--batch-records 300 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 137 ] && ok "killed -9 right after sealing batch 2" ||
	fail "killed -9 right after sealing batch 2 (exit $rc)"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox")" = 2 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT (SELECT count(*) FROM change WHERE state = 1) + (SELECT count(*) FROM sealed_creation AS s JOIN outbox AS o ON o.seq = s.batch_seq WHERE o.state = 'sealed')")" = 600 ] &&
	ok "... two whole batches sealed, nothing half-done" ||
	fail "... two whole batches sealed, nothing half-done"
expect_exit 0 "the next sync completes" ag sync --batch-records 300
exactly_once "after a kill after sealing"

collect_people 2000 22 || fail "collect"
GRIDAGENT_FAULT=kill-before-ack=3 "$GRIDAGENT" --home "$AH" sync \
	--batch-records 300 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 137 ] && ok "killed -9 after receipt 3 arrived, before recording it" ||
	fail "killed -9 after receipt 3 arrived, before recording it (exit $rc)"
# 7 batches acked before this run, 2 in it; the third's receipt arrived but
# was not recorded, so it is still sealed (how many more are sealed depends
# on how far sealing got beside the uploads).
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state = 'acked'")" = 9 ] &&
	[ "$(sqlite3 "$AH/agent.db" "SELECT state FROM outbox WHERE seq = 10")" = sealed ] &&
	ok "... the device still holds that batch as unacked" ||
	fail "... the device still holds that batch as unacked"
expect_exit 0 "the next sync completes (the platform answers the resend with its stored receipt)" \
	ag sync --batch-records 300
exactly_once "after a kill between receipt and ack"

# ---- a sealed batch leaves only once it is on the disk: the seal is
# committed without waiting for it, and the carrier syncs before sending.
# The second such sync fails (a disk reporting an error): that batch is
# not sent, nor anything after it, and the run says so (exit 74).
collect_people 1500 25 || fail "collect"
before=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
GRIDAGENT_FAULT=wal-sync-fail=2 "$GRIDAGENT" --home "$AH" sync \
	--batch-records 300 >/dev/null 2>"$T_TMP/err"
rc=$?
after=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM batches")
[ "$rc" -eq 74 ] && grep -q 'sync of the WAL' "$T_TMP/err" &&
	ok "the second sync before a send fails: exit 74, said why" ||
	fail "the second sync before a send fails: exit 74, said why (exit $rc)"
[ $((after - before)) -eq 1 ] &&
	ok "... only the batch synced before it was sent" ||
	fail "... only the batch synced before it was sent ($((after - before)) sent)"
expect_exit 0 "the next sync completes" ag sync --batch-records 300
exactly_once "after a failed sync before a send"

# ---- kill -9 at timed points during a large sync
# Each kill has 2,500 new records to send (a sync of 4,000 took 0.2 s
# here: the kills at 0.3, 0.6 and 0.9 s of one 4,000-record run all came
# after it had ended, and checked a store nothing had interrupted).
hits=0 n23=23
for delay in 0.02 0.05 0.08 0.11; do
	n23=$((n23 + 100))
	collect_people 2500 $n23 || fail "collect"
	"$GRIDAGENT" --home "$AH" sync --batch-records 250 >/dev/null 2>&1 &
	p=$!
	sleep "$delay"
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	if [ $? -eq 137 ]; then hit="killed mid-sync"; hits=$((hits + 1)); else hit="sync had ended"; fi
	agent_integrity "$AH" && ok "kill -9 after ${delay}s ($hit): store intact" ||
		fail "kill -9 after ${delay}s ($hit): store intact"
done
# (A sync that had already ended leaves the store intact by itself.)
[ "$hits" -ge 2 ] && ok "... $hits of the 4 kills hit a sync under way" ||
	fail "... $hits of the 4 kills hit a sync under way (wanted 2 or more)"
expect_exit 0 "the sync after the kills completes" ag sync --batch-records 250
exactly_once "after timed kills of the agent"

# ---- the platform killed -9 mid-ingest and restarted
# (It was killed 0.5 s into a sync that takes 0.2 s here: after the
# sync, which exited 0, and nothing was mid-ingest.  The platform now
# kills itself with SIGKILL right after its 5th batch commit, its
# receipt never sent.)
collect_people 4000 24 || fail "collect"
kill -9 "$PF_PID"
wait "$PF_PID" 2>/dev/null
export GRIDPLATFORM_FAULT=kill-after-commit=5
start_platform_at "$HOSTPORT" || fail "platform restarts with the fault"
unset GRIDPLATFORM_FAULT
"$GRIDAGENT" --home "$AH" sync --batch-records 200 --retries 0 \
	>/dev/null 2>"$T_TMP/sync.err"
rc=$?
# (TERM first: a platform still serving would make the wait hang; one
# that killed itself stays a 137.)
kill "$PF_PID" 2>/dev/null
wait "$PF_PID" 2>/dev/null
prc=$?
[ "$rc" -eq 75 ] && [ "$prc" -eq 137 ] &&
	ok "a sync whose platform dies mid-ingest exits 75" ||
	fail "a sync whose platform dies mid-ingest exits 75 (exit $rc, platform $prc)"
[ "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" = ok ] &&
	ok "platform store intact after kill -9" ||
	fail "platform store intact after kill -9"
start_platform_at "$HOSTPORT" || fail "platform restarts"
expect_exit 0 "the device resends and completes" ag sync --batch-records 200
exactly_once "after the platform was killed mid-ingest"

done_testing
