#!/bin/sh
# agent-text.sh - the text (non --json) output of gridagent's read commands
# says what a grid worker needs in words: times as ISO 8601 UTC to the
# second ("never" for none), sizes with a unit, empty states in words;
# the --json outputs keep their milliseconds and bytes.
#
# It used to print times as milliseconds since 1970 (status: created_at,
# enrolled_at, last_sync, pull at), sizes as bare bytes, nothing at all
# for no tasks, "0 records" for none, "all acked: 0 batch(es), 0
# record(s) sent" when there was nothing to send, and raw JSON for a
# record's attachments.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

ISO='20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z'

# no_raw_times FILE: no line of FILE ends in a number of 13 or more digits
# (a time in milliseconds since 1970: 13 digits; the grid code has 12).
no_raw_times() { ! grep -Eq '(^|[^0-9a-f])[0-9]{13,}$' "$1"; }

# ---- a home that is not enrolled, with nothing in it
AH0=$T_TMP/ag0
expect_exit 0 "init a home" "$GRIDAGENT" --home "$AH0" init --grid 440307001001 \
	--worker w001 --passphrase-file "$AG_PASS"
expect_exit 0 "status (text) of a new home" "$GRIDAGENT" --home "$AH0" status
cp "$T_TMP/out" "$T_TMP/st0"
grep -Eq "^created_at: $ISO\$" "$T_TMP/st0" &&
	ok "status: created_at as ISO 8601 UTC" ||
	{ fail "status: created_at as ISO 8601 UTC"; grep created_at "$T_TMP/st0" | sed 's/^/# /'; }
grep -q "^device: not enrolled (run 'gridagent enroll CODE')\$" "$T_TMP/st0" &&
	ok "status: a device not enrolled says so" ||
	fail "status: a device not enrolled says so"
grep -q '^records: none$' "$T_TMP/st0" && grep -q '^reviews: none$' "$T_TMP/st0" &&
	grep -q '^problem_records: none$' "$T_TMP/st0" &&
	ok "status: no records, no reviews, no problems, in words" ||
	fail "status: no records, no reviews, no problems, in words"
check "status: no time in milliseconds" no_raw_times "$T_TMP/st0"
expect_exit 0 "tasks with none" "$GRIDAGENT" --home "$AH0" tasks
[ ! -s "$T_TMP/out" ] && [ "$(cat "$T_TMP/err")" = "no tasks" ] &&
	ok "... says \"no tasks\" on stderr, stdout empty" ||
	fail "... says \"no tasks\" on stderr, stdout empty"
expect_exit 0 "tasks --json with none" "$GRIDAGENT" --home "$AH0" tasks --json
[ "$(tr -d ' \n' <"$T_TMP/out")" = "[]" ] && [ ! -s "$T_TMP/err" ] &&
	ok "... is [] and nothing else" || fail "... is [] and nothing else"
expect_exit 0 "list person with none" "$GRIDAGENT" --home "$AH0" list person
[ "$(cat "$T_TMP/err")" = "no records of type person" ] &&
	ok "... says \"no records of type person\"" ||
	fail "... says \"no records of type person\" ($(cat "$T_TMP/err"))"
expect_exit 0 "list with none" "$GRIDAGENT" --home "$AH0" list
[ "$(cat "$T_TMP/err")" = "no records" ] && ok "... says \"no records\"" ||
	fail "... says \"no records\" ($(cat "$T_TMP/err"))"

# ---- an enrolled device on a loopback platform
sync_ready
expect_exit 0 "status of a device never synced" ag status
grep -q '^  at: never$' "$T_TMP/out" &&
	ok "status: the pull never made says never" ||
	{ fail "status: the pull never made says never"; sed 's/^/# /' "$T_TMP/out"; }
collect_people 3 7
EV=$("$GRIDGEN" --type event --count 1 --seed 2 | ag collect event --json -)
head -c 300000 /dev/urandom >"$T_TMP/photo.jpg"
HASH=$(ag attach "$EV" "$T_TMP/photo.jpg" --phase BEFORE)
[ -n "$HASH" ] && ok "an attachment" || fail "an attachment"
expect_exit 0 "list (text)" ag list
[ "$(cat "$T_TMP/err")" = "4 records" ] && ok "... counts 4 records on stderr" ||
	fail "... counts 4 records on stderr ($(cat "$T_TMP/err"))"

