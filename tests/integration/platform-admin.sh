#!/bin/sh
# platform-admin.sh - an admin's commands against hostile and wrong input
# (DESIGN.md sections 6 and 7): CSV export of values a device collected
# that a spreadsheet would run as formulas, export --json and an unknown
# --type, resolve and quarantine ids out of range, resolve --set that does
# not validate (one error line, nothing changed), resolve after the
# record moved on (never a silent overwrite of the newer value), a delete
# against an edit shown in words an admin can act on, enroll with a
# worker or grid no change line can carry, export and reconcile filters
# no record can match, and CSV columns (and Chinese headers, defused too)
# for every field of every form version held.
set -u
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

AH2="$T_TMP/ag2"
ag2() { "$GRIDAGENT" --home "$AH2" "$@"; }

sync_platform || exit 1
sync_enroll "$AH" w001 && sync_enroll "$AH2" w002 ||
	{ fail "enroll two devices"; done_testing; exit 1; }
ok "enroll two devices"

# event JSON: a valid event with the given fields replaced.
event() {
	"$PY" -c '
import json, sys
d = {"category": "SA_EBIKE_CHARGING", "title": "t", "description": "d",
     "place": "p", "occurred_at": "2026-01-07T15:28:39Z", "urgency": "NORMAL"}
d.update(json.loads(sys.argv[1]))
print(json.dumps(d))' "$1" | ag collect event --json -
}

# --- CSV: quoting and formula injection ---------------------------------
# Each value is what a worker (or a stolen handheld) could type; the
# device accepts them all (free text).
: >"$T_TMP/hostile"
for v in '{"title": "=HYPERLINK(\"http://evil.example/\",\"x\")"}' \
    '{"title": "+1+1"}' '{"title": "-2+3"}' '{"title": "@SUM(A1)"}' \
    '{"description": "\t=1+1"}' '{"description": "\r=1+1"}' \
    '{"title": "a, \"quoted\" title"}' \
    '{"description": "two\nlines, =not a formula"}'; do
	u=$(event "$v") || { fail "collect $v"; continue; }
	printf '%s\t%s\n' "$u" "$v" >>"$T_TMP/hostile"
done
[ "$(wc -l <"$T_TMP/hostile")" -eq 8 ] && ok "the device collects 8 hostile events" ||
	fail "the device collects 8 hostile events"
expect_exit 0 "they reach the platform" ag sync
expect_exit 0 "export --type event --format csv" pf export --type event --format csv
cp "$T_TMP/out" "$T_TMP/events.csv"
"$PY" - "$T_TMP/events.csv" "$T_TMP/hostile" <<'PY' >"$T_TMP/csv.res" 2>&1
import csv, io, json, sys
raw = open(sys.argv[1], "rb").read()
print("bom", raw.startswith(b"\xef\xbb\xbf"))
rows = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
by = {r["uuid"]: r for r in rows}
for line in open(sys.argv[2], encoding="utf-8"):
    u, v = line.rstrip("\n").split("\t", 1)
    (k, want), = json.loads(v).items()
    got = by[u][k]
    if want[0] in "=+-@\t\r":
        print("defused", repr(want[:2]), got == "'" + want)
    else:
        print("verbatim", repr(want[:2]), got == want)
PY
check "CSV starts with the UTF-8 BOM" grep -q "^bom True" "$T_TMP/csv.res"
for c in =H +1 -2 @S; do
	check "a cell starting $c gets a leading ' (no formula)" \
	    grep -q "^defused '$c' True" "$T_TMP/csv.res"
done
# OWASP's list has the tab and the carriage return too: a spreadsheet
# drops them and runs the formula after.  They were written bare.
check "a cell starting with a tab then = gets a leading '" \
	grep -q "^defused '\\\\t=' True" "$T_TMP/csv.res"
check "a cell starting with a carriage return then = gets a leading '" \
	grep -q "^defused '\\\\r=' True" "$T_TMP/csv.res"
check "commas and quotes round-trip verbatim" \
	grep -q "^verbatim 'a,' True" "$T_TMP/csv.res"
check "a line break inside a cell round-trips verbatim" \
	grep -q "^verbatim 'tw' True" "$T_TMP/csv.res"
