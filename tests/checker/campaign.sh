#!/bin/sh
# campaign.sh - the long fault campaign of issue 7 (`make campaign`), and
# its record, tests/CAMPAIGN.md.
#
#   BUILD=build CAMPAIGN=full|quick sh tests/checker/campaign.sh
#
# full:  kill -9 at 1,000 agent points and 200 platform points; a 1 MiB
#        batch cut at every KiB; power cuts at every sync point with 10
#        torn variants each; the simulation with 100 devices x 14 days and
#        CAMPAIGN_SEEDS (10,000) small worlds (3 devices x 2 days);
#        FUZZ_SECONDS (600) of fuzzing per harness; the allocation
#        torture.
# quick: the same parts, reduced (what a session can afford).
# Knobs: CAMPAIGN_SEEDS, CAMPAIGN_BIG_SEEDS, FUZZ_SECONDS, GS_SEED.
# Every part's log is kept under $BUILD/campaign/; the numbers go into
# tests/CAMPAIGN.md ("Runs" table appended, newest last).
set -u
BUILD=${BUILD:-build}
CAMPAIGN=${CAMPAIGN:-full}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
SEED=${GS_SEED:-$(date +%s)}
logs="$BUILD/campaign"
mkdir -p "$logs"
if [ "$CAMPAIGN" = full ]; then
	AK=1000 PK=200 STEP=1024 TEARS=10 BIG_DEV=100 BIG_DAYS=14
	SEEDS=${CAMPAIGN_SEEDS:-10000} BIG=${CAMPAIGN_BIG_SEEDS:-3}
	FS=${FUZZ_SECONDS:-600}
else
	AK=300 PK=100 STEP=1024 TEARS=4 BIG_DEV=30 BIG_DAYS=5
	SEEDS=${CAMPAIGN_SEEDS:-20} BIG=${CAMPAIGN_BIG_SEEDS:-1}
	FS=${FUZZ_SECONDS:-30}
fi
t_start=$(date +%s)
echo "campaign ($CAMPAIGN): seed $SEED, logs in $logs"
make --no-print-directory BUILD="$BUILD" all unit \
	"$BUILD/tools/gsproxy" >/dev/null || exit 1
export GS_SEED="$SEED"

# ---- kill -9
t0=$(date +%s)
GS_AGENT_KILLS=$AK GS_PLATFORM_KILLS=$PK BUILD=$BUILD sh tests/run.sh fault-kill \
	>"$logs/kill.out" 2>&1
kill_rc=$?
cp "$BUILD/test-logs/fault-kill.log" "$logs/kill.log"
kill_line=$(sed -n 's/^# kill-points //p' "$logs/kill.log" | tail -n 1)
kill_s=$(( $(date +%s) - t0 ))
echo "kill: $kill_line (${kill_s}s)"

# ---- cuts
t0=$(date +%s)
GS_CUT_STEP=$STEP GS_CUT_FROM=$STEP BUILD=$BUILD sh tests/run.sh fault-cut \
	>"$logs/cut.out" 2>&1
cut_rc=$?
cp "$BUILD/test-logs/fault-cut.log" "$logs/cut.log"
cut_up=$(sed -n 's/^# envelope \([0-9]*\) bytes, \([0-9]*\) cuts.*/\2 cuts of a \1-byte batch/p' "$logs/cut.log")
cut_down=$(sed -n 's/^# \([0-9]*\) cuts every 64 bytes.*/\1/p' "$logs/cut.log")
cut_rand=$(sed -n 's/^# random \(up\|down\): \([0-9]*\) cuts/\2/p' "$logs/cut.log" |
	awk '{s += $1} END {print s + 0}')
cut_s=$(( $(date +%s) - t0 ))
echo "cut: $cut_up every $STEP bytes, $cut_down answer cuts, $cut_rand random (${cut_s}s)"

# ---- power loss
t0=$(date +%s)
GS_TOP="$top" GS_POWERLOSS_TEARS=$TEARS "$BUILD/tests/agent-powerloss" \
	>"$logs/powerloss.log" 2>&1
pl_rc=$?
pl_line=$(sed -n 's/^\([0-9]* power cuts.*\)/\1/p' "$logs/powerloss.log")
teeth=$(sed -n 's/^lying disk: \([0-9]*\).*/\1/p' "$logs/powerloss.log")
pl_s=$(( $(date +%s) - t0 ))
echo "power loss: $pl_line (${pl_s}s)"

# ---- torture
t0=$(date +%s)
"$BUILD/tests/sync-torture" >"$logs/torture.log" 2>&1
tor_rc=$?
tor_allocs=$(sed -n 's/^[a-z]*: \([0-9]*\) allocations.*/\1/p' "$logs/torture.log" |
	awk '{s += $1} END {print s + 0}')
tor_s=$(( $(date +%s) - t0 ))
echo "torture: $tor_allocs failed allocations (${tor_s}s)"

