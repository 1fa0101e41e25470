#!/bin/sh
# clock-reset.sh - a handheld whose clock is wrong (reliability-anchors.md
# A20; mission-anchors.md 3.9: forms dated January 1970 after a battery
# was out).  The real gridagent runs under tests/tools/gsclock.so with its
# wall clock at 1969-12-31, 1906-08-17, 1970-01-02, a year ahead, 2100 and
# the true time; at each it unlocks, saves a person born in 1948 and
# syncs.  Every save is delivered exactly once (the uuids on both sides),
# none rejected or quarantined; the platform flags the wrong-clock ones
# clock suspect in `reconcile` (text and --json) and `export` (ndjson and
# csv), not the true-time one; `status` warns under the 1906 clock and not
# under the true one.  A change an older agent stored with times before
# 1970 (negative: the encoder refuses them) is sent with its times raised
# to 0, not marked rejected.  The platform's clock is never shifted.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

CLK="$BUILD_DIR/tools/gsclock.so"
preload_or_skip "$CLK" "the sanitizers' runtime must come first, before a preloaded clock"

sync_ready

NOW=$(date +%s)
# name:seconds since the epoch (the device's wall clock at the start)
CLOCKS="y1969:-86400 y1906:-2000000000 y1970:86400 \
ahead:$((NOW + 366 * 86400)) y2100:4102444800 true:"

# at SECONDS CMD...: CMD under a device clock of SECONDS ("" the true one),
# its output in $T_TMP/out and $T_TMP/err.
at() {
	when=$1
	shift
	if [ -n "$when" ]; then
		GSCLOCK_AT=$when LD_PRELOAD="$CLK" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	else
		"$@" >"$T_TMP/out" 2>"$T_TMP/err"
	fi
}

# idcard PREFIX17: the 18-character GB 11643 number with its check digit.
idcard() {
	"$PY" -c '
import sys
b = sys.argv[1]
w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
print(b + "10X98765432"[sum(int(c) * x for c, x in zip(b, w)) % 11])
' "$1"
}

