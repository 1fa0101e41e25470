#!/bin/sh
# campaign.sh - the long fault campaign of issue 7 (`make campaign`), and
# its record, tests/CAMPAIGN.md.
#
#   BUILD=build CAMPAIGN=full|quick [CAMPAIGN_PARTS="kill cut ..."] \
#       sh tests/checker/campaign.sh
#
# full:  kill -9 at 1,000 agent points and 200 platform points; a 1 MiB
#        batch cut at every KiB; power cuts at every sync point with 10
#        torn variants each; the in-process simulator (tests/sim/sim.c)
#        over CAMPAIGN_SEEDS (10,000) worlds of SIM_DEVICES x SIM_DAYS
#        (5 x 4) in two processes and CAMPAIGN_BIG_SEEDS (20) worlds of
#        100 devices x 14 days, and tests/sim/gssim.py over the real
#        binaries (one world of 100 x 14) as the slow cross-check;
#        FUZZ_SECONDS (600) of fuzzing per harness, FUZZ_JOBS (2) at
#        once; the allocation torture.
# quick: the same parts, reduced (what a session can afford).
# CAMPAIGN_PARTS picks parts (default: kill cut powerloss torture sim
# fuzz); the others are recorded as not run.  Knobs: CAMPAIGN_SEEDS,
# CAMPAIGN_BIG_SEEDS, SIM_DEVICES, SIM_DAYS, SIM_PY_DEVICES, SIM_PY_DAYS,
# FUZZ_SECONDS, GS_SEED.
# Every part's log is kept under $BUILD/campaign/; the numbers go into
# tests/CAMPAIGN.md ("Runs" table appended, newest last).
set -u
BUILD=${BUILD:-build}
CAMPAIGN=${CAMPAIGN:-full}
PARTS=${CAMPAIGN_PARTS:-kill cut powerloss torture sim fuzz}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
SEED=${GS_SEED:-$(date +%s)}
logs="$BUILD/campaign"
mkdir -p "$logs"
SIM_DEV=${SIM_DEVICES:-5} SIM_DAYS=${SIM_DAYS:-4}
FJ=${FUZZ_JOBS:-2}
export FJ
if [ "$CAMPAIGN" = full ]; then
	AK=1000 PK=200 STEP=1024 TEARS=10 BIG_DEV=100 BIG_DAYS=14
	SEEDS=${CAMPAIGN_SEEDS:-10000} BIG=${CAMPAIGN_BIG_SEEDS:-20}
	PY_DEV=${SIM_PY_DEVICES:-100} PY_DAYS=${SIM_PY_DAYS:-14}
	FS=${FUZZ_SECONDS:-600}
else
	AK=300 PK=100 STEP=1024 TEARS=4 BIG_DEV=100 BIG_DAYS=14
	SEEDS=${CAMPAIGN_SEEDS:-200} BIG=${CAMPAIGN_BIG_SEEDS:-1}
	PY_DEV=${SIM_PY_DEVICES:-30} PY_DAYS=${SIM_PY_DAYS:-5}
	FS=${FUZZ_SECONDS:-30}
fi
part() {
	case " $PARTS " in *" $1 "*) return 0 ;; esac
	return 1
}
t_start=$(date +%s)
echo "campaign ($CAMPAIGN): seed $SEED, logs in $logs"
make --no-print-directory BUILD="$BUILD" all unit \
	"$BUILD/tools/gsproxy" "$BUILD/tools/gssim" >/dev/null || exit 1
export GS_SEED="$SEED"

# ---- kill -9
kill_rc=0 kill_line="" kill_s=0 ran_kill=0
if part kill; then
	ran_kill=1
	t0=$(date +%s)
	GS_AGENT_KILLS=$AK GS_PLATFORM_KILLS=$PK BUILD=$BUILD sh tests/run.sh fault-kill \
		>"$logs/kill.out" 2>&1
	kill_rc=$?
	cp "$BUILD/test-logs/fault-kill.log" "$logs/kill.log"
	kill_line=$(sed -n 's/^# kill-points //p' "$logs/kill.log" | tail -n 1)
	kill_s=$(( $(date +%s) - t0 ))
	echo "kill: $kill_line (${kill_s}s)"
fi

