#!/bin/sh
# pii-heap.sh - the agent leaves no personal data in the memory it frees:
# every block the real gridagent frees, while collecting, syncing,
# pulling, listing and showing with --reveal and editing, is scanned
# (tests/tools/freescan.c, LD_PRELOAD) for the id numbers and phones of
# the people it handles, and none may hold one.  Before the wipes a sync
# of 300 people freed dozens of such blocks (buffers grown by realloc,
# zlib's window, jansson's values), a pull and a list hundreds.
#
# The platform's memory is not held to this (its database keeps the
# records in the clear by design): it is the scanner's control, which
# must find the marks there.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

SCAN="$BUILD_DIR/tools/freescan.so"
preload_or_skip "$SCAN" "the sanitizers' allocator cannot have a scanner preloaded in front of it"

# scanned LABEL COMMAND...: runs COMMAND with the scanner; ok when it
# exits 0 and freed blocks, none holding a mark.
scanned() {
	d=$1
	shift
	rm -f "$T_TMP/scan"
	GS_FREESCAN_MARKS="$T_TMP/marks" GS_FREESCAN_OUT="$T_TMP/scan" \
		LD_PRELOAD="$SCAN" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	rc=$?
	read -r _ freed _ held <"$T_TMP/scan" 2>/dev/null || { freed=0; held=?; }
	if [ "$rc" -eq 0 ] && [ "$freed" -gt 0 ] && [ "$held" = 0 ]; then
		ok "$d: $freed blocks freed, none holding personal data"
	else
		fail "$d: exit $rc, $freed blocks freed, $held holding personal data"
		sed 's/^/#   err: /' "$T_TMP/err" | head -n 5
	fi
}

sync_ready
B="$T_TMP/ag2"
sync_enroll "$B" || fail "a second device"

"$GRIDGEN" --type person --count 300 --seed 73 >"$T_TMP/people.ndjson"
# The marks: every id number and phone (grep, not a parser: no stdio or
# allocator of ours involved).
grep -o '"id_number":"[0-9X]*"' "$T_TMP/people.ndjson" | cut -d'"' -f4 >"$T_TMP/marks"
grep -o '"phone":"[0-9]*"' "$T_TMP/people.ndjson" | cut -d'"' -f4 >>"$T_TMP/marks"
check "marks: 300 id numbers and some phones" test "$(wc -l <"$T_TMP/marks")" -gt 300

scanned "collect --json" ag collect person --json "$T_TMP/people.ndjson"
u=$(head -n 1 "$T_TMP/out")
scanned "sync (300 people up)" ag sync
scanned "edit a phone" ag edit "$u" phone=13912345678
scanned "show --reveal" ag show "$u" --reveal
check "... which did show the id number" grep -q "$(head -n 1 "$T_TMP/marks")" "$T_TMP/out"
scanned "list --json --reveal" ag list --json --reveal
scanned "sync (the edit up)" ag sync
scanned "a second device's sync (300 people down)" \
	"$GRIDAGENT" --home "$B" sync
scanned "... its list --reveal" "$GRIDAGENT" --home "$B" list --reveal
check "... which holds the 300" test "$(grep -c . "$T_TMP/out")" -ge 300

# The control: the scanner does find personal data where it is left.
GS_FREESCAN_MARKS="$T_TMP/marks" GS_FREESCAN_OUT="$T_TMP/scan" \
	LD_PRELOAD="$SCAN" "$GRIDPLATFORM" --home "$PH" export --format ndjson \
	>/dev/null 2>&1
read -r _ freed _ held <"$T_TMP/scan" 2>/dev/null || held=0
[ "$held" -gt 0 ] 2>/dev/null &&
	ok "control: the platform's export frees $held blocks holding them" ||
	fail "control: the scanner finds nothing in the platform's export ($held)"

done_testing
