#!/bin/sh
# agent-diskfull.sh - I/O errors from SQLite, made real with a file-size
# limit (ulimit -f; SIGXFSZ ignored so write() fails with EFBIG): a save
# or import that cannot be written exits 74, prints no uuid, saves
# nothing, and the store is intact and usable once space is back.
. "$GS_TOP/tests/lib.sh"
unset XDG_RUNTIME_DIR # unlock sessions stay in the test home (agent/keys.h)

A=$GRIDAGENT
H=$T_TMP/home

printf 'correct horse battery staple\n' >"$T_TMP/passphrase"
expect_exit 0 "init" "$A" --home "$H" init --grid 440307001001001 --worker w-full \
	--passphrase-file "$T_TMP/passphrase"
"$GRIDGEN" --type person --count 3 --seed 5 >"$T_TMP/few.ndjson"
"$GRIDGEN" --type person --count 20000 --seed 6 >"$T_TMP/many.ndjson"
expect_exit 0 "a first import" "$A" --home "$H" collect person --json "$T_TMP/few.ndjson"

q() {
	sqlite3 "$H/agent.db" "$1"
}

# limited BLOCKS CMD...: runs CMD with files capped at BLOCKS blocks.
limited() {
	blocks=$1
	shift
	sh -c 'trap "" XFSZ; ulimit -f "$0" && exec "$@"' "$blocks" "$@"
}

# A 20,000-record import needs tens of MB of WAL; allow about 2 MB.
expect_exit 74 "an import the disk cannot hold exits 74" \
	limited 4000 "$A" --home "$H" collect person --json "$T_TMP/many.ndjson"
check "it names an I/O error" grep -q '^gridagent: .*I/O error' "$T_TMP/err"
check "no uuid printed" test ! -s "$T_TMP/out"
check "nothing of it saved" test "$(q 'SELECT count(*) FROM record')" -eq 3
check "records and changes agree" test "$(q 'SELECT (SELECT count(*) FROM change) + (SELECT count(*) FROM pending_creation)')" -eq 3
check "integrity ok" test "$(q 'PRAGMA integrity_check')" = ok

# Too little room to even open the store's shared memory or journal.
expect_exit 74 "a save with no room exits 74" limited 8 "$A" --home "$H" \
	collect person name=x pop_type=FOREIGN nationality=USA passport_no=AB12345 address=x
check "... naming an I/O error" grep -q '^gridagent: .*I/O error' "$T_TMP/err"
check "no uuid printed for the refused save" test ! -s "$T_TMP/out"
check "nothing saved" test "$(q 'SELECT count(*) FROM record')" -eq 3

# Space is back: everything works, nothing half-done is left over.
expect_exit 0 "the same import succeeds later" "$A" --home "$H" collect person \
	--json "$T_TMP/many.ndjson"
check "all of it saved" test "$(q 'SELECT count(*) FROM record')" -eq 20003
check "integrity ok after" test "$(q 'PRAGMA integrity_check')" = ok
check "two import audit rows" test "$(q "SELECT count(*) FROM audit WHERE action='import'")" -eq 2

done_testing