# ---- simulation: big worlds, then many small ones
t0=$(date +%s)
: >"$logs/sim.log"
sim_fail=0 sim_runs=0 i=0
while [ "$i" -lt "$BIG" ]; do
	"$PY" tests/sim/gssim.py --seed $((SEED + i)) --devices "$BIG_DEV" \
		--days "$BIG_DAYS" --build "$BUILD" --quiet >>"$logs/sim.log" 2>&1 ||
		sim_fail=$((sim_fail + 1))
	sim_runs=$((sim_runs + 1))
	i=$((i + 1))
done
i=0
while [ "$i" -lt "$SEEDS" ]; do
	"$PY" tests/sim/gssim.py --seed $((SEED + 1000 + i)) --devices 3 \
		--days 2 --build "$BUILD" --quiet >>"$logs/sim.log" 2>&1 ||
		sim_fail=$((sim_fail + 1))
	sim_runs=$((sim_runs + 1))
	i=$((i + 1))
done
sim_s=$(( $(date +%s) - t0 ))
sim_sum=$("$PY" - "$logs/sim.log" <<'EOF'
import re, sys
keys = ["saves", "killed_saves", "edits", "shared", "syncs", "killed_syncs",
        "cut_up", "cut_down", "offline", "pf_kills"]
tot = dict.fromkeys(keys, 0)
for line in open(sys.argv[1]):
    m = re.search(r"(\d+) saves \((\d+) killed\), (\d+) edits, (\d+) shared "
                  r"edits, (\d+) syncs \((\d+) killed, (\d+) cut up, (\d+) cut "
                  r"down\), (\d+) offline device-days, (\d+) platform kills",
                  line)
    if m:
        for k, v in zip(keys, m.groups()):
            tot[k] += int(v)
print("%(saves)d saves (%(killed_saves)d killed), %(edits)d edits, "
      "%(shared)d shared edits, %(syncs)d syncs (%(killed_syncs)d killed, "
      "%(cut_up)d cut up, %(cut_down)d cut down), %(offline)d offline "
      "device-days, %(pf_kills)d platform kills" % tot)
EOF
)
echo "sim: $sim_runs seeds, $sim_fail failed: $sim_sum (${sim_s}s)"

# ---- fuzzing
t0=$(date +%s)
rm -f "${FUZZ_BUILD:-build/fuzz}/fuzz-results.txt"
make --no-print-directory fuzz FUZZ_BUILD="${FUZZ_BUILD:-build/fuzz}" \
	FUZZ_SECONDS="$FS" >"$logs/fuzz.log" 2>&1
fuzz_rc=$?
cp "${FUZZ_BUILD:-build/fuzz}/fuzz-results.txt" "$logs/fuzz-results.txt" 2>/dev/null
fuzz_s=$(( $(date +%s) - t0 ))
echo "fuzz: $(awk '{print $1, $3, $5}' "$logs/fuzz-results.txt" 2>/dev/null | tr '\n' ';') (${fuzz_s}s)"

# ---- the record
total_s=$(( $(date +%s) - t_start ))
"$PY" - "$logs" "$CAMPAIGN" "$SEED" "$total_s" \
	"$kill_rc" "$kill_line" "$kill_s" \
	"$cut_rc" "$cut_up" "$cut_down" "$cut_rand" "$STEP" "$cut_s" \
	"$pl_rc" "$pl_line" "$teeth" "$TEARS" "$pl_s" \
	"$tor_rc" "$tor_allocs" "$tor_s" \
	"$sim_runs" "$sim_fail" "$sim_sum" "$BIG" "$BIG_DEV" "$BIG_DAYS" "$SEEDS" "$sim_s" \
	"$fuzz_rc" "$FS" "$fuzz_s" <<'EOF'
import os, subprocess, sys, time
(logs, mode, seed, total, kill_rc, kill_line, kill_s, cut_rc, cut_up,
 cut_down, cut_rand, step, cut_s, pl_rc, pl_line, teeth, tears, pl_s,
 tor_rc, tor_allocs, tor_s, sim_runs, sim_fail, sim_sum, big, big_dev,
 big_days, seeds, sim_s, fuzz_rc, fs, fuzz_s) = sys.argv[1:]
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
lines.append("| simulation (gssim.py) | %s seeds: %s of %s devices x %s days, %s of 3 devices x 2 days; %s (%s s) | %s failing seeds | %s |" % (
    sim_runs, big, big_dev, big_days, seeds, sim_sum, sim_s, sim_fail, "ok" if sim_fail == "0" else "FAILED (see sim.log)"))
lines.append("| fuzzing (make fuzz) | %s s per harness: %s (%s s) | crashes listed left | %s |" % (
    fs, "; ".join(fuzz) or "not run", fuzz_s, verdict(fuzz_rc)))
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
