#!/bin/sh
# pull-sources.sh - the feed a device hears comes from several sources,
# each read in its own order and merged (platform/pull.c feed_rows): the
# records of every grid its worker has a device in, and the worker's
# tasks.  Devices of other workers write into both grids, turn about, so
# their feed rows interleave; a new device of the worker then pulls in
# small pages and holds every one of those records once, the task, and
# nothing of a grid that is not its worker's; its cursor ends at the
# platform's last feed row.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

# enroll_in HOME WORKER GRID: a device of WORKER in GRID.
enroll_in() {
	code=$(pf enroll --worker "$2" --name "张三" --grid "$3" --ttl 600) &&
		"$GRIDAGENT" --home "$1" enroll "$code" --platform "$PF_URL" \
			--passphrase-file "$AG_PASS" >/dev/null
}

# send HOME COUNT SEED: collects COUNT people there and syncs them.
send() {
	"$GRIDGEN" --type person --count "$2" --seed "$3" |
		"$GRIDAGENT" --home "$1" collect person --json - >/dev/null &&
		"$GRIDAGENT" --home "$1" sync >/dev/null 2>&1
}

# Pages of at most ~20 kB: many pages, each ending inside a run of rows.
export GRIDPLATFORM_PULL_BYTES=20000
C="$T_TMP/c" D="$T_TMP/d" E="$T_TMP/e" B="$T_TMP/b"
if ! sync_platform || ! enroll_in "$B" w001 110101002 ||
    ! enroll_in "$C" w002 110101002 || ! enroll_in "$D" w003 110101001 ||
    ! enroll_in "$E" w004 110101003; then
	fail "platform and four enrolled devices"
	done_testing
	exit 1
fi
ok "platform and four devices: w001 in 110101002, w002 there too, w003 in 110101001, w004 in 110101003"

n=0
for round in 1 2 3; do
	send "$C" 150 $((10 + round)) && send "$D" 120 $((20 + round)) ||
		n=$((n + 1))
done
send "$E" 50 31 || n=$((n + 1))
[ $n -eq 0 ] && ok "the other devices sent 450 + 360 + 50 records, turn about" ||
	fail "the other devices sent their records ($n failed)"
T=$(pf task add --worker w001 --kind VISIT --due 2026-12-01 --title "回访")
[ -n "$T" ] && ok "a task for w001" || fail "a task for w001"
send "$C" 40 41 && ok "and 40 more records after the task" ||
	fail "and 40 more records after the task"

# w001's new device, in 110101001: it hears its worker's two grids.
if enroll_in "$AH" w001 110101001; then
	expect_exit 0 "the new device of w001 syncs" ag sync --json
	[ "$(json_get "$T_TMP/out" 'd["pulled_records"]')" = 850 ] &&
		[ "$(json_get "$T_TMP/out" 'd["pulled_tasks"]')" = 1 ] &&
		ok "... and its summary counts 850 records and 1 task received" ||
		fail "... and its summary counts 850 records and 1 task received"
else
	fail "the new device of w001 enrolls"
fi
"$GRIDAGENT" --home "$C" list --json | uuids_of >"$T_TMP/c.uuids"
"$GRIDAGENT" --home "$D" list --json | uuids_of >"$T_TMP/d.uuids"
"$GRIDAGENT" --home "$E" list --json | uuids_of >"$T_TMP/e.uuids"
LC_ALL=C sort -m "$T_TMP/c.uuids" "$T_TMP/d.uuids" >"$T_TMP/want"
agent_uuids "$T_TMP/a"
[ "$(wc -l <"$T_TMP/want")" -eq 850 ] && cmp -s "$T_TMP/want" "$T_TMP/a" &&
	ok "it holds the 850 records of its worker's two grids, each once" ||
	fail "it holds the 850 records of its worker's two grids ($(wc -l <"$T_TMP/a") held)"
[ "$(wc -l <"$T_TMP/e.uuids")" -eq 50 ] &&
    [ -z "$(LC_ALL=C comm -12 "$T_TMP/a" "$T_TMP/e.uuids")" ] &&
	ok "and none of the grid that is not its worker's" ||
	fail "and none of the grid that is not its worker's"
