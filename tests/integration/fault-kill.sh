#!/bin/sh
# fault-kill.sh - kill -9 campaign with the invariant checker.
#
# The agent is killed with SIGKILL after a random statement step of a save
# (collect, edit, delete) or of a sync (probe, seal, upload, receipt, ack):
# GRIDSYNC_FAULT=kill-at-step=K makes sync/db.c raise SIGKILL right after
# the Kth SQL step of the process, so K = 1, 2, ... crashes it between any
# two statements, just before and just after every COMMIT.  The platform is
# killed at random points of ingest the same way, and just before / just
# after a batch's COMMIT (GRIDPLATFORM_FAULT).  tests/checker/gscheck.py
# checks invariants 1-5 along the way and, after a final clean sync, that
# everything reached the platform exactly once.
#
# Knobs (the campaign raises them): GS_SEED (default: the time),
# GS_AGENT_KILLS (200), GS_PLATFORM_KILLS (100).  A failure prints the
# seed; rerun with GS_SEED=that to replay the same choice of points.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

SEED=${GS_SEED:-$(date +%s)}
# Under the sanitizers (make check) every process start costs several
# times more: the same coverage is sampled there (60 + 30 points), the
# normal run does 200 + 100, the campaign 1,000 + 200.
if ldd "$GRIDAGENT" 2>/dev/null | grep -q 'libasan'; then
	AGENT_KILLS=${GS_AGENT_KILLS:-60}
	PF_KILLS=${GS_PLATFORM_KILLS:-30}
else
	AGENT_KILLS=${GS_AGENT_KILLS:-200}
	PF_KILLS=${GS_PLATFORM_KILLS:-100}
fi
CHECK="$PY $GS_TOP/tests/checker/gscheck.py"
echo "# seed $SEED (replay: GS_SEED=$SEED)"
S=$SEED

# rnd N: R = a pseudo-random number in 1..N (an LCG: replayable from the
# seed, identical in every POSIX shell).
rnd() {
	S=$(( (S * 1103515245 + 12345) % 2147483648 ))
	R=$(( (S / 65536) % $1 + 1 ))
}

