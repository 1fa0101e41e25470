#!/bin/sh
# agent-cli.sh - the gridagent command line, journey by journey: init,
# collect (valid, invalid, bulk all-or-nothing), edit, delete, show, list,
# status, help and version, usage errors, and a database from a newer
# program.
. "$GS_TOP/tests/lib.sh"
unset XDG_RUNTIME_DIR # unlock sessions stay in the test home (agent/keys.h)

A=$GRIDAGENT
H=$T_TMP/home
ID_OK=11010519491231002X      # valid GB 11643 (check digit X)
ID_BAD=110105194912310025     # the same with a wrong check digit
PASS=$T_TMP/passphrase        # issue 6: every home is protected
printf 'correct horse battery staple\n' >"$PASS"
UUID_RE='^[0-9a-f]\{8\}-[0-9a-f]\{4\}-7[0-9a-f]\{3\}-[89ab][0-9a-f]\{3\}-[0-9a-f]\{12\}$'

# Count of lines of `list --json --all` (every record, tombstones too).
nrecords() {
	"$A" --home "$H" list --all --json | wc -l | tr -d ' '
}

# ---- help, version, usage
expect_exit 0 "--version" "$A" --version
check "--version names the program" grep -q '^gridagent [0-9]' "$T_TMP/out"
expect_exit 0 "--help" "$A" --help
check "--help lists the commands" sh -c "grep -q collect '$T_TMP/out' &&
	grep -q status '$T_TMP/out'"
for c in init collect edit delete list show status; do
	expect_exit 0 "$c --help" "$A" "$c" --help
	check "$c --help shows its usage" grep -q "usage: gridagent.* $c" \
		"$T_TMP/out"