expect_exit 0 "sync (text)" ag sync
grep -Eq '^all acked: 1 batch\(es\), 4 record\(s\) sent, [0-9.]+ (B|KiB) in [0-9]+ (ms|s)$' "$T_TMP/out" &&
	ok "... the summary says what went up, its size and how long" ||
	{ fail "... the summary says what went up, its size and how long"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 0 "sync again, nothing to send" ag sync
[ "$(cat "$T_TMP/out")" = "all acked: nothing waiting to be sent" ] &&
	ok "... says nothing was waiting to be sent" ||
	{ fail "... says nothing was waiting to be sent"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 75 "sync with the platform unreachable, nothing to send" \
	ag sync --platform http://127.0.0.1:9 --retries 0
grep -q '^gridagent: platform unreachable (.*); nothing waiting to be sent$' "$T_TMP/err" &&
	ok "... says so, and that nothing was waiting" ||
	{ fail "... says so, and that nothing was waiting"; sed 's/^/# /' "$T_TMP/err"; }

expect_exit 0 "status (text) after the sync" ag status
cp "$T_TMP/out" "$T_TMP/st1"
check "status: no time in milliseconds" no_raw_times "$T_TMP/st1"
grep -Eq "^last_sync: $ISO\$" "$T_TMP/st1" &&
	grep -Eq "^  enrolled_at: $ISO\$" "$T_TMP/st1" &&
	grep -Eq "^  at: $ISO\$" "$T_TMP/st1" &&
	grep -Eq "^  measured_at: $ISO\$" "$T_TMP/st1" &&
	ok "status: last_sync, enrolled_at, pull at, measured_at as ISO 8601 UTC" ||
	{ fail "status: last_sync, enrolled_at, pull at, measured_at as ISO 8601 UTC"; sed 's/^/# /' "$T_TMP/st1"; }
grep -q '^  done_bytes: 29[0-9]\.[0-9] KiB$' "$T_TMP/st1" &&
	grep -q '^  sealed_bytes: 0 B$' "$T_TMP/st1" &&
	ok "status: sizes with a unit (the photo in KiB)" ||
	{ fail "status: sizes with a unit (the photo in KiB)"; grep bytes "$T_TMP/st1" | sed 's/^/# /'; }
grep -Eq '^  platform_ahead_ms: -?[0-9]+ (ms|s|min)$' "$T_TMP/st1" &&
	ok "status: the clock's offset with a unit" ||
	fail "status: the clock's offset with a unit"
grep -q '^revoked: false$' "$T_TMP/st1" && grep -q '^worker: w001$' "$T_TMP/st1" &&
	ok "status: the other lines as they were" ||
	fail "status: the other lines as they were"
ag status --json >"$T_TMP/st1.json"
"$PY" - "$T_TMP/st1.json" <<'PY' && ok "status --json keeps milliseconds and bytes" || fail "status --json keeps milliseconds and bytes"
import json, sys
d = json.load(open(sys.argv[1]))
for v in (d["last_sync"], d["created_at"], d["device"]["enrolled_at"], d["pull"]["at"]):
    assert isinstance(v, int) and v > 1767225600000, v
assert isinstance(d["attachments"]["done_bytes"], int) and d["attachments"]["done_bytes"] > 300000, d
assert d["reviews"] == {} and d["problem_records"] == [], d
PY

expect_exit 0 "show (text)" ag show "$EV"
grep -Eq "^created +$ISO\$" "$T_TMP/out" && grep -Eq "^updated +$ISO\$" "$T_TMP/out" &&
	ok "show: created and updated to the second" ||
	{ fail "show: created and updated to the second"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 0 "show --reveal (text)" ag show "$EV" --reveal
H16=$(printf '%.16s' "$HASH")
grep -q '附件: 1 file$' "$T_TMP/out" &&
	grep -Eq "^    $H16  [a-z/-]+  29[0-9]\.[0-9] KiB  BEFORE  taken $ISO\$" "$T_TMP/out" &&
	ok "show: the attachment on its own line, its size in KiB" ||
	{ fail "show: the attachment on its own line, its size in KiB"; sed 's/^/# /' "$T_TMP/out"; }
ag show "$EV" --json --reveal >"$T_TMP/show.json"
"$PY" - "$T_TMP/show.json" <<'PY' && ok "show --json keeps milliseconds and bytes" || fail "show --json keeps milliseconds and bytes"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["created_at"], int) and d["created_at"] > 1767225600000, d
a = d["fields"]["attachments"][0]
assert a["size"] == 300000 and isinstance(a["taken_at"], int), a
PY

# ---- a task from the platform
P=$(ag list person --json | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["uuid"])')
T=$(pf task add --worker w001 --kind VISIT --subject "$P" --due 2026-12-01 --title 回访)
expect_exit 0 "sync hears the task" ag sync
grep -q '^all acked: nothing waiting to be sent; received 0 record(s), 1 task(s), 0 review(s)$' "$T_TMP/out" &&
	ok "... and says so" || { fail "... and says so"; sed 's/^/# /' "$T_TMP/out"; }
expect_exit 0 "tasks (text)" ag tasks
grep -q "^open   $T  due 2026-12-01  VISIT  回访  subject $P\$" "$T_TMP/out" &&
	[ ! -s "$T_TMP/err" ] && ok "... lists it" ||
	{ fail "... lists it"; sed 's/^/# /' "$T_TMP/out" "$T_TMP/err"; }

V=$(ag collect visit kind=HOME_VISIT subject="$P" purpose=INFO_VERIFY outcome=NORMAL \
	place=张三家 started_at=2026-11-20T09:00:00Z task="$T")
expect_exit 0 "a visit naming the task is synced" ag sync
expect_exit 0 "sync again (hears the task closed)" ag sync
expect_exit 0 "tasks (text), the task done" ag tasks
grep -q "^done   $T  due 2026-12-01  VISIT  回访  subject $P  closed by $V\$" "$T_TMP/out" &&
	ok "... says which visit closed it" ||
	{ fail "... says which visit closed it"; sed 's/^/# /' "$T_TMP/out" "$T_TMP/err"; }

# ---- the progress line on a terminal (script(1) gives sync one)
if command -v script >/dev/null 2>&1; then
	collect_people 2 8
	script -qec "\"$GRIDAGENT\" --home \"$AH\" sync" /dev/null >"$T_TMP/tty" 2>&1
	tr '\r' '\n' <"$T_TMP/tty" >"$T_TMP/tty.lines"
	grep -Eq '^gridagent: sync: .* [0-9]+ records, [0-9]+ B sent, [0-9.]+ (B|KiB|MiB)/s +$' "$T_TMP/tty.lines" &&
		ok "progress: a small upload's size in B, not 0.2 KiB" ||
		{ fail "progress: a small upload's size in B, not 0.2 KiB"; sed 's/^/# /' "$T_TMP/tty.lines"; }
else
	echo "# skipped: the progress line (no script(1) for a terminal)"
fi

done_testing
