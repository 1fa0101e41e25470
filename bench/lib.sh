# lib.sh - helpers shared by bench/e2e.sh and bench/link.sh (sourced after
# they set $bench, their name in messages; not a benchmark itself).
#
#   bench_work               makes $work (under $BENCH_DIR, else /var/tmp);
#                            at exit it is removed and every pid in $pids
#                            stopped
#   now, elapsed T0 T1       seconds since the epoch; T1 - T0
#   wait_line FILE PATTERN   the first line of FILE matching PATTERN, once
#                            it appears (5 s at most)
#   platform_up DIR          a new platform in DIR/pf, served on an
#                            ephemeral loopback port: $pf_pid, $pf_url
#   proxy_up DIR ARGS...     gsproxy in front of it (ARGS are gsproxy's):
#                            $px_pid, $px_url
#   device_up DIR URL PASS   a device in DIR/dev enrolled through URL, its
#                            home protected by the passphrase file PASS
#   stop_run                 stops the platform and the proxy of a run
#   write_section NAME TEXT  TEXT (which starts with the NAME begin marker
#                            and ends with its end marker) replaces that
#                            section of $results, or is appended
#   bench_positive NAME V    exits 64 unless V is a positive number
#   bench_need HINT FILE...  exits 66 unless every FILE is executable (HINT:
#                            the make command that builds them)
# Uses $GA, $GP, $PROXY.

bench_positive() {
	case "$2" in '' | *[!0-9]* | 0)
		echo "bench-$bench: $1 must be a positive number" >&2
		exit 64 ;;
	esac
}

bench_need() {
	hint=$1
	shift
	for f in "$@"; do
		[ -x "$f" ] || { echo "bench-$bench: $f missing ($hint)" >&2; exit 66; }
	done
}

bench_work() {
	work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/gs-bench-$bench.XXXXXX")
	pids=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	# "|| true": under set -e a failing wait (the status of a killed
	# child) would end the trap early and leave the rest running.
	for p in $pids; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }

wait_line() {
	i=0
	while [ $i -lt 100 ]; do
		l=$(grep -m 1 "$2" "$1" 2>/dev/null || true)
		[ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.05
		i=$((i + 1))
	done
	echo "bench-$bench: nothing matching '$2' in $1" >&2
	exit 70
}

platform_up() {
	"$GP" --home "$1/pf" init --public-url http://127.0.0.1:1 >/dev/null
	"$GP" --home "$1/pf" serve --listen 127.0.0.1:0 >"$1/pf.out" 2>"$1/pf.log" &
	pf_pid=$!
	pids="$pids $pf_pid"
	pf_url=$(wait_line "$1/pf.out" '^listening on' | sed 's/^listening on //')
}

proxy_up() {
	pd=$1
	shift
	"$PROXY" --to "${pf_url##*:}" "$@" >"$pd/proxy.out" &
	px_pid=$!
	pids="$pids $px_pid"
	px_url="http://127.0.0.1:$(wait_line "$pd/proxy.out" '^listening on' | sed 's/^listening on //')"
}

device_up() {
	code=$("$GP" --home "$1/pf" enroll --worker W0001 --name 测试 --grid 440307001001)
	# A home is protected by a passphrase (issue 6); an agent without
	# that option is run without it.
	pass="--passphrase-file $3"
	"$GA" --home "$1/dev" init --grid 440307001001 --worker W0001 $pass >/dev/null 2>&1 ||
		{ pass=""; "$GA" --home "$1/dev" init --grid 440307001001 --worker W0001 >/dev/null; }
	"$GA" --home "$1/dev" enroll "$code" --platform "$2" $pass >/dev/null
}

stop_run() {
	kill "$pf_pid" "$px_pid" 2>/dev/null || true
	wait "$pf_pid" 2>/dev/null || true
	wait "$px_pid" 2>/dev/null || true
	pids=""
}

write_section() {
	touch "$results"
	SEC=$2 NAME=$1 awk '
		BEGIN { sec = ENVIRON["SEC"]; b = "<!-- " ENVIRON["NAME"] ":begin"
			e = "<!-- " ENVIRON["NAME"] ":end" }
		index($0, b) == 1 { print sec; skip = 1; done = 1; next }
		index($0, e) == 1 { skip = 0; next }
		!skip { print }
		END { if (!done) { if (NR) print ""; print sec } }' "$results" >"$work/RESULTS.md"
	cp "$work/RESULTS.md" "$results"
}