i=0
for c in $CLOCKS; do
	name=${c%%:*}
	secs=${c#*:}
	i=$((i + 1))
	# born 1948-05-1i, female (the 17th digit even)
	id=$(idcard "1101011948051${i}002")
	at "$secs" ag unlock --passphrase-file "$AG_PASS"
	# What happened at this clock, judged with the platform's view below:
	# "saved", then "synced" when the sync exited 0 marking nothing.
	how=""
	if at "$secs" ag collect person name="测试$name" id_number="$id" \
		sex=2 birth_date="1948-05-1$i" pop_type=REGISTERED \
		address="北京市东城区$name号"; then
		echo "$name $(tr -d '\n' <"$T_TMP/out")" >>"$T_TMP/saved"
		how=saved
	else
		sed "s/^/#   $name collect: /" "$T_TMP/err" | head -n 3
	fi
	if at "$secs" ag sync && ! grep -q 'cannot be sent' "$T_TMP/err"; then
		how="$how synced"
	else
		sed "s/^/#   $name sync: /" "$T_TMP/err" | head -n 3
	fi
	echo "$name $how" >>"$T_TMP/how"
	if [ "$name" = y1906 ]; then
		at "$secs" ag status --json
		cp "$T_TMP/out" "$T_TMP/status1906.json"
		at "$secs" ag status
		cp "$T_TMP/out" "$T_TMP/status1906.txt"
	fi
done

# ---- a change an older agent stored under a 1969 clock: negative times
# (this agent stamps max(clock, 0)), set in its store by hand
how=""
if at "" ag collect person name=旧程序 id_number="$(idcard 11010119480601001)" \
	sex=1 birth_date=1948-06-01 pop_type=REGISTERED address=北京市旧程序; then
	old=$(tr -d '\n' <"$T_TMP/out")
	sqlite3 "$AH/agent.db" "UPDATE record SET created_at = -5000, \
		updated_at = -4000 WHERE uuid = '$old'; UPDATE change SET \
		created_at = -5000, updated_at = -4000 WHERE uuid = '$old'"
	[ "$(sqlite3 "$AH/agent.db" \
		"SELECT created_at FROM record WHERE uuid = '$old'")" = -5000 ] &&
		echo "old $old" >>"$T_TMP/saved" && how=saved
fi
if at "" ag sync && ! grep -q 'cannot be sent' "$T_TMP/err"; then
	how="$how synced"
else
	sed "s/^/#   old sync: /" "$T_TMP/err" | head -n 3
fi
echo "old $how" >>"$T_TMP/how"

# ---- nothing lost, nothing twice, nothing rejected or quarantined
agent_uuids "$T_TMP/a"
platform_uuids "$T_TMP/p"
n=$(wc -l <"$T_TMP/saved")
[ "$n" -eq 7 ] && [ "$(wc -l <"$T_TMP/a")" -eq 7 ] &&
	cmp -s "$T_TMP/a" "$T_TMP/p" && [ -z "$(uniq -d "$T_TMP/p")" ] &&
	ok "all 7 saves delivered exactly once (the same uuids both sides)" ||
	fail "all 7 saves delivered exactly once ($n saved, $(wc -l <"$T_TMP/a") on the device, $(wc -l <"$T_TMP/p") on the platform)"
ag status --json >"$T_TMP/status.json"
chg=$(json_get "$T_TMP/status.json" '[d["changes"].get(k) for k in ("delivered", "rejected", "quarantined")]')
[ "$chg" = "[7, 0, 0]" ] &&
	ok "device: 7 delivered, none rejected or quarantined" ||
	fail "device: 7 delivered, none rejected or quarantined (delivered, rejected, quarantined: $chg)"

# ---- flagged for admins: the six wrong clocks, not the true one; nothing
# quarantined for its times
pf reconcile --json >"$T_TMP/rec.json"
rc=$(json_get "$T_TMP/rec.json" '[(x["quarantined"], x.get("clock_suspect")) for x in d["devices"]]')
[ "$rc" = "[(0, 6)]" ] &&
	[ "$(pf quarantine 2>/dev/null | grep -c '[0-9a-f]\{8\}-')" = 0 ] &&
	ok "reconcile --json: nothing quarantined, 6 clock-suspect records on the device" ||
	fail "reconcile --json: nothing quarantined, 6 clock-suspect records on the device (quarantined, clock_suspect: $rc)"
pf reconcile >"$T_TMP/rec.txt"
grep -q 'clock suspect: 6 ' "$T_TMP/rec.txt" &&
	ok "reconcile: says 6 clock suspect" || fail "reconcile: says 6 clock suspect"
pf export --format ndjson >"$T_TMP/export.ndjson"
pf export --format csv --type person >"$T_TMP/export.csv"
# One line per save: name, how it went on the device, how many times its
# uuid is on the platform, its clock_suspect in ndjson and in csv.
"$PY" - "$T_TMP/export.ndjson" "$T_TMP/export.csv" "$T_TMP/saved" \
	"$T_TMP/how" >"$T_TMP/verdict" <<'PYEOF'
import csv, json, sys
flag, times = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    flag[r["uuid"]] = r.get("clock_suspect")
    times[r["uuid"]] = times.get(r["uuid"], 0) + 1
rows = list(csv.reader(open(sys.argv[2], encoding="utf-8-sig", newline="")))
col = rows[0].index("clock_suspect") if "clock_suspect" in rows[0] else None
cflag = {r[0]: (r[col] if col is not None else None) for r in rows[1:]}
uuid = dict(l.split() for l in open(sys.argv[3]))
for l in open(sys.argv[4]):
    name, how = (l.split(None, 1) + [""])[:2]
    u = uuid.get(name, "-")
    print(name, "+".join(how.split()) or "-", times.get(u, 0), flag.get(u),
          cflag.get(u))
PYEOF
while read -r name how n nd cs; do
	if [ "$name" = true ]; then want="False 0"; else want="True 1"; fi
	d="clock $name: saved (born 1948), synced, on the platform once, clock_suspect $want (ndjson, csv)"
	[ "$how $n $nd $cs" = "saved+synced 1 $want" ] && ok "$d" ||
		fail "$d (got: $how $n $nd $cs)"
done <"$T_TMP/verdict"

# ---- the worker is told
json_get "$T_TMP/status1906.json" 'd["clock"]["warning"]' 2>/dev/null |
	grep -qi "set the date and time" &&
	[ "$(json_get "$T_TMP/status1906.json" 'd["clock"]["before_floor"]')" = True ] &&
	ok "status --json under the 1906 clock: before_floor, warning to set it" ||
	fail "status --json under the 1906 clock: before_floor, warning to set it"
grep -q 'warning: .*Set the date and time' "$T_TMP/status1906.txt" &&
	ok "status under the 1906 clock: the warning in the text" ||
	fail "status under the 1906 clock: the warning in the text"
[ "$(json_get "$T_TMP/status.json" '("warning" in d["clock"], d["clock"]["before_floor"], abs(d["clock"]["platform_ahead_ms"]) < 60000)' 2>/dev/null)" = "(False, False, True)" ] &&
	ok "status under the true clock: no warning, the platform's clock near ours" ||
	fail "status under the true clock: no warning, the platform's clock near ours"

done_testing