done
expect_exit 0 "help list" "$A" help list
# Every option a command takes is in its usage, and no usage line passes
# column 79.
for c in $("$A" --help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
	"$A" "$c" --help >"$T_TMP/help.$c" 2>&1
done
# (Over the usage of every command --help lists: 16, not none.)
check "no --help line is over 79 columns" sh -c \
	'[ $(cat "$1"/help.* | grep -c "^usage: gridagent") -ge 16 ] &&
	! cat "$1"/help.* | awk "length > 79" | grep -q .' - "$T_TMP"
check "list --help names --reveal and --id-number" sh -c \
	'grep -q -- "--reveal" "$1" && grep -q -- "--id-number" "$1"' \
	- "$T_TMP/help.list"
check "show --help names --reveal" grep -q -- "--reveal" "$T_TMP/help.show"
check "attach --help names --chunk" grep -q -- "--chunk" "$T_TMP/help.attach"
expect_exit 64 "no command" "$A"
expect_exit 64 "unknown command" "$A" frobnicate
check "unknown command: one gridagent: line" grep -q '^gridagent: ' "$T_TMP/err"
expect_exit 64 "unknown global option" "$A" --frob list
expect_exit 64 "unknown command option" "$A" --home "$H" list --frob

# ---- an empty --home ("--home $UNSET") is a usage error, not the default
# home: init made ~/.gridagent and every command used it.
mkdir "$T_TMP/dflt"
expect_exit 64 "init --home '' exits 64" env HOME="$T_TMP/dflt" "$A" --home "" \
	init --passphrase-file "$PASS"
check "... one line saying so" sh -c 'test "$(wc -l <"$1")" -eq 1 &&
	grep -q "^gridagent: --home needs a directory$" "$1"' - "$T_TMP/err"
check "... and the default home is not made" test ! -e "$T_TMP/dflt/.gridagent"
expect_exit 64 "--home= exits 64" env HOME="$T_TMP/dflt" "$A" --home= status
expect_exit 64 "a command's --home '' exits 64" env HOME="$T_TMP/dflt" "$A" \
	status --home ""

# ---- before init
expect_exit 77 "list before init" "$A" --home "$H" list
check "before init: says to run init" grep -q "gridagent init" "$T_TMP/err"
check "before init: nothing created" test ! -e "$H"
expect_exit 77 "collect before init" "$A" --home "$H" collect person name=x

# ---- a grid or worker id the batch encoder refuses (a control
# character, quote or backslash) is refused by init: it was taken, printed
# raw by status, and every record saved then could never be sent.
n=0
for gw in "--grid a$(printf '\033')[2Jb" "--worker w$(printf '\t')1" '--worker w"1' \
	'--grid a\b'; do
	n=$((n + 1))
	expect_exit 64 "init ${gw%% *} with a bad character exits 64 ($n)" "$A" \
		--home "$T_TMP/badid$n" init "${gw%% *}" "${gw#* }" --passphrase-file "$PASS"
	check "... saying why, nothing made" sh -c 'test ! -e "$2" &&
		grep -q "^gridagent: --[a-z]* has a control character" "$1"' - \
		"$T_TMP/err" "$T_TMP/badid$n"
done

# ---- init
expect_exit 0 "init" "$A" --home "$H" init --grid 440307001001001 --worker w-007 \
	--passphrase-file "$PASS"
check "home is 0700" sh -c "[ \$(stat -c %a '$H') = 700 ]"
check "agent.db is 0600" sh -c "[ \$(stat -c %a '$H/agent.db') = 600 ]"
expect_exit 73 "init twice" "$A" --home "$H" init --passphrase-file "$PASS"
check "init twice: says already initialized" grep -q "already initialized" "$T_TMP/err"
expect_exit 0 "GRIDAGENT_HOME is the default home" env GRIDAGENT_HOME="$H" "$A" status
check "status names the worker" grep -q "w-007" "$T_TMP/out"

# ---- usage errors on an initialized home
expect_exit 64 "collect without a type" "$A" --home "$H" collect
expect_exit 64 "collect without fields" "$A" --home "$H" collect person
expect_exit 64 "collect with fields and --json" "$A" --home "$H" collect person a=b --json -
expect_exit 64 "collect an unknown type" "$A" --home "$H" collect spaceship a=b
check "unknown type: lists the types" grep -q "person" "$T_TMP/err"
expect_exit 64 "show without a uuid" "$A" --home "$H" show
expect_exit 64 "show a malformed uuid" "$A" --home "$H" show nope
expect_exit 64 "list two types" "$A" --home "$H" list person house

# ---- collect: a valid person prints its uuid
expect_exit 0 "collect a valid person" "$A" --home "$H" collect person \
	name=张三 pop_type=REGISTERED id_number=$ID_OK address=大鹏街道1号
U=$(cat "$T_TMP/out")
check "collect prints one uuidv7" sh -c "[ \$(wc -l < '$T_TMP/out') -eq 1 ] &&
	grep -q '$UUID_RE' '$T_TMP/out'"

# ---- the same with a wrong check digit: 65, named, nothing changes
"$A" --home "$H" list --all --json >"$T_TMP/list.before"
"$A" --home "$H" status --json >"$T_TMP/status.before"
expect_exit 65 "wrong check digit exits 65" "$A" --home "$H" collect person \
	name=张三 pop_type=REGISTERED id_number=$ID_BAD address=大鹏街道1号
check "the problem names the field and rule" \
	grep -q '^gridagent: id_number: check digit should be X, not 5$' "$T_TMP/err"
check "nothing printed on stdout" test ! -s "$T_TMP/out"
"$A" --home "$H" list --all --json >"$T_TMP/list.after"
"$A" --home "$H" status --json >"$T_TMP/status.after"
# (Two lists or statuses that failed are equal too: the first must hold
# the record saved above, and the count of records.)
check "list unchanged" sh -c 'grep -q "\"uuid\":\"$1\"" "$2" && cmp -s "$2" "$3"' - \
	"$U" "$T_TMP/list.before" "$T_TMP/list.after"
check "status unchanged" sh -c 'grep -q "\"person\":1" "$1" && cmp -s "$1" "$2"' - \
	"$T_TMP/status.before" "$T_TMP/status.after"
expect_exit 65 "a field the form lacks" "$A" --home "$H" collect person \
	name=x pop_type=FOREIGN address=y colour=blue
check "the unknown field is named" grep -q "colour" "$T_TMP/err"
# One --json object with a bad field: the problem once, on one line (it
# was printed twice, as the problem and again as the error).
printf '{"name":"x","org_kind":"ENTERPRISE","address":"y","employees":"3"}\n' \
	>"$T_TMP/badone.json"
expect_exit 65 "one --json object with a string for an int exits 65" "$A" \
	--home "$H" collect org --json "$T_TMP/badone.json"
check "... one line naming the field and the rule" sh -c 'test "$(wc -l <"$1")" -eq 1 &&
	grep -q "^gridagent: employees: should be an integer, not a string$" "$1"' - "$T_TMP/err"

# ---- bulk import: every bad line listed, nothing saved
"$GRIDGEN" --type person --count 10 --seed 7 >"$T_TMP/good.ndjson"
{
	sed -n 1p "$T_TMP/good.ndjson"
	echo "{\"name\":\"x\",\"pop_type\":\"REGISTERED\",\"id_number\":\"$ID_BAD\",\"address\":\"a\"}"
	sed -n 2p "$T_TMP/good.ndjson"
	echo '{"name": "unterminated'
	echo '{"pop_type":"REGISTERED","address":"a"}'
	sed -n 3p "$T_TMP/good.ndjson"
} >"$T_TMP/mixed.ndjson"
before=$(nrecords)
expect_exit 65 "bulk import with bad lines exits 65" "$A" --home "$H" \
	collect person --json "$T_TMP/mixed.ndjson"
check "bad line 2 listed (check digit)" grep -q '^gridagent: line 2: id_number: check digit' "$T_TMP/err"
check "bad line 4 listed (not JSON)" grep -q '^gridagent: line 4: ' "$T_TMP/err"
check "bad line 5 listed (name required)" grep -q '^gridagent: line 5: name: ' "$T_TMP/err"
check "good lines not listed" sh -c "! grep -q 'line [136]:' '$T_TMP/err'"
check "summary says nothing was saved" grep -q "nothing was saved" "$T_TMP/err"
check "summary counts every line" grep -q "3 of 6 lines are bad" "$T_TMP/err"
check "bulk import saved nothing" test "$(nrecords)" -eq "$before"
check "no uuid printed" test ! -s "$T_TMP/out"

expect_exit 0 "bulk import of 10 good lines" "$A" --home "$H" collect person \
	--json "$T_TMP/good.ndjson"
check "10 uuids printed, all distinct" sh -c "[ \$(grep -c '$UUID_RE' '$T_TMP/out') -eq 10 ] &&
	[ \$(sort -u '$T_TMP/out' | wc -l) -eq 10 ]"
check "10 records more" test "$(nrecords)" -eq $((before + 10))
check "count on stderr" grep -q "saved 10 person records" "$T_TMP/err"

"$GRIDGEN" --type house --count 3 --seed 8 >"$T_TMP/houses.ndjson"
"$A" --home "$H" collect house --json - <"$T_TMP/houses.ndjson" >"$T_TMP/out" 2>"$T_TMP/err"
check "bulk import from stdin" test "$(grep -c "$UUID_RE" "$T_TMP/out")" -eq 3

# One object spread over several lines is one record, not NDJSON.
printf '{\n  "name": "李四",\n  "pop_type": "REGISTERED",\n  "id_number": "%s",\n  "address": "a"\n}\n' \
	"$ID_OK" >"$T_TMP/one.json"
expect_exit 0 "collect --json with one pretty object" "$A" --home "$H" collect person --json "$T_TMP/one.json"
check "one uuid" test "$(grep -c "$UUID_RE" "$T_TMP/out")" -eq 1

# A UTF-8 byte order mark (spreadsheet exports) is skipped.
{ printf '\357\273\277'; cat "$T_TMP/good.ndjson"; } >"$T_TMP/bom.ndjson"
"$A" --home "$H" collect person --json "$T_TMP/bom.ndjson" >"$T_TMP/out" 2>"$T_TMP/err"
check "a byte order mark is skipped" test "$(grep -c "$UUID_RE" "$T_TMP/out")" -eq 10
expect_exit 66 "collect --json of a missing file" "$A" --home "$H" collect person --json "$T_TMP/nope"
# A file over the 256 MiB cap of one import is refused by its size,
# before it is read (a sparse file: nothing to read anyway), nothing saved.
before=$(nrecords)
truncate -s 257M "$T_TMP/huge.ndjson"
expect_exit 65 "collect --json of a file over the cap" "$A" --home "$H" collect person --json "$T_TMP/huge.ndjson"
check "the cap is named" grep -q 'over the limit of 256 MiB' "$T_TMP/err"
check "nothing saved from it" test "$(nrecords)" -eq "$before"
rm -f "$T_TMP/huge.ndjson"
# A line over the 1 MiB cap is a bad line, not a crash.
{ printf '{"name":"'; head -c 1100000 /dev/zero | tr '\0' a; printf '"}\n'; } >"$T_TMP/long.ndjson"
sed -n 1p "$T_TMP/good.ndjson" >>"$T_TMP/long.ndjson"
expect_exit 65 "an over-long line is refused" "$A" --home "$H" collect person --json "$T_TMP/long.ndjson"
check "the over-long line is named" grep -q '^gridagent: line 1: .*limit' "$T_TMP/err"

# ---- edit, show
expect_exit 0 "edit" "$A" --home "$H" edit "$U" phone=13800138000 note=门口有狗
expect_exit 0 "show --json" "$A" --home "$H" show "$U" --json --reveal
check "show --json has the edit" grep -q '"phone":"13800138000"' "$T_TMP/out"
check "show --json has the contract keys" sh -c "grep -q '\"uuid\":\"$U\"' '$T_TMP/out' &&
	grep -q '\"rev\":0' '$T_TMP/out' && grep -q '\"deleted\":false' '$T_TMP/out'"
cp "$T_TMP/out" "$T_TMP/show.before"
expect_exit 65 "edit to an invalid id exits 65" "$A" --home "$H" edit "$U" id_number=$ID_BAD
check "the edit problem is named" grep -q '^gridagent: id_number: ' "$T_TMP/err"
expect_exit 65 "clearing a required field exits 65" "$A" --home "$H" edit "$U" name=
"$A" --home "$H" show "$U" --json --reveal >"$T_TMP/show.after"
check "refused edits changed nothing" cmp -s "$T_TMP/show.before" "$T_TMP/show.after"
expect_exit 0 "show (text)" "$A" --home "$H" show "$U"
check "show prints the labels" grep -q "公民身份号码" "$T_TMP/out"
expect_exit 65 "edit an unknown uuid" "$A" --home "$H" edit 01890000-0000-7000-8000-000000000000 note=x
expect_exit 64 "edit a malformed uuid" "$A" --home "$H" edit nope note=x
expect_exit 64 "edit with no fields" "$A" --home "$H" edit "$U"

# ---- list, status
expect_exit 0 "list --json" "$A" --home "$H" list --json
check "list --json: one record per line with the contract keys" sh -c "
	n=\$(wc -l < '$T_TMP/out')
	k=\$(grep '^{\"uuid\":' '$T_TMP/out' | grep '\"type\":' | grep '\"grid\":' |
		grep '\"rev\":' | grep '\"fields\":{' | grep -c '\"deleted\":')
	[ \$n -eq 25 ] && [ \$k -eq 25 ]"
if command -v jq >/dev/null 2>&1; then
	check "list --json is valid JSON" sh -c "jq -e . '$T_TMP/out' >/dev/null"
fi
expect_exit 0 "list house" "$A" --home "$H" list house --json
check "list house: only houses" sh -c "[ \$(grep -c '\"type\":\"house\"' '$T_TMP/out') -eq 3 ] &&
	[ \$(wc -l < '$T_TMP/out') -eq 3 ]"
expect_exit 0 "status --json" "$A" --home "$H" status --json
check "status counts records by type" grep -q '"person":22' "$T_TMP/out"
check "status counts unsent changes" grep -q '"unsent":25' "$T_TMP/out"
expect_exit 0 "status (text)" "$A" --home "$H" status
check "status text shows unsent" grep -q "unsent: 25" "$T_TMP/out"

# ---- delete
# A reason travels to the platform's admins: an escape sequence in it is
# refused like one in a field (it was taken and sent), nothing changes.
"$A" --home "$H" show "$U" --json >"$T_TMP/show.before"
expect_exit 64 "delete --reason with an escape sequence exits 64" "$A" --home "$H" \
	delete "$U" --reason "moved $(printf '\033')[2J away"
check "... one line naming the character" sh -c 'test "$(wc -l <"$1")" -eq 1 &&
	grep -q "^gridagent: the reason should have no control characters, not U+001B" "$1"' \
	- "$T_TMP/err"
"$A" --home "$H" show "$U" --json >"$T_TMP/show.after"
check "... and the record is not deleted" sh -c 'grep -q "\"deleted\":false" "$1" &&
	cmp -s "$1" "$2"' - "$T_TMP/show.before" "$T_TMP/show.after"
expect_exit 0 "delete" "$A" --home "$H" delete "$U" --reason "moved away"
"$A" --home "$H" show "$U" --json >"$T_TMP/out"
check "a deleted record is a tombstone" grep -q '"deleted":true' "$T_TMP/out"
# (A list that fails shows nothing either: it must exit 0 and show the
# other records.)
"$A" --home "$H" list --json >"$T_TMP/list.del" 2>/dev/null
rc=$?
check "list hides it" sh -c "[ $rc -eq 0 ] && [ \$(wc -l <'$T_TMP/list.del') -eq 24 ] &&
	! grep -q '$U' '$T_TMP/list.del'"
check "list --all shows it" sh -c "'$A' --home '$H' list --all --json | grep -q '$U'"
expect_exit 65 "edit after delete is refused" "$A" --home "$H" edit "$U" note=x
check "edit after delete says deleted" grep -q "deleted" "$T_TMP/err"
expect_exit 65 "delete twice is refused" "$A" --home "$H" delete "$U"
check "one unsent delete change" test "$(sqlite3 "$H/agent.db" \
	"SELECT count(*) FROM change WHERE uuid='$U' AND state=0 AND op='delete' AND fields IS NULL")" -eq 1

# ---- integrity, audit
check "integrity_check ok" test "$(sqlite3 "$H/agent.db" 'PRAGMA integrity_check')" = ok
check "audit has create, edit, delete and import" test "$(sqlite3 "$H/agent.db" \
	"SELECT count(DISTINCT action) FROM audit WHERE action IN ('create','edit','delete','import')")" -eq 4

# ---- a database from a newer program is refused, untouched
sqlite3 "$H/agent.db" 'PRAGMA user_version = 9999' >/dev/null
sum1=$(cksum <"$H/agent.db")
expect_exit 70 "newer database refused" "$A" --home "$H" list
check "newer database: says upgrade" grep -q "newer than this program" "$T_TMP/err"
expect_exit 70 "newer database refused for writes" "$A" --home "$H" collect person --json "$T_TMP/one.json"
check "newer database untouched" test "$(cksum <"$H/agent.db")" = "$sum1"

# ---- a file that is not a database
mkdir -p "$T_TMP/junk"
head -c 8192 /dev/urandom >"$T_TMP/junk/agent.db"
expect_exit 74 "agent.db that is not a database" "$A" --home "$T_TMP/junk" status
check "one error line, saying so" sh -c 'test "$(wc -l <"$1")" -eq 1 &&
	grep -q "^gridagent: .*agent.db: .*not a database" "$1"' - "$T_TMP/err"

# ---- a database that is not the agent's: refused, left as it was.  The
# platform's store was "newer than this program; upgrade" (70); another
# SQLite database at user_version 0 was migrated (the agent's tables
# written into it) and then "not initialized; run 'gridagent init'".
"$GRIDPLATFORM" --home "$T_TMP/pf" init --public-url http://127.0.0.1:9 \
	>/dev/null 2>&1
for kind in platform foreign; do
	case $kind in
	platform) cp "$T_TMP/pf/platform.db" "$T_TMP/junk/agent.db" ;;
	foreign) rm -f "$T_TMP/junk/agent.db"
		sqlite3 "$T_TMP/junk/agent.db" \
		    'PRAGMA user_version=0; CREATE TABLE t(x);' ;;
	esac
	cp "$T_TMP/junk/agent.db" "$T_TMP/junk.db"
	for c in status list "collect person name=张三 pop_type=REGISTERED \
	    id_number=$ID_OK address=x" sync; do
		# shellcheck disable=SC2086
		expect_exit 74 "$kind database: ${c%% *} exits 74" "$A" \
		    --home "$T_TMP/junk" $c
		check "... one line: not the agent's database" sh -c \
		    'test "$(wc -l <"$1")" = 1 &&
		    grep -q "^gridagent: .*agent.db: .*not the agent.s database" "$1"' \
		    - "$T_TMP/err"
	done
	check "$kind database: left as it was" cmp -s "$T_TMP/junk/agent.db" \
	    "$T_TMP/junk.db"
