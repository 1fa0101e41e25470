#!/bin/sh
# demo.sh - the main job of gridsync, end to end, on this machine only.
#
# A platform on an embedded SQLite store (127.0.0.1, temporary home), two
# grid workers enrolled in two grids, a few hundred generated records
# collected while the platform is down ("no coverage"), the platform coming
# back ("coverage returns"), sync, and what the platform holds per worker
# and grid; then a third worker in the first grid edits the same resident
# as the first, offline, setting the same field to another value: a
# conflict an admin resolves, both devices pull the resolution, and the
# reconciliation report ends it.  Run through `make demo`; KEEP=1 keeps the
# temporary homes.
set -eu
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
GA="$top/$BUILD/gridagent"
GP="$top/$BUILD/gridplatform"
GEN="$top/$BUILD/gridgen"
N=${DEMO_RECORDS:-150}

demo=$(mktemp -d "${TMPDIR:-/tmp}/gridsync-demo.XXXXXX")
pf_pid=""
cleanup() {
	[ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null && wait "$pf_pid" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then
		echo "demo: kept $demo"
	else
		rm -rf "$demo"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$top/$BUILD/||g; s|$demo|\$DEMO|g"; "$@"; }

# A free loopback port, so the platform comes back where the devices
# expect it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

start_platform() {
	"$GP" --home "$demo/platform" serve --listen "127.0.0.1:$port" \
		>"$demo/serve.out" 2>>"$demo/serve.log" &
	pf_pid=$!
	i=0
	while ! grep -q '^listening on' "$demo/serve.out" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$pf_pid" 2>/dev/null; then
			echo "demo: the platform did not start:" >&2
			cat "$demo/serve.log" >&2
			exit 1
		fi
		sleep 0.05
	done
	sed -n 1p "$demo/serve.out"
}

stop_platform() {
	kill "$pf_pid" && wait "$pf_pid" 2>/dev/null || true
	pf_pid=""
}

# The agents' passphrase (their stores protect personal data, issue 6).
printf 'demo passphrase 2026\n' >"$demo/pass"

step "The platform: a new deployment on an embedded SQLite store"
run "$GP" --home "$demo/platform" init --public-url "$url"
start_platform

step "Two grid workers enrolled in two grids (one-time codes)"
code1=$("$GP" --home "$demo/platform" enroll --worker W0101 --name 陈伟 \
	--grid 440307001001 --ttl 600)
code2=$("$GP" --home "$demo/platform" enroll --worker W0202 --name 林芳 \
	--grid 440307002003 --ttl 600)
echo "codes made for W0101 (grid 440307001001) and W0202 (grid 440307002003)"
run "$GA" --home "$demo/w1" init --grid 440307001001 --worker W0101 \
	--passphrase-file "$demo/pass"
run "$GA" --home "$demo/w2" init --grid 440307002003 --worker W0202 \
	--passphrase-file "$demo/pass"
run "$GA" --home "$demo/w1" enroll "$code1"
run "$GA" --home "$demo/w2" enroll "$code2"

step "Coverage lost: the platform is unreachable"
stop_platform
echo "platform stopped"

step "Collecting offline: $N residents, houses, organisations, events and visits per worker"
for w in 1 2; do
	for t in person house org event visit; do
		case $t in person) n=$N ;; *) n=$((N / 5)) ;; esac
		"$GEN" --type "$t" --count "$n" --seed "$w$n" |
			"$GA" --home "$demo/w$w" collect "$t" --json - >/dev/null
	done
done
uuid=$("$GEN" --type person --count 1 --seed 777 |
	"$GA" --home "$demo/w1" collect person --json -)
run "$GA" --home "$demo/w1" edit "$uuid" phone=13800138000
ev=$("$GA" --home "$demo/w1" collect event category=CM_MANHOLE title=井盖破损 \
	place=鹏城社区二村 occurred_at=2026-04-01T10:00:00Z urgency=URGENT)