ag status --json >"$T_TMP/st" 2>/dev/null
[ "$(json_get "$T_TMP/st" 'd["tasks"]["open"]')" = 1 ] &&
	ok "and the task" || fail "and the task"
want=$(sqlite3 "$PH/platform.db" "SELECT max(seq) FROM feed")
# (Both empty, a feed or a cursor not read, would be equal.)
[ -n "$want" ] && [ "$(sqlite3 "$AH/agent.db" "SELECT value FROM meta WHERE key = 'pull_cursor'")" = "$want" ] &&
	ok "its cursor is at the platform's last feed row ($want)" ||
	fail "its cursor is at the platform's last feed row ($want)"
agent_integrity "$AH" && ok "its store passes integrity_check" ||
	fail "its store passes integrity_check"

# On a terminal, a pull of many pages shows a line that counts them, and
# the summary says what came down (util-linux script(1) gives the pty).
if command -v script >/dev/null 2>&1 && enroll_in "$T_TMP/f" w001 110101001; then
	script -qec "'$GRIDAGENT' --home '$T_TMP/f' sync" /dev/null \
		>"$T_TMP/tty" 2>&1 </dev/null
	tr '\r' '\n' <"$T_TMP/tty" >"$T_TMP/tty.lines"
	grep -q 'pull: 850 record(s), 1 task(s), 0 review(s) received, [0-9]* page(s)' \
		"$T_TMP/tty.lines" &&
		ok "on a terminal the pull counts what each page brought" ||
		fail "on a terminal the pull counts what each page brought"
	grep -q '^all acked: nothing waiting to be sent; received 850 record(s), 1 task(s), 0 review(s)' \
		"$T_TMP/tty.lines" &&
		ok "... and the summary says what came down" ||
		fail "... and the summary says what came down"
else
	ok "# SKIP no script(1) to give a terminal"
	ok "# SKIP no script(1) to give a terminal"
fi

# A page is written as text (platform/pull.c): fields spelled as the
# encoder writes them go in as they are, others (an escape: a quote, a
# backslash) are parsed and written again.  Both come down intact.
"$GRIDGEN" --type person --count 1 --seed 51 | "$PY" -c '
import json, sys
p = json.loads(sys.stdin.readline())
p["employer"] = "大鹏\"湾\"\\科技"
print(json.dumps(p, ensure_ascii=False))' >"$T_TMP/quoted.json"
U=$("$GRIDAGENT" --home "$C" collect person --json "$T_TMP/quoted.json" 2>"$T_TMP/err")
"$GRIDAGENT" --home "$C" sync >/dev/null 2>&1
ag sync >/dev/null 2>&1
ag show "$U" --json >"$T_TMP/quoted.out" 2>>"$T_TMP/err"
[ -n "$U" ] && [ "$(json_get "$T_TMP/quoted.out" 'd["fields"]["employer"]')" = '大鹏"湾"\科技' ] &&
	ok "a field with quotes and a backslash comes down intact" ||
	{ fail "a field with quotes and a backslash comes down intact"; sed 's/^/# /' "$T_TMP/err"; }

# The pages come deflated (PROTOCOL.md 9.4), on two kept-alive
# connections (the next page is fetched on the second while one is
# applied):
# through a counting proxy, one more new device's pull of the 851 costs
# well under the ~650 bytes a record that plain pages did.
counting_proxy "$T_TMP/px.stats"
if enroll_in "$T_TMP/g" w001 110101001 &&
    "$GRIDAGENT" --home "$T_TMP/g" sync --json --platform "$PX_URL" \
	>"$T_TMP/g.json" 2>/dev/null; then
	sleep 0.2
	down=$(awk '$1 == "down" { print $2 }' "$T_TMP/px.stats")
	conns=$(awk '$1 == "connections" { print $2 }' "$T_TMP/px.stats")
	[ "$(json_get "$T_TMP/g.json" 'd["pulled_records"]')" = 851 ] &&
		[ "$down" -lt $((851 * 250)) ] &&
		ok "deflated pages: $down bytes down for 851 records" ||
		fail "deflated pages: $down bytes down for 851 records"
	[ "$conns" = 2 ] && ok "... on 2 connections: one, and one for the page ahead" ||
		fail "... on 2 connections: one, and one for the page ahead ($conns)"
else
	fail "one more new device pulls through the proxy"
fi
done_testing
