#!/bin/sh
# run.sh - run the whole test suite against the binaries in $BUILD.
#
#   BUILD=build sh tests/run.sh [PATTERN]
#
# Unit programs are cmocka binaries under $BUILD/tests; their "[  PASSED  ]"
# and "[  FAILED  ]" counts are added up.  Scripts under tests/cli and
# tests/integration speak TAP ("ok N - what", "not ok N - what"); a script
# that exits non-zero without a "not ok" line counts as one failure.
# Logs go to $BUILD/test-logs.  The last line is "N passed, N failed".
set -u
BUILD=${BUILD:-build}
PATTERN=${1:-${TESTS:-}}
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
top=$(cd "$(dirname "$0")/.." && pwd)
export GS_TOP="$top"
export GRIDAGENT="$top/$BUILD/gridagent"
export GRIDPLATFORM="$top/$BUILD/gridplatform"
export GRIDGEN="$top/$BUILD/gridgen"
export BUILD_DIR="$top/$BUILD"
# Sanitizer builds: fail loudly, and leak checking is part of the deal.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
failures=""

for bin in "$BUILD"/tests/*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	case "$name" in *"$PATTERN"*) ;; *) continue ;; esac
	log="$LOGS/$name.log"
	"$bin" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # crashed or sanitizer abort
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failures="$failures $name"
		echo "FAIL $name (see $log)"
		tail -n 20 "$log"
	else
		echo "ok   $name ($p)"
	fi
done

for script in "$top"/tests/cli/*.sh "$top"/tests/integration/*.sh; do
	[ -f "$script" ] || continue
	name=$(basename "$script" .sh)
	case "$name" in *"$PATTERN"*) ;; *) continue ;; esac
	log="$LOGS/$name.log"
	start=$(date +%s)
	sh "$script" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	secs=$(( $(date +%s) - start ))
	if [ "$f" -ne 0 ]; then
		failures="$failures $name"
		echo "FAIL $name (${secs}s, see $log)"
		grep -E '^not ok|^#' "$log" | head -n 30
		[ "$rc" -ne 0 ] && tail -n 15 "$log"
	else
		echo "ok   $name ($p, ${secs}s)"
	fi
done

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