done

# ---- an empty agent.db (an init that stopped before SQLite wrote) is
# "run init", and is left empty: it was migrated first.
: >"$T_TMP/junk/agent.db"
for c in status list "collect person --json $T_TMP/one.json"; do
	# shellcheck disable=SC2086
	expect_exit 77 "empty agent.db: ${c%% *} exits 77" "$A" \
	    --home "$T_TMP/junk" $c
	check "... one line: run init" sh -c 'test "$(wc -l <"$1")" = 1 &&
	    grep -q "empty.*run .gridagent init" "$1"' - "$T_TMP/err"
done
check "empty agent.db: left empty" sh -c 'test -f "$1" && test ! -s "$1"' - \
    "$T_TMP/junk/agent.db"

# ---- a store of ours that lost a table, an index or a trigger (a DROP
# by hand, a bad restore) is damaged: refused on every command, left as
# it was.  Without its outbox, collect saved and only sync failed ("no
# such table: outbox"); without an index or a trigger nothing was said.
"$A" --home "$T_TMP/whole" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
for obj in "table outbox" "table pending_creation" "index change_unsent" \
    "trigger audit_no_update"; do
	rm -rf "$T_TMP/lost"
	cp -R "$T_TMP/whole" "$T_TMP/lost"
	sqlite3 "$T_TMP/lost/agent.db" "DROP $obj"
	cp "$T_TMP/lost/agent.db" "$T_TMP/lost.db"
	for c in "collect person --json $T_TMP/one.json" status sync; do
		# shellcheck disable=SC2086
		expect_exit 74 "$obj dropped: ${c%% *} exits 74" "$A" \
		    --home "$T_TMP/lost" $c
		check "... one line: $obj is missing" sh -c \
		    'test "$(wc -l <"$1")" = 1 &&
		    grep -q "^gridagent: .*agent.db: damaged: $2 is missing" "$1"' \
		    - "$T_TMP/err" "$obj"
	done
	check "$obj dropped: left as it was" cmp -s "$T_TMP/lost/agent.db" \
	    "$T_TMP/lost.db"
