#!/bin/sh
# agent-killimport.sh - kill -9 a 100,000-record bulk import at random
# moments (from its start to just past its usual end, so the commit is
# in range too): every time, the store holds none or all of that import (never a
# part), records and changes agree, and PRAGMA integrity_check is ok.
#
# KILLIMPORT_COUNT and KILLIMPORT_KILLS shrink or grow the run; the delays
# are printed so a failing run can be repeated with KILLIMPORT_DELAYS.
. "$GS_TOP/tests/lib.sh"
unset XDG_RUNTIME_DIR # unlock sessions stay in the test home (agent/keys.h)

A=$GRIDAGENT
H=$T_TMP/home
# Sanitizer builds run several times slower: a smaller import keeps the
# test inside its time budget there.
case "${BUILD_DIR:-}" in *san*) N0=20000 ;; *) N0=100000 ;; esac
N=${KILLIMPORT_COUNT:-$N0}
KILLS=${KILLIMPORT_KILLS:-5}

"$GRIDGEN" --type person --count "$N" --seed 42 >"$T_TMP/in.ndjson" ||
	{ fail "gridgen"; done_testing; exit 1; }
printf 'correct horse battery staple\n' >"$T_TMP/passphrase"
expect_exit 0 "init" "$A" --home "$H" init --grid 440307001001001 --worker w-kill \
	--passphrase-file "$T_TMP/passphrase"

q() {
	sqlite3 "$H/agent.db" "$1"
}

# The invariant after any crash: whole imports only.
invariant() {
	what=$1
	ic=$(q 'PRAGMA integrity_check')
	rec=$(q 'SELECT count(*) FROM record')
	chg=$(q 'SELECT (SELECT count(*) FROM change) + (SELECT count(*) FROM pending_creation)')
	imp=$(q "SELECT count(*) FROM audit WHERE action='import'")
	if [ "$ic" = ok ] && [ $((rec % N)) -eq 0 ] && [ "$rec" -eq "$chg" ] &&
		[ "$rec" -eq $((imp * N)) ]; then
		ok "$what: integrity ok, $rec records = $imp whole imports"
	else
		fail "$what: integrity '$ic', records $rec, changes $chg, imports $imp"
	fi
}

# One import left alone first: all of it arrives, and its duration sets
# the range of the kill delays.
t0=$(date +%s.%N)
expect_exit 0 "an import left alone completes" "$A" --home "$H" collect person \
	--json "$T_TMP/in.ndjson"
t1=$(date +%s.%N)
check "it saved all $N" test "$(q 'SELECT count(*) FROM record')" -eq "$N"
invariant "after the full import"
echo "# a full import took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"

DELAYS=${KILLIMPORT_DELAYS:-$(awk -v k="$KILLS" -v a="$t0" -v b="$t1" 'BEGIN {
	srand(); for (i = 0; i < k; i++) printf "%.2f ", 0.05 + rand() * (b - a) * 1.05 }')}
echo "# delays: $DELAYS (KILLIMPORT_DELAYS to repeat)"
i=0 hits=0
for d in $DELAYS; do
	i=$((i + 1))
	"$A" --home "$H" collect person --json "$T_TMP/in.ndjson" \
		>"$T_TMP/out.$i" 2>"$T_TMP/err.$i" &
	pid=$!
	sleep "$d"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ $? -eq 137 ] && hits=$((hits + 1))
	printed=$(wc -l <"$T_TMP/out.$i" | tr -d ' ')
	echo "# kill $i after ${d}s: $printed uuids printed"
	invariant "kill $i after ${d}s"
	# A uuid printed means the import had committed: it must be there.
	if [ "$printed" -gt 0 ]; then
		u=$(head -n 1 "$T_TMP/out.$i")
		check "kill $i: printed uuids are stored" test \
			"$(q "SELECT count(*) FROM record WHERE uuid='$u'")" -eq 1
	fi
done
# (An import that had already ended, or never started, keeps the
# invariant by itself.)
[ "$hits" -ge 1 ] && ok "$hits of the $i kills hit an import under way" ||
	fail "none of the $i kills hit an import under way"
expect_exit 0 "status still works" "$A" --home "$H" status

done_testing
