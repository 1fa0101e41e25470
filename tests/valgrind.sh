#!/bin/sh
# valgrind.sh - run every cmocka unit program under valgrind's memcheck.
#
#   BUILD=build sh tests/valgrind.sh [PATTERN]      (or: make valgrind)
#
# A program fails when valgrind reports an error (invalid read or write,
# use of uninitialised memory, a bad free) or a definite or indirect leak:
# --error-exitcode turns either into exit 99.  "Still reachable" blocks
# (libsodium's and SQLite's process-lifetime state) are not leaks.
# The normal build is used, not the sanitizer one: the two tools do not
# mix.  Logs go to $BUILD/valgrind/NAME.log; the last line is
# "N clean, N failed".  About 8 minutes on 2 cores (Argon2id and the
# allocation-failure torture dominate), so it is part of `make campaign`,
# not of the CI run.
set -u
BUILD=${BUILD:-build}
PATTERN=${1:-}
command -v valgrind >/dev/null 2>&1 || {
	echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
	exit 69
}
logs=$BUILD/valgrind
mkdir -p "$logs"
clean=0
failed=0
for bin in "$BUILD"/tests/*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	case "$name" in *"$PATTERN"*) ;; *) continue ;; esac
	start=$(date +%s)
	# GS_VALGRIND: a test that counts the process's write system calls
	# skips that count (valgrind hands its lock from thread to thread
	# through a pipe: thousands of writes of its own).
	GS_VALGRIND=1 valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 "$bin" >"$logs/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ]; then
		clean=$((clean + 1))
		echo "clean  $name (${secs}s)"
	else
		failed=$((failed + 1))
		echo "FAIL   $name exit $rc (see $logs/$name.log)"
		grep -E '==[0-9]+== ' "$logs/$name.log" | head -n 20
	fi
done
echo "$clean clean, $failed failed"
[ "$failed" -eq 0 ]