done
expect_exit 0 "the same store whole: collect saves" "$A" \
    --home "$T_TMP/whole" collect person --json "$T_TMP/one.json"

# ---- a damaged wrap of the data key is damage, not a wrong passphrase:
# the right passphrase was "wrong passphrase (9 attempts left before the
# data key is destroyed)" and counted as a failed attempt.
K=$T_TMP/keyring
"$A" --home "$K" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
"$A" --home "$K" lock >/dev/null 2>&1
sqlite3 "$K/agent.db" "UPDATE keyring SET dek_wrap = x'00'" >/dev/null
cp "$K/agent.db" "$T_TMP/keyring.db"
expect_exit 74 "damaged key wrap: unlock exits 74" "$A" --home "$K" unlock \
	--passphrase-file "$PASS"
check "... one line: damaged" sh -c 'test "$(wc -l <"$1")" = 1 &&
    grep -q "^gridagent: keyring: .*damaged" "$1"' - "$T_TMP/err"
check "damaged key wrap: no attempt counted, left as it was" cmp -s \
    "$K/agent.db" "$T_TMP/keyring.db"

# ---- a store whose user_version was set back to 5 is left as it was: the
# open ran migration 0006 again (it rebuilds the change table, and
# succeeded), committed schema 6, then failed in 0007 on a table it had.
S=$T_TMP/setback
"$A" --home "$S" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
"$A" --home "$S" collect person name=张三 pop_type=REGISTERED \
	id_number=$ID_OK address=x >/dev/null 2>&1