# ---- cuts
cut_rc=0 cut_up="" cut_down="" cut_rand=0 cut_s=0 ran_cut=0
if part cut; then
	ran_cut=1
	t0=$(date +%s)
	GS_CUT_STEP=$STEP GS_CUT_FROM=$STEP BUILD=$BUILD sh tests/run.sh fault-cut \
		>"$logs/cut.out" 2>&1
	cut_rc=$?
	cp "$BUILD/test-logs/fault-cut.log" "$logs/cut.log"
	cut_up=$(sed -n 's/^# envelope \([0-9]*\) bytes, \([0-9]*\) cuts.*/\2 cuts of a \1-byte batch/p' "$logs/cut.log")
	cut_down=$(sed -n 's/^# \([0-9]*\) cuts every 64 bytes.*/\1/p' "$logs/cut.log")
	cut_rand=$(sed -n 's/^ok [0-9]* - \.\.\. the proxy did cut (\([0-9]*\) cuts)/\1/p' "$logs/cut.log" |
		awk '{s += $1} END {print s + 0}')
	cut_s=$(( $(date +%s) - t0 ))
	echo "cut: $cut_up every $STEP bytes, $cut_down answer cuts, $cut_rand random (${cut_s}s)"
fi

# ---- power loss
pl_rc=0 pl_line="" teeth="" pl_s=0 ran_pl=0
if part powerloss; then
	ran_pl=1
	t0=$(date +%s)
	GS_TOP="$top" GS_POWERLOSS_TEARS=$TEARS "$BUILD/tests/agent-powerloss" \
		>"$logs/powerloss.log" 2>&1
	pl_rc=$?
	pl_line=$(sed -n 's/^\([0-9]* power cuts.*\)/\1/p' "$logs/powerloss.log")
	teeth=$(sed -n 's/^lying disk: \([0-9]*\).*/\1/p' "$logs/powerloss.log")
	pl_s=$(( $(date +%s) - t0 ))
	echo "power loss: $pl_line (${pl_s}s)"
fi

# ---- torture
tor_rc=0 tor_allocs=0 tor_s=0 ran_tor=0
if part torture; then
	ran_tor=1
	t0=$(date +%s)
	"$BUILD/tests/sync-torture" >"$logs/torture.log" 2>&1
	tor_rc=$?
	tor_allocs=$(sed -n 's/^[a-z]*: \([0-9]*\) allocations.*/\1/p' "$logs/torture.log" |
		awk '{s += $1} END {print s + 0}')
	tor_s=$(( $(date +%s) - t0 ))
	echo "torture: $tor_allocs failed allocations (${tor_s}s)"
fi

# ---- simulation: the in-process simulator over many small worlds (two
# processes) and a few big ones, then gssim.py over the real binaries as
# the slow cross-check
sim_fail=0 sim_runs=0 sim_sum="" sim_s=0 sim_per="" py_sum="" py_fail=0 ran_sim=0
if part sim; then
	ran_sim=1
	t0=$(date +%s)
	half=$((SEEDS / 2))
	: >"$logs/sim-a.log"
	: >"$logs/sim-b.log"
	: >"$logs/sim-big.log"
	if [ "$half" -gt 0 ]; then
		nice -n 19 "$BUILD/tools/gssim" --seed $((SEED + 1000)) \
			--seeds "$half" --devices "$SIM_DEV" --days "$SIM_DAYS" \
			>"$logs/sim-a.log" 2>&1 &
		pa=$!
	fi
	if [ $((SEEDS - half)) -gt 0 ]; then
		nice -n 19 "$BUILD/tools/gssim" --seed $((SEED + 1000 + half)) \
			--seeds $((SEEDS - half)) --devices "$SIM_DEV" \
			--days "$SIM_DAYS" >"$logs/sim-b.log" 2>&1
	fi
	[ "$half" -gt 0 ] && wait "$pa"
	if [ "$BIG" -gt 0 ]; then
		nice -n 19 "$BUILD/tools/gssim" --seed $((SEED + 500)) \
			--seeds "$BIG" --devices "$BIG_DEV" --days "$BIG_DAYS" \
			>"$logs/sim-big.log" 2>&1
	fi
	sim_s=$(( $(date +%s) - t0 ))
	sim_runs=$(cat "$logs/sim-a.log" "$logs/sim-b.log" "$logs/sim-big.log" |
		grep -c '^gssim: seed [0-9]*: [0-9]* devices')
	sim_fail=$(cat "$logs/sim-a.log" "$logs/sim-b.log" "$logs/sim-big.log" |
		grep -c '^gssim: FAILED seed')
	sim_sum=$("$PY" tests/sim/summary.py "$logs/sim-a.log" "$logs/sim-b.log" \
		"$logs/sim-big.log")
	sim_per=$(sed -n 's/^gssim: \([0-9]*\) seeds, [0-9]* failed, \([0-9.]*\) s per seed (\([0-9.]*\) s of CPU)/\1 seeds at \3 s CPU (\2 s wall) each/p' \
		"$logs/sim-a.log" "$logs/sim-b.log" "$logs/sim-big.log" |
		tr '\n' ';' | sed 's/;$//; s/;/; /g')
	echo "sim: $sim_runs seeds, $sim_fail failed: $sim_sum (${sim_s}s; per seed: $sim_per)"
	: >"$logs/sim-py.log"
	"$PY" tests/sim/gssim.py --seed "$SEED" --devices "$PY_DEV" \
		--days "$PY_DAYS" --build "$BUILD" --quiet >>"$logs/sim-py.log" 2>&1 ||
		py_fail=1
	py_sum=$(sed -n 's/^gssim: seed [0-9]*: //p' "$logs/sim-py.log" | tail -n 1)
	echo "sim (gssim.py cross-check): $py_sum"
	[ "$py_fail" -eq 0 ] || sim_fail=$((sim_fail + 1))
