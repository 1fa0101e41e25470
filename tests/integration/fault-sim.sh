#!/bin/sh
# fault-sim.sh - the fast profile of the seeded field simulation
# (tests/sim/gssim.py): a few devices over a few simulated days with
# crashes, cut links, coverage gaps, shared edits and platform kills, then
# the invariant checker.  GS_SIM_SEEDS, GS_SIM_DEVICES and GS_SIM_DAYS
# scale it (make campaign runs 100 devices x 14 days, and many small
# worlds); a failure prints the seed that replays its schedule.
. "$GS_TOP/tests/lib.sh"
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

SEED=${GS_SEED:-$(date +%s)}
SEEDS=${GS_SIM_SEEDS:-1}
DEVICES=${GS_SIM_DEVICES:-4}
DAYS=${GS_SIM_DAYS:-2}
build=${BUILD_DIR#"$GS_TOP"/}
i=0
while [ "$i" -lt "$SEEDS" ]; do
	s=$((SEED + i))
	if "$PY" "$GS_TOP/tests/sim/gssim.py" --seed "$s" --devices "$DEVICES" \
		--days "$DAYS" --build "$build" --quiet >"$T_TMP/sim.out" 2>&1; then
		ok "simulation seed $s: $(sed -n 's/^gssim: seed [0-9]*: //p' "$T_TMP/sim.out" | tail -n 1)"
	else
		fail "simulation seed $s (replay: GS_SEED=$s)"
		sed 's/^/# /' "$T_TMP/sim.out" | tail -n 25
	fi
	i=$((i + 1))
done
done_testing