sqlite3 "$S/agent.db" 'PRAGMA user_version = 5' >/dev/null
cp "$S/agent.db" "$T_TMP/setback.db"
for c in status list; do
	expect_exit 74 "user_version set back: $c exits 74" "$A" --home "$S" $c
	check "... one line naming the file" sh -c \
	    'test "$(wc -l <"$1")" = 1 && grep -q "^gridagent: .*agent.db: " "$1"' \
	    - "$T_TMP/err"
done
check "user_version set back: left as it was" cmp -s "$S/agent.db" \
    "$T_TMP/setback.db"

# ---- output nobody can read (a full disk, stdout closed): 74 and one
# line, and a save says it was saved, so that it is not saved twice.
H=$T_TMP/out-home
"$A" --home "$H" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
n0=$("$A" --home "$H" list --json 2>/dev/null | wc -l)
expect_exit 74 "collect to /dev/full exits 74" sh -c '"$0" --home "$1" \
    collect person name=张三 pop_type=REGISTERED id_number=$2 address=x \
    >/dev/full' "$A" "$H" "$ID_OK"
check "... saying it saved the record" grep -q \
    '^gridagent: saved [0-9a-f-]*, but cannot write its uuid' "$T_TMP/err"
u=$(sed -n 's/^gridagent: saved \([0-9a-f-]*\),.*/\1/p' "$T_TMP/err")
check "... which is saved once" test "$("$A" --home "$H" list --json |
    grep -c "\"$u\"")" -eq 1 -a "$("$A" --home "$H" list --json |
    wc -l)" -eq $((n0 + 1))