fi

# ---- fuzzing
fuzz_rc=0 fuzz_s=0 ran_fuzz=0
if part fuzz; then
	ran_fuzz=1
	t0=$(date +%s)
	rm -f "${FUZZ_BUILD:-build/fuzz}/fuzz-results.txt"
	make --no-print-directory fuzz FUZZ_BUILD="${FUZZ_BUILD:-build/fuzz}" \
		FUZZ_SECONDS="$FS" FUZZ_JOBS="$FJ" >"$logs/fuzz.log" 2>&1
	fuzz_rc=$?
	cp "${FUZZ_BUILD:-build/fuzz}/fuzz-results.txt" "$logs/fuzz-results.txt" 2>/dev/null
	fuzz_s=$(( $(date +%s) - t0 ))
	echo "fuzz: $(awk '{print $1, $3, $5}' "$logs/fuzz-results.txt" 2>/dev/null | tr '\n' ';') (${fuzz_s}s)"
fi

# ---- the record
total_s=$(( $(date +%s) - t_start ))
"$PY" - "$logs" "$CAMPAIGN" "$SEED" "$total_s" \
	"$kill_rc" "$kill_line" "$kill_s" \
	"$cut_rc" "$cut_up" "$cut_down" "$cut_rand" "$STEP" "$cut_s" \
	"$pl_rc" "$pl_line" "$teeth" "$TEARS" "$pl_s" \
	"$tor_rc" "$tor_allocs" "$tor_s" \
	"$sim_runs" "$sim_fail" "$sim_sum" "$BIG" "$BIG_DEV" "$BIG_DAYS" "$SEEDS" "$sim_s" \
	"$fuzz_rc" "$FS" "$fuzz_s" \
	"$SIM_DEV" "$SIM_DAYS" "$sim_per" "$py_sum" "$py_fail" "$PY_DEV" "$PY_DAYS" \
	"$ran_kill $ran_cut $ran_pl $ran_tor $ran_sim $ran_fuzz" <<'EOF'
import os, subprocess, sys, time
(logs, mode, seed, total, kill_rc, kill_line, kill_s, cut_rc, cut_up,
 cut_down, cut_rand, step, cut_s, pl_rc, pl_line, teeth, tears, pl_s,
 tor_rc, tor_allocs, tor_s, sim_runs, sim_fail, sim_sum, big, big_dev,
 big_days, seeds, sim_s, fuzz_rc, fs, fuzz_s, sim_dev, sim_days, sim_per,
 py_sum, py_fail, py_dev, py_days, ran) = sys.argv[1:]
ran = dict(zip(["kill", "cut", "pl", "tor", "sim", "fuzz"],
               [x == "1" for x in ran.split()]))
path = "tests/CAMPAIGN.md"
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                        capture_output=True).stdout.decode().strip()
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
def verdict(rc):
    return "ok" if rc == "0" else "FAILED (see log)"