sync_ready
HOSTPORT=${PF_URL#http://}
SAVED="$T_TMP/saved"
: >"$SAVED"
"$GRIDGEN" --type person --count 400 --seed "$SEED" >"$T_TMP/people" ||
	fail "gridgen"
line=0

# one_person: the next generated person's JSON on stdout.
one_person() {
	line=$((line + 1))
	[ "$line" -gt 400 ] && line=1
	sed -n "${line}p" "$T_TMP/people"
}

checks=0 violations=0
# checker [--quiescent]: run gscheck; count the run and its verdict.
checker() {
	checks=$((checks + 1))
	if ! $CHECK --seed "$SEED" --quiet --platform "$PH/platform.db" \
		--agent "$AH/agent.db:$SAVED" "$@" >"$T_TMP/check.out" 2>&1; then
		violations=$((violations + 1))
		sed 's/^/# /' "$T_TMP/check.out" | head -n 20
	fi
}

# ---- the agent, killed in saves and syncs
t0=$(date +%s)
killed=0 points=0 iter=0 saves=0
while [ "$killed" -lt "$AGENT_KILLS" ] && [ "$iter" -lt $((AGENT_KILLS * 3)) ]; do
	iter=$((iter + 1))
	# A save: new record most of the time, else an edit or a delete of
	# a saved one.  A save that answered is recorded as "reported".
	rnd 16
	k=$R
	rnd 10
	if [ "$R" -le 7 ] || [ ! -s "$SAVED" ]; then
		one_person | GRIDSYNC_FAULT=kill-at-step=$k "$GRIDAGENT" \
			--home "$AH" collect person --json - >"$T_TMP/uuid" 2>/dev/null
		rc=$?
		[ "$rc" -eq 0 ] && cat "$T_TMP/uuid" >>"$SAVED"
	else
		n=$(wc -l <"$SAVED")
		rnd "$n"
		u=$(sed -n "${R}p" "$SAVED")
		if [ "$R" -le 2 ]; then
			GRIDSYNC_FAULT=kill-at-step=$k "$GRIDAGENT" --home "$AH" \
				delete "$u" >/dev/null 2>&1
		else
			GRIDSYNC_FAULT=kill-at-step=$k "$GRIDAGENT" --home "$AH" \
				edit "$u" "phone=1380013$((8000 + iter % 1000))" \
				>/dev/null 2>&1
		fi
		rc=$?
	fi
	points=$((points + 1))
	[ "$rc" -eq 137 ] && killed=$((killed + 1))
	[ "$rc" -eq 0 ] && saves=$((saves + 1))
	# A sync killed after a random step (a sync of a few changes takes
	# some 40-60 steps; beyond that it completes).
	rnd 70
	GRIDSYNC_FAULT=kill-at-step=$R "$GRIDAGENT" --home "$AH" sync \
		--retries 0 >/dev/null 2>&1
	rc=$?
	points=$((points + 1))
	[ "$rc" -eq 137 ] && killed=$((killed + 1))
	if [ $((iter % 40)) -eq 0 ]; then
		checker
	fi
done
echo "# agent: $points runs, $killed killed, $saves saves answered ($(( $(date +%s) - t0 ))s)"
[ "$killed" -ge "$AGENT_KILLS" ] && ok "the agent was killed -9 at $killed points of saves and syncs" ||
	fail "the agent was killed -9 at $killed points (wanted $AGENT_KILLS)"
checker
expect_exit 0 "after the agent kills, a clean sync completes" ag sync
checker --quiescent
[ "$violations" -eq 0 ] && ok "the checker found no violation in $checks checks (agent kills)" ||
	fail "the checker found violations in $violations of $checks checks (seed $SEED)"

# ---- the platform, killed in ingest
t1=$(date +%s)
pf_killed=0 iter=0
stop_platform

# pf_starts K: does a platform whose process dies after its Kth SQL step
# get through start-up?  (A single try; the fault is the process's own.)
pf_starts() {
	# Removed first: the redirection truncates it only once the child
	# runs, and reading the last probe's "listening on" line made the
	# bisection below find too few start-up steps (7, not 13), so the
	# kill points fell in start-up and the platform "did not restart".
	rm -f "$T_TMP/probe.out"
	GRIDSYNC_FAULT=kill-at-step=$1 "$GRIDPLATFORM" --home "$PH" serve \
		--listen 127.0.0.1:0 >"$T_TMP/probe.out" 2>/dev/null &
	pp=$!
	j=0
	# Up to 10 s: a process killed at its step exits at once, so only a
	# loaded machine's slow start-up comes near it.  On giving up the
	# probe is killed before the wait: waiting on a platform that is
	# serving (slowly started) hung the suite once.
	while [ $j -lt 500 ]; do
		if grep -q '^listening on ' "$T_TMP/probe.out" 2>/dev/null; then
			kill "$pp" 2>/dev/null
			wait "$pp" 2>/dev/null
			return 0
		fi
		kill -0 "$pp" 2>/dev/null || break
		sleep 0.02
		j=$((j + 1))
	done
	kill "$pp" 2>/dev/null
	wait "$pp" 2>/dev/null
	return 1
}
# The steps of start-up (so that the kill points fall in ingest): the
# smallest K that survives, by bisection.
lo=1 hi=400
while [ "$lo" -lt "$hi" ]; do
	mid=$(( (lo + hi) / 2 ))
	if pf_starts "$mid"; then hi=$mid; else lo=$((mid + 1)); fi
done
BOOT=$lo
echo "# the platform takes $BOOT SQL steps to start"
while [ "$pf_killed" -lt "$PF_KILLS" ] && [ "$iter" -lt $((PF_KILLS * 3)) ]; do
	iter=$((iter + 1))
	rnd 4
	case $R in
	1) export GRIDPLATFORM_FAULT=kill-before-commit=1 ;;
	2) export GRIDPLATFORM_FAULT=kill-after-commit=1 ;;
	*)
		# Serving start-up takes a few steps; an ingest some 20-40.
		rnd 40
		export GRIDSYNC_FAULT=kill-at-step=$((BOOT + R))
		;;
	esac
	start_platform_at "$HOSTPORT"
	rc=$?
	unset GRIDPLATFORM_FAULT GRIDSYNC_FAULT
	[ "$rc" -eq 0 ] || { fail "platform restarts"; break; }
	one_person | ag collect person --json - >>"$SAVED" 2>/dev/null
	ag sync --retries 0 >/dev/null 2>&1
	if kill -0 "$PF_PID" 2>/dev/null; then
		stop_platform
	else
		wait "$PF_PID" 2>/dev/null
		pf_killed=$((pf_killed + 1))
		if [ "$(sqlite3 "$PH/platform.db" 'PRAGMA integrity_check')" != ok ]; then
			violations=$((violations + 1))
			echo "# platform integrity_check failed after kill $pf_killed"
		fi
	fi
	if [ $((iter % 25)) -eq 0 ]; then
		checker
	fi
done
echo "# platform: $iter runs, $pf_killed killed ($(( $(date +%s) - t1 ))s)"
[ "$pf_killed" -ge "$PF_KILLS" ] && ok "the platform was killed -9 at $pf_killed points of ingest" ||
	fail "the platform was killed -9 at $pf_killed points (wanted $PF_KILLS)"
start_platform_at "$HOSTPORT" || fail "platform restarts"
expect_exit 0 "after the platform kills, a clean sync completes" ag sync
checker --quiescent
[ "$violations" -eq 0 ] && ok "the checker found no violation in $checks checks (all kills)" ||
	fail "the checker found violations in $violations of $checks checks (seed $SEED)"
n=$(sqlite3 "$PH/platform.db" "SELECT count(*) FROM records")
[ "$n" -gt 0 ] && ok "the platform holds $n records" || fail "the platform holds records"
echo "# kill-points agent=$killed platform=$pf_killed checks=$checks violations=$violations seed=$SEED"
done_testing