# A home whose path is not UTF-8 (a path is bytes): status --json said
# "out of memory".
NU=$T_TMP/$(printf 'bad\377x')
"$A" --home "$NU" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
expect_exit 0 "status --json of a home that is not UTF-8" "$A" --home "$NU" \
	status --json
check "... is JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))' \
	"$T_TMP/out"

for c in "list --json" "status --json" --version; do
	expect_exit 74 "$c with stdout closed exits 74" sh -c \
	    '"$0" --home "$1" $2 >&-' "$A" "$H" "$c"
	check "... one line saying so" sh -c 'test "$(wc -l <"$1")" = 1 &&
	    grep -q "^gridagent: cannot write the output" "$1"' - "$T_TMP/err"
done

# A home longer than the store's files allow (SQLite: 512 bytes with the
# "-journal" suffix): refused before anything is made.  init failed with
# a cut-off path and left an empty agent.db behind.
# long_home N: a path under $T_TMP of exactly N bytes, in short parts.
long_home() {
	p="$T_TMP/lh"
	while [ ${#p} -lt $(($1 - 60)) ]; do
		p="$p/dddddddddddddddddddddddddddddddddddddddddddddddd"
	done
	while [ ${#p} -lt "$1" ]; do p="${p}e"; done
	echo "$p"
}
LH=$(long_home 496)
expect_exit 64 "init of a 496-byte home is refused (64)" "$A" --home "$LH" \
	init --passphrase-file "$PASS"
check "... one line saying how long it may be" sh -c 'test "$(wc -l <"$1")" = 1 &&
	grep -q "at most 495" "$1"' - "$T_TMP/err"
check "... and nothing is made" test ! -e "$T_TMP/lh"
expect_exit 64 "... status there says the same" "$A" --home "$LH" status
expect_exit 0 "a 495-byte home works" "$A" --home "$(long_home 495)" init \
	--passphrase-file "$PASS"

# A file where the home should be: every command says so (74), as init
# does; status said "no agent store ...; run 'gridagent init' first" (77),
# which init then refused.
printf 'x\n' >"$T_TMP/afile"
expect_exit 74 "status with a file for a home (74)" "$A" --home "$T_TMP/afile" status
check "... saying it is not a directory" grep -q "afile is not a directory" "$T_TMP/err"
expect_exit 74 "... and with a home under a file" "$A" --home "$T_TMP/afile/h" list
# init cannot create a home there: 73 (DESIGN 7 "cannot create"), as
# gridplatform init; it was 74.
expect_exit 73 "init with a file for a home (73, cannot create)" "$A" \
	--home "$T_TMP/afile" init --passphrase-file "$PASS"
check "... naming it" grep -q "^gridagent: cannot create the home .*afile: it exists and is not a directory" "$T_TMP/err"
expect_exit 73 "init with a home under a file (73)" "$A" \
	--home "$T_TMP/afile/h" init --passphrase-file "$PASS"
check "... naming the directory" grep -q "^gridagent: cannot create .*afile/h: Not a directory" "$T_TMP/err"
if [ "$(id -u)" != 0 ]; then
	mkdir "$T_TMP/ro" && chmod 500 "$T_TMP/ro"
	expect_exit 73 "init under a parent it may not write (73)" "$A" \
		--home "$T_TMP/ro/h" init --passphrase-file "$PASS"
	chmod 700 "$T_TMP/ro"
fi

# ---- a time typed with the handheld's zone (+08:00) is stored as the
# same instant in UTC; one typed with no zone is refused with how to type
# it, and nothing is saved.
TZH=$T_TMP/tz
"$A" --home "$TZH" init --grid 440307001001 --worker W0001 \
	--passphrase-file "$PASS" >/dev/null 2>&1
EV="category=CM_GARBAGE title=暴露垃圾 place=葵涌 urgency=NORMAL"
# shellcheck disable=SC2086 # $EV is several NAME=VALUE arguments
expect_exit 0 "collect event with occurred_at in +08:00" "$A" --home "$TZH" \
	collect event $EV occurred_at=2026-01-05T09:30:00+08:00
TZU=$(cat "$T_TMP/out")
expect_exit 0 "show the event" "$A" --home "$TZH" show "$TZU" --json
check "... stored as UTC, 8 hours earlier" grep -q \
	'"occurred_at":"2026-01-05T01:30:00Z"' "$T_TMP/out"
expect_exit 0 "edit it with a -05:00 time" "$A" --home "$TZH" edit "$TZU" \
	occurred_at=2026-01-04T20:30:00.500-05:00
"$A" --home "$TZH" show "$TZU" --json >"$T_TMP/out"
check "... stored as UTC, milliseconds kept" grep -q \
	'"occurred_at":"2026-01-05T01:30:00.500Z"' "$T_TMP/out"
# shellcheck disable=SC2086
expect_exit 65 "a time with no zone exits 65" "$A" --home "$TZH" \
	collect event $EV occurred_at=2026-01-05T09:30:00
check "... and says how to type it" grep -q \
	'occurred_at: should be a time with its zone, like 2026-11-26T15:04:33+08:00' \
	"$T_TMP/err"
check "... and saved nothing" sh -c \
	'[ "$("$1" --home "$2" list --all --json | wc -l)" -eq 1 ]' - "$A" "$TZH"

# ---- a ref names another record (DESIGN.md section 3), never the record
# itself: refused at the edit, nothing changed.
"$A" --home "$TZH" show "$TZU" --json >"$T_TMP/self.before"
expect_exit 65 "edit: a ref to the record itself exits 65" "$A" --home "$TZH" \
	edit "$TZU" subject="$TZU"
check "... named, with its rule" grep -q \
	'^gridagent: subject: should name another record, not this one' "$T_TMP/err"
"$A" --home "$TZH" show "$TZU" --json >"$T_TMP/self.after"
check "... and changed nothing" cmp -s "$T_TMP/self.before" "$T_TMP/self.after"

done_testing