fuzz = []
fr = os.path.join(logs, "fuzz-results.txt")
if os.path.exists(fr):
    for line in open(fr):
        p = dict(x.split("=", 1) for x in line.split()[1:])
        fuzz.append("%s %s execs, %s crashes" % (line.split()[0],
                    format(int(p.get("execs", 0)), ","), p.get("crashes")))
kv = dict(x.split("=", 1) for x in kill_line.split()) if kill_line else {}
viol = int(kv.get("violations", "0") or 0)
lines = []
lines.append("### %s campaign, %s UTC, commit %s, seed %s" % (
    mode, time.strftime("%Y-%m-%d %H:%M", time.gmtime()), commit, seed))
lines.append("")
lines.append("Machine: %s, %d CPUs (shared with other work). Wall time %s s."
             % (cpu, os.cpu_count(), total))
lines.append("")
lines.append("| part | what ran | violations / findings | verdict |")
lines.append("|---|---|---|---|")
lines.append("| kill -9 (fault-kill.sh) | agent killed at %s points of saves and syncs, platform at %s points of ingest, %s checker runs (%s s) | %d invariant violations | %s |" % (
    kv.get("agent", "?"), kv.get("platform", "?"), kv.get("checks", "?"), kill_s, viol, verdict(kill_rc)))
lines.append("| connection cuts (fault-cut.sh) | %s every %s bytes; %s cuts of answers every 64 bytes; %s random cuts; duplicated requests; a stall (%s s) | checker after each part | %s |" % (
    cut_up or "?", step, cut_down or "?", cut_rand, cut_s, verdict(cut_rc)))
lines.append("| power loss (agent-powerloss) | %s; %s torn variants per sync point; control with a lying disk lost %s saves (%s s) | see left | %s |" % (
    pl_line or "?", tears, teeth or "?", pl_s, verdict(pl_rc)))
lines.append("| allocation torture (sync-torture) | %s allocations failed in turn over 9 sync/ operations (%s s) | crashes/leaks: %s | %s |" % (
    tor_allocs, tor_s, "none" if tor_rc == "0" else "see log", verdict(tor_rc)))
lines.append("| simulation (gssim, in-process, tests/sim/sim.c) | %s seeds: %s worlds of %s devices x %s days and %s of %s x %s; %s; %s (%s s wall in all) | %s failing seeds | %s |" % (
    sim_runs, seeds, sim_dev, sim_days, big, big_dev, big_days, sim_sum, sim_per, sim_s, sim_fail, "ok" if sim_fail == "0" else "FAILED (see sim-*.log)"))
lines.append("| simulation cross-check (gssim.py, real binaries) | 1 world of %s devices x %s days: %s | %s | %s |" % (
    py_dev, py_days, py_sum or "?", "0 violations" if py_fail == "0" else "violations", "ok" if py_fail == "0" else "FAILED (see sim-py.log)"))
lines.append("| fuzzing (make fuzz) | %s s per harness, %s at once: %s (%s s) | crashes listed left | %s |" % (
    fs, os.environ.get("FJ", "1"), "; ".join(fuzz) or "not run", fuzz_s, verdict(fuzz_rc)))
lines = [l for l in lines if not any(
    l.startswith("| " + name) and not ran[key] for name, key in (
        ("kill", "kill"), ("connection", "cut"), ("power", "pl"),
        ("allocation", "tor"), ("simulation", "sim"), ("fuzzing", "fuzz")))]
lines.append("")
lines.append("Parts not run: %s." % (", ".join(
    k for k, v in ran.items() if not v) or "none"))
lines.append("")
head = ("# Fault campaign results\n\n"
        "Written by `make campaign` (tests/checker/campaign.sh); one section "
        "per run, newest last. A run records what was injected and what the "
        "checker (tests/checker/gscheck.py, invariants 1-5 of DESIGN.md "
        "section 8) and the sanitizers found. Logs of the run are in "
        "$BUILD/campaign/.\n\n## Runs\n\n")
text = open(path).read() if os.path.exists(path) else head
open(path, "w").write(text.rstrip("\n") + "\n\n" + "\n".join(lines))
print("\n".join(lines))
EOF
[ "$kill_rc" -eq 0 ] && [ "$cut_rc" -eq 0 ] && [ "$pl_rc" -eq 0 ] &&
	[ "$tor_rc" -eq 0 ] && [ "$sim_fail" -eq 0 ] && [ "$fuzz_rc" -eq 0 ]