[ "$(grep -c True "$T_TMP/csv.res")" -eq 9 ] && ok "every cell as expected" ||
	{ fail "every cell as expected"; sed 's/^/# /' "$T_TMP/csv.res"; }

# --- export: --json and --type ------------------------------------------
pf export --type event --format ndjson >"$T_TMP/nd" 2>&1
expect_exit 0 "export --json (DESIGN 7: --json on every read command)" \
	pf export --type event --json
check "... is the NDJSON export" cmp -s "$T_TMP/out" "$T_TMP/nd"
expect_exit 64 "export --json --format csv is a usage error" \
	pf export --json --format csv
expect_exit 64 "export --type of no form is a usage error, not an empty export" \
	pf export --type persons
check "... one line naming the known types" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: --type persons: no such record type (known: .*person" "$1"' \
	- "$T_TMP/err"
check "... and prints no record" test ! -s "$T_TMP/out"
expect_exit 0 "export --type of a known type without records is fine" \
	pf export --type org
check "... and empty" test ! -s "$T_TMP/out"

# --- resolve: bad ids and values ------------------------------------------
U=$(event '{"title": "原标题"}')
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ag edit "$U" title=甲 >/dev/null
ag2 edit "$U" title=乙 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
pf conflicts --json --open >"$T_TMP/c.json"
ID=$(json_get "$T_TMP/c.json" 'd[0]["id"]')
[ -n "$ID" ] && ok "a conflict on the title waits" || fail "a conflict on the title waits"
pf export --type event | grep "$U" >"$T_TMP/before"

# An id past the 64-bit range was read as 9223372036854775807 and
# answered "no conflict 9223372036854775807" (65).
expect_exit 64 "resolve with an id past the range is a usage error" \
	pf resolve 99999999999999999999 --take device
check "... saying it needs a conflict id" \
	grep -q "^gridplatform: resolve needs a conflict id" "$T_TMP/err"
expect_exit 64 "quarantine release with an id past the range too" \
	pf quarantine release 99999999999999999999
expect_exit 65 "resolve of an unknown conflict" pf resolve 9999 --take device
check "... names it" grep -q "^gridplatform: no conflict 9999$" "$T_TMP/err"

# A value that does not validate: one line naming the field (it was the
# problem, then a second line "record failed validation").
expect_exit 65 "resolve --set urgency=BOGUS is refused" pf resolve "$ID" --set urgency=BOGUS
check "... in one line naming the field and the rule" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: urgency: should be one of .*(enum)$" "$1"' \
	- "$T_TMP/err"
expect_exit 65 "resolve --set without NAME=VALUE is refused" pf resolve "$ID" --set title
check "... in one line, with no empty field name" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: arguments should be NAME=VALUE" "$1"' \
	- "$T_TMP/err"
expect_exit 65 "two bad values" pf resolve "$ID" --set urgency=BOGUS category=NOPE
check "... each named, the last line counting the rest" sh -c \
	'test "$(wc -l <"$1")" = 3 && tail -n 1 "$1" | grep -q "^gridplatform: .*(and 1 more problems)$"' \
	- "$T_TMP/err"
# DESIGN.md section 3: a ref is another record, never the record itself.
expect_exit 65 "resolve --set subject=<its own uuid> is refused" \
	pf resolve "$ID" --set subject="$U"
check "... in one line naming the field and the rule" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: subject: should name another record, not this one (self_ref)$" "$1"' \
	- "$T_TMP/err"
pf export --type event | grep "$U" >"$T_TMP/after"
check "the refused resolutions changed nothing" cmp -s "$T_TMP/before" "$T_TMP/after"
[ "$(pf conflicts --json --open | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] &&
	ok "... the conflict still waits" || fail "... the conflict still waits"
expect_exit 0 "resolve --take device" pf resolve "$ID" --take device

# --- resolve after the record moved on --------------------------------------
# A conflict on the title waits; then A sets the title again (a fast
# forward).  --take device chose between two values, one of them stale,
# and overwrote A's newer title unseen.
W=$(event '{"title": "旧"}')
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ag edit "$W" title=甲1 >/dev/null
ag2 edit "$W" title=乙1 place=乙地 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ID3=$(pf conflicts --json --open | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
ag sync >/dev/null 2>&1
ag edit "$W" title=甲2 >/dev/null
ag sync >/dev/null 2>&1
wfield() { pf export --type event | "$PY" -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d["uuid"] == sys.argv[1]: print(d["rev"], d["fields"].get(sys.argv[2]))' "$W" "$1"; }
before=$(wfield title)
expect_exit 65 "resolve --take device after the title moved on is refused" \
	pf resolve "$ID3" --take device
check "... in one line naming the field, its value now and what to do" sh -c \
	'test "$(wc -l <"$1")" = 1 && grep -q "^gridplatform: conflict [0-9]*: title changed on the platform since (rev [0-9]*, now \"甲2\"): decide it with --set title=VALUE$" "$1"' \
	- "$T_TMP/err"
[ "$(wfield title)" = "$before" ] && ok "... and the newer title is kept (${before#* })" ||
	fail "... and the newer title is kept ($(wfield title))"
expect_exit 0 "--take platform keeps the newer title and merges B's place" \
	pf resolve "$ID3" --take platform
[ "$(wfield title | cut -d' ' -f2)" = 甲2 ] && [ "$(wfield place | cut -d' ' -f2)" = 乙地 ] &&
	ok "... title 甲2, place 乙地" || fail "... title 甲2, place 乙地 ($(wfield title), $(wfield place))"

# The same with the admin naming the value: allowed.
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ag edit "$W" title=甲3 >/dev/null
ag2 edit "$W" title=乙3 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ID4=$(pf conflicts --json --open | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
ag sync >/dev/null 2>&1
ag edit "$W" title=甲4 >/dev/null
ag sync >/dev/null 2>&1
expect_exit 0 "resolve --set title=... after it moved on is the admin's value" \
	pf resolve "$ID4" --set title=定稿
[ "$(wfield title | cut -d' ' -f2)" = 定稿 ] && ok "... title 定稿" ||
	fail "... title 定稿 ($(wfield title))"

# Deleted since the conflict: --take device brought the record back.
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ag edit "$W" title=甲5 >/dev/null
ag2 edit "$W" title=乙5 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ID5=$(pf conflicts --json --open | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
ag sync >/dev/null 2>&1
ag delete "$W" --reason 重复 >/dev/null
ag sync >/dev/null 2>&1
wdel() { pf export --type event | "$PY" -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l)
    if d["uuid"] == sys.argv[1]: print(d["deleted"])' "$W"; }
expect_exit 65 "resolve --take device of a record deleted since is refused" \
	pf resolve "$ID5" --take device
check "... saying so" grep -q "the record was deleted on the platform since" "$T_TMP/err"
[ "$(wdel)" = True ] && ok "... and it stays deleted" || fail "... and it stays deleted"
expect_exit 0 "--take platform closes it, the record kept deleted" \
	pf resolve "$ID5" --take platform
[ "$(wdel)" = True ] && ok "... still deleted" || fail "... still deleted"

# --- a delete against an edit, in words ------------------------------------
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
ag edit "$U" title=丙 >/dev/null
ag2 delete "$U" --reason 重复 >/dev/null
ag sync >/dev/null 2>&1
ag2 sync >/dev/null 2>&1
expect_exit 0 "conflicts --open" pf conflicts --open
check "a delete against an edit says who deleted and who edited" \
	grep -q "delete_edit: deleted on the device, edited on the platform since base rev" \
	"$T_TMP/out"
check "... not 'platform null, device null'" sh -c '! grep -q "platform null, device null" "$1"' \
	- "$T_TMP/out"
# --- enroll: a worker or grid the wire cannot carry -----------------------
# A grid with a quote was taken: the device enrolled, adopted it, and every
# record it collected was marked "cannot be sent" on the handheld.
tokens() { sqlite3 "$PH/platform.db" 'SELECT count(*) FROM enroll_tokens'; }
n0=$(tokens)
# bad_enroll OPTION VALUE: refused (64) in one line naming the option.
bad_enroll() {
	if [ "$1" = --grid ]; then w=w010 g=$2; else w=$2 g=440307001001; fi
	expect_exit 64 "enroll $1 '$2' is refused" pf enroll --name 某人 \
	    --worker "$w" --grid "$g"
	check "... in one line naming the option" sh -c \
	    'test "$(wc -l <"$2")" = 1 && grep -q "^gridplatform: $1 " "$2"' \
	    - "$1" "$T_TMP/err"
}
bad_enroll --grid '4403"07'
bad_enroll --grid 'a\g'
bad_enroll --grid ''
bad_enroll --worker 'w"1'
[ "$(tokens)" = "$n0" ] && ok "... and no code was made" || fail "... and no code was made"
expect_exit 0 "a grid with a space is fine (the wire carries it)" \
	pf enroll --worker w010 --name 某人 --grid "44 03"

# --- export and reconcile: a --grid no record can have ---------------------
# An empty --grid (an unset shell variable) or one with a quote printed
# nothing and exited 0: it passed for an empty grid.
expect_exit 64 "export --grid '' is a usage error" pf export --grid ''
check "... in one line" sh -c 'test "$(wc -l <"$1")" = 1 &&
	grep -q "^gridplatform: --grid is empty" "$1"' - "$T_TMP/err"
expect_exit 64 "export --grid with a quote too" pf export --grid '4403"07' --format csv
check "... printing nothing" test ! -s "$T_TMP/out"
expect_exit 64 "reconcile --grid '' too" pf reconcile --grid '' --json
expect_exit 64 "reconcile --worker with a backslash too" pf reconcile --worker 'w\g'
expect_exit 0 "a well-formed grid without records is an empty export" \
	pf export --grid 999999999999
check "... empty" test ! -s "$T_TMP/out"

# --- CSV columns when a form version drops a field --------------------------
# The columns were the newest form's only: once event v2 (without
# handling_note) was published, the CSV of the events collected with v1
# lost their handling_note values.
HN=$(event '{"handling_note": "已劝离，现场整改完毕"}')
ag sync >/dev/null 2>&1
"$PY" - "$GS_TOP/schema/forms/event.json" "$T_TMP/event-v2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["version"] = 2
hn = [f for f in d["fields"] if f["name"] == "handling_note"][0]
d["fields"] = [f for f in d["fields"] if f["name"] != "handling_note"]
hn = dict(hn, name="handling", label="处置结果")
d["fields"].append(hn)
json.dump(d, open(sys.argv[2], "w"), ensure_ascii=False)
PY
expect_exit 0 "publish event v2: handling_note renamed handling" \
	pf reference add "$T_TMP/event-v2.json"
expect_exit 0 "export --type event --format csv" pf export --type event --format csv
"$PY" - "$T_TMP/out" "$HN" <<'PY' >"$T_TMP/v2.res" 2>&1
import csv, io, sys
rows = list(csv.DictReader(io.StringIO(open(sys.argv[1], encoding="utf-8-sig").read(), newline="")))
print("columns", " ".join(k for k in rows[0] if k in ("handling", "handling_note")))
print("value", [r for r in rows if r["uuid"] == sys.argv[2]][0].get("handling_note"))
PY
check "the v2 field and the v1-only field each have a column (newest first)" \
	grep -q "^columns handling handling_note$" "$T_TMP/v2.res"
check "... and the v1 record keeps its value" \
	grep -q "^value 已劝离，现场整改完毕$" "$T_TMP/v2.res"

# A label is text too: the Chinese headers come from published forms.
"$PY" - "$T_TMP/event-v2.json" "$T_TMP/event-v3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["version"] = 3
[f for f in d["fields"] if f["name"] == "title"][0]["label"] = "=HYPERLINK(\"http://evil.example/\",\"x\")"
json.dump(d, open(sys.argv[2], "w"), ensure_ascii=False)
PY
expect_exit 0 "publish event v3 with a label that is a formula" \
	pf reference add "$T_TMP/event-v3.json"
expect_exit 0 "export --type event --format csv --headers zh" \
	pf export --type event --format csv --headers zh
"$PY" -c 'import csv, io, sys
h = next(csv.reader(io.StringIO(open(sys.argv[1], encoding="utf-8-sig").read(), newline="")))
sys.exit(0 if h[10] == "'"'"'=HYPERLINK(\"http://evil.example/\",\"x\")" else 1)' "$T_TMP/out" &&
	ok "... the header cell gets a leading '" ||
	fail "... the header cell gets a leading ' ($(head -n 1 "$T_TMP/out" | cut -d, -f11))"

check "platform store intact" sh -c "[ \"\$(sqlite3 '$PH/platform.db' 'PRAGMA integrity_check')\" = ok ]"
done_testing