echo "an incident, $ev, with its photo:"
run "$GA" --home "$demo/w1" attach "$ev" "$top/tests/data/attachments/manhole-before.jpg" \
	--phase BEFORE --note "井盖缺失" --location 22.5911,114.4807,8,GCJ02
run "$GA" --home "$demo/w1" collect person name=测试 \
	id_number=440307198503151231 pop_type=REGISTERED ||
	echo "(refused, as it should be: nothing saved)"
run "$GA" --home "$demo/w1" sync ||
	echo "(exit $?: platform unreachable, everything kept for later)"
run "$GA" --home "$demo/w1" status

step "Coverage returns: the platform is back"
start_platform
run "$GA" --home "$demo/w1" sync
run "$GA" --home "$demo/w2" sync
run "$GA" --home "$demo/w1" status

step "The incident's photo: sealed on the device, uploaded after the records"
run "$GP" --home "$demo/platform" attachment list
h=$("$GA" --home "$demo/w1" show "$ev" --json --reveal |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["fields"]["attachments"][0]["hash"])')
run "$GP" --home "$demo/platform" attachment get "$h" --out "$demo/photo.jpg" --as demo-admin
cmp "$demo/photo.jpg" "$top/tests/data/attachments/manhole-before.jpg" &&
	echo "the admin's copy is the worker's photo, byte for byte"

step "What the platform holds, per worker and grid"
run "$GP" --home "$demo/platform" devices
"$GP" --home "$demo/platform" export --format ndjson >"$demo/export.ndjson"
python3 - "$demo/export.ndjson" <<'EOF'
import collections, json, sys
count = collections.Counter()
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    count[(r.get("author", "?"), r["grid"], r["type"])] += 1
print(f"{'worker':8} {'grid':14} {'type':7} {'records':>7}")
for (w, g, t), n in sorted(count.items()):
    print(f"{w:8} {g:14} {t:7} {n:7}")
print(f"total {sum(count.values())} records")
EOF
for w in 1 2; do
	"$GA" --home "$demo/w$w" list --json | python3 -c '
import json, sys
print(sys.argv[1], "holds", sum(1 for _ in sys.stdin), "records locally")' "W0$w"
done
step "Two workers, one resident: a conflict, its resolution, both devices"
code3=$("$GP" --home "$demo/platform" enroll --worker W0103 --name 王磊 \
	--grid 440307001001 --ttl 600)
run "$GA" --home "$demo/w3" init --grid 440307001001 --worker W0103 \
	--passphrase-file "$demo/pass"
run "$GA" --home "$demo/w3" enroll "$code3"
run "$GA" --home "$demo/w3" sync
echo "W0103 now holds the grid's records too (pulled): $("$GA" --home "$demo/w3" list --json | wc -l)"
# Offline on both devices, each worker corrects the same resident.
run "$GA" --home "$demo/w1" edit "$uuid" address=深圳市南山区桃源街道1号
run "$GA" --home "$demo/w3" edit "$uuid" address=深圳市南山区桃源街道9号 phone=13900139000
run "$GA" --home "$demo/w1" sync
run "$GA" --home "$demo/w3" sync
run "$GP" --home "$demo/platform" conflicts
run "$GP" --home "$demo/platform" reconcile --worker W0103 || true
cid=$("$GP" --home "$demo/platform" conflicts --json --open |
	python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
run "$GP" --home "$demo/platform" resolve "$cid" --take device --by 管理员
run "$GA" --home "$demo/w1" sync
run "$GA" --home "$demo/w3" sync
for w in 1 3; do
	"$GA" --home "$demo/w$w" show "$uuid" --json --reveal | python3 -c '
import json, sys
d = json.load(sys.stdin)
f = d["fields"]
print(sys.argv[1], "holds", d["uuid"], "rev", d["rev"], "address", f["address"], "phone", f["phone"])' "W010$w"
done

step "Reconciliation report"
run "$GP" --home "$demo/platform" conflicts
run "$GP" --home "$demo/platform" reconcile --check

step "Done"
