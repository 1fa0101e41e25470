#!/bin/sh
# platform-twoserve.sh - two `gridplatform serve` processes on one home
# coexist: they share the store, and a device whose batches reach both
# at once (two syncs, one per URL) has each batch stored once and every
# one acknowledged.  The lookup that makes a retry idempotent is ordered
# by a lock of one process; a batch the other process committed between
# that lookup and the write transaction used to be answered with the raw
# "already_exists: INSERT INTO batches: UNIQUE constraint failed", which
# the device keeps as refused for good (exit 65).
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready
URL1=$PF_URL
"$GRIDPLATFORM" --home "$PH" serve --listen 127.0.0.1:0 \
	>"$T_TMP/serve2.out" 2>"$T_TMP/serve2.log" &
T_PIDS="$T_PIDS $!"
wait_listening "$T_TMP/serve2.out" "$!"
URL2=$LISTEN
[ -n "$URL2" ] && ok "a second serve on the same home starts" ||
	fail "a second serve on the same home starts"

SAVED="$T_TMP/saved"
: >"$SAVED"
bad=0
for round in 1 2 3 4 5 6; do
	"$GRIDGEN" --type person --count 1000 --seed "$round" |
		ag collect person --json - >>"$SAVED" 2>/dev/null ||
		fail "collect round $round"
	ag sync --batch-records 20 >/dev/null 2>"$T_TMP/e1" &
	A=$!
	ag sync --platform "$URL2" --batch-records 20 >/dev/null \
		2>"$T_TMP/e2" &
	B=$!
	wait "$A"
	ra=$?
	wait "$B"
	rb=$?
	if [ "$ra" -ne 0 ] || [ "$rb" -ne 0 ]; then
		bad=$((bad + 1))
		echo "# round $round: exits $ra and $rb"
		cat "$T_TMP/e1" "$T_TMP/e2" | sed 's/^/#   /' | head -n 4
	fi
done
[ "$bad" -eq 0 ] &&
	ok "6 rounds of two syncs at once, one per serve: both exit 0" ||
	fail "6 rounds of two syncs at once, one per serve: both exit 0"
# (Two syncs that all went to one serve, the other idle, pass the rest.)
n1=$(grep -c 'seq [0-9]* from device' "$PH/serve.log")
n2=$(grep -c 'seq [0-9]* from device' "$T_TMP/serve2.log")
[ "$n1" -ge 1 ] && [ "$n2" -ge 1 ] &&
	ok "... each serve committed batches ($n1 and $n2)" ||
	fail "... each serve committed batches ($n1 and $n2)"
[ "$(sqlite3 "$AH/agent.db" "SELECT count(*) FROM outbox WHERE state = 'rejected'")" = 0 ] &&
	ok "... no batch kept as refused" || fail "... no batch kept as refused"
expect_exit 0 "a last sync" ag sync
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
[ "$(wc -l <"$T_TMP/p")" -eq 6000 ] && cmp -s "$T_TMP/a" "$T_TMP/p" &&
	ok "the platform holds the device's 6000 records" ||
	fail "the platform holds the device's 6000 records"
if "$PY" "$GS_TOP/tests/checker/gscheck.py" --quiescent --quiet \
	--platform "$PH/platform.db" --agent "$AH/agent.db:$SAVED" \
	>"$T_TMP/check.out" 2>&1; then
	ok "invariants hold"
else
	fail "invariants hold"
	sed 's/^/# /' "$T_TMP/check.out" | head -n 10
fi
done_testing
