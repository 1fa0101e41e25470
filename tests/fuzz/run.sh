#!/bin/sh
# run.sh - runs every libFuzzer harness built by `make fuzz` for
# FUZZ_SECONDS each (default 60), on a working copy of its seed corpus
# (tests/fuzz/corpus/NAME is never written), and appends one line per
# harness to $FUZZ_BUILD/fuzz-results.txt:
#
#   NAME seconds=S execs=N corpus=N crashes=N
#
# A crash, sanitizer report, timeout (-timeout=5) or OOM (-rss_limit_mb)
# leaves its input in $FUZZ_BUILD/artifacts/ and is copied to
# tests/fuzz/regressions/NAME/, where tests/unit/fuzz-regressions.c
# replays it on every `make test` (commit it with the fix).  Exit status 1
# when anything was found.  FUZZ_JOBS (default 1) harnesses run at once,
# each lane taking every FUZZ_JOBS-th harness in turn.
set -u
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ONLY=${FUZZ_ONLY:-}
FUZZ_JOBS=${FUZZ_JOBS:-1}
case "$FUZZ_JOBS" in '' | *[!0-9]* | 0)
	echo "run.sh: FUZZ_JOBS must be a positive number" >&2
	exit 2 ;;
esac
top=$(cd "$(dirname "$0")/../.." && pwd)
export GS_TOP="$top"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
results="$FUZZ_BUILD/fuzz-results.txt"
mkdir -p "$FUZZ_BUILD/artifacts" "$FUZZ_BUILD/work"
lane() {
	i=0 found=0
	for bin in "$FUZZ_BUILD"/fuzz/*; do
		[ -x "$bin" ] || continue
		name=$(basename "$bin")
		case "$name" in *.d) continue ;; esac
		case "$name" in *"$FUZZ_ONLY"*) ;; *) continue ;; esac
		i=$((i + 1))
		[ $((i % FUZZ_JOBS)) -eq "$1" ] || continue
		work="$FUZZ_BUILD/work/$name"
		mkdir -p "$work"
		cp "$top/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null
		log="$FUZZ_BUILD/$name.log"
		before=$(ls "$FUZZ_BUILD/artifacts" | grep -c "^$name-")
		"$bin" -max_total_time="$FUZZ_SECONDS" -timeout=5 -rss_limit_mb=2048 \
			-max_len=65536 -print_final_stats=1 \
			-artifact_prefix="$FUZZ_BUILD/artifacts/$name-" "$work" \
			>"$log" 2>&1
		rc=$?
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		after=$(ls "$FUZZ_BUILD/artifacts" | grep -c "^$name-")
		crashes=$((after - before))
		if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
			crashes=1 # died without an artifact: count it, keep the log
		fi
		n=$(ls "$work" | wc -l)
		line="$name seconds=$FUZZ_SECONDS execs=${execs:-0} corpus=$n crashes=$crashes"
		echo "$line" | tee -a "$results"
		if [ "$crashes" -ne 0 ]; then
			found=1
			mkdir -p "$top/tests/fuzz/regressions/$name"
			for a in "$FUZZ_BUILD/artifacts/$name-"*; do
				[ -f "$a" ] && cp "$a" "$top/tests/fuzz/regressions/$name/"
			done
			grep -m 5 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/    /'
		fi
	done
	return $found
}
pids=""
lane_no=0
while [ "$lane_no" -lt "$FUZZ_JOBS" ]; do
	lane "$lane_no" &
	pids="$pids $!"
	lane_no=$((lane_no + 1))
done
found=0
for p in $pids; do
	wait "$p" || found=1
done
exit $found
