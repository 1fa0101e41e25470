# lib.sh - shared helpers for the TAP shell tests (sourced, not run).
#
# Each test script does:  . "$GS_TOP/tests/lib.sh"
# and then calls ok/fail/check; cleanup of temporary homes and of any
# platform started with start_platform happens on exit.
set -u
: "${GS_TOP:?run through tests/run.sh or make test}"
: "${GRIDAGENT:?}" "${GRIDPLATFORM:?}"

T_N=0
T_FAILED=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/gridsync-test.XXXXXX")
T_PIDS=""

t_cleanup() {
	for p in $T_PIDS; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "$T_FAILED" -eq 0 ]; then
		rm -rf "$T_TMP"
	else
		echo "# kept $T_TMP for inspection"
	fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

ok() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $*"
}

fail() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*"
}

# check DESCRIPTION COMMAND...: ok when the command exits 0.
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}

# expect_exit CODE DESCRIPTION COMMAND...: ok when the command exits CODE.
# Its stdout and stderr are kept in $T_TMP/out and $T_TMP/err.
expect_exit() {
	want=$1 d=$2
	shift 2
	"$@" >"$T_TMP/out" 2>"$T_TMP/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$d"
	else
		fail "$d (exit $got, wanted $want)"
		sed 's/^/#   err: /' "$T_TMP/err" | head -n 10
	fi
}

# start_platform HOME: starts "gridplatform serve" on an ephemeral loopback
# port, waits for its "listening on URL" line and sets $PF_URL and $PF_PID.
start_platform() {
	pf_home=$1
	pf_log="$pf_home/serve.log"
	# Removed first: the redirection truncates it only once the child
	# runs, and a restarted platform's loop below could read the last
	# run's "listening on" line meanwhile.
	rm -f "$pf_home/serve.out"
	"$GRIDPLATFORM" --home "$pf_home" serve --listen 127.0.0.1:0 \
		>"$pf_home/serve.out" 2>"$pf_log" &
	PF_PID=$!
	T_PIDS="$T_PIDS $PF_PID"
	# Up to 20 s: a platform that fails exits at once, so only a slow
	# start on a loaded machine waits long.
	wait_listening "$pf_home/serve.out" "$PF_PID" && { PF_URL=$LISTEN; return 0; }
	PF_URL=""
	echo "# platform did not start:"; sed 's/^/#   /' "$pf_log"
	return 1
}

# wait_listening OUT PID: waits, up to 20 s and while PID lives, for the
# "listening on X" line that gridplatform serve, gsproxy and the tests'
# python servers print first; sets $LISTEN to X (empty when none came: 1).
# The caller removes OUT before starting PID: a redirection truncates it
# only once the child runs, and the last server's line would be read as
# this one's (a dead port, where every connection is refused).
wait_listening() {
	LISTEN=""
	w_i=0
	while [ $w_i -lt 400 ]; do
		LISTEN=$(sed -n 's/^listening on //p' "$1" 2>/dev/null | head -n 1)
		[ -n "$LISTEN" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
		w_i=$((w_i + 1))
	done
	# One last look: it may have printed and exited since.
	LISTEN=$(sed -n 's/^listening on //p' "$1" 2>/dev/null | head -n 1)
	[ -n "$LISTEN" ]
}

stop_platform() {
	kill "$PF_PID" 2>/dev/null
	wait "$PF_PID" 2>/dev/null
}

done_testing() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
}
