#!/bin/sh
# progress-tty.sh - long commands show a progress line on a terminal's
# stderr, and only there (core/progress.h): bulk collect --json, export
# (NDJSON, CSV) and purge.  Each runs twice, its stderr once on a pseudo-
# terminal and once into a file: the terminal shows the line (and it is
# wiped at the end), the file gets none of it, and stdout is the same
# bytes both ways.  GRIDSYNC_PROGRESS_MS=0 redraws at every item, so a
# small data set shows it however fast the machine is.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready

# tty OUT ERR CMD...: CMD with stdout into OUT and stderr on a new pseudo-
# terminal; what the terminal showed goes into ERR.  Exits as CMD did.
tty() {
	"$PY" - "$@" <<'PY'
import os, pty, subprocess, sys
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
m, s = pty.openpty()
with open(out, "wb") as fo:
    p = subprocess.Popen(cmd, stdout=fo, stderr=s, stdin=subprocess.DEVNULL)
os.close(s)
got = b""
while True:
    try:
        b = os.read(m, 65536)
    except OSError:  # EIO: the last holder of the terminal is gone
        break
    if not b:
        break
    got += b
rc = p.wait()
open(err, "wb").write(got)
sys.exit(rc)
PY
}

# both OUT CMD...: stdout and stderr on one pseudo-terminal, into OUT.
both() {
	"$PY" - "$@" <<'PY'
import os, pty, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid, m = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
got = b""
while True:
    try:
        b = os.read(m, 65536)
    except OSError:
        break
    if not b:
        break
    got += b
_, st = os.waitpid(pid, 0)
open(out, "wb").write(got)
sys.exit(os.waitstatus_to_exitcode(st))
PY
}

# shown ERR TEXT: the terminal showed "\rPROGRAM: TEXT" at least once.
shown() { grep -q "$(printf '\r')[a-z]*: $2" "$1"; }
# wiped ERR: the last progress line was blanked ("\r<spaces>\r") after.
wiped() { "$PY" -c '
import re, sys
t = open(sys.argv[1], "rb").read()
sys.exit(0 if re.search(rb"\r +\r", t) else 1)' "$1"; }
# quiet ERR: no carriage return at all in what went to the file.
quiet() { ! grep -q "$(printf '\r')" "$1" && ! grep -q "$2" "$1"; }

export GRIDSYNC_PROGRESS_MS=0
N=1500
"$GRIDGEN" --type person --count $N --seed 11 >"$T_TMP/people"

# Bulk collect: the uuids differ from one import to the next, so stdout is
# compared in form: N uuids, one per line, both ways.
tty "$T_TMP/c1.out" "$T_TMP/c1.tty" "$GRIDAGENT" --home "$AH" collect person \
	--json "$T_TMP/people"
[ $? -eq 0 ] && ok "collect --json on a terminal exits 0" ||
	fail "collect --json on a terminal exits 0"
shown "$T_TMP/c1.tty" "collect: line [0-9]* checked" &&
	ok "collect: the terminal shows the lines checked" ||
	fail "collect: the terminal shows the lines checked"
shown "$T_TMP/c1.tty" "collect: $N records checked, saving" &&
	ok "collect: ... then that it saves" ||
	fail "collect: ... then that it saves"
wiped "$T_TMP/c1.tty" && grep -q "saved $N person records" "$T_TMP/c1.tty" &&
	ok "collect: the line is wiped before the summary" ||
	fail "collect: the line is wiped before the summary"
ag collect person --json "$T_TMP/people" >"$T_TMP/c2.out" 2>"$T_TMP/c2.err"
printf 'gridagent: saved %s person records\n' $N | cmp -s - "$T_TMP/c2.err" &&
	ok "collect: stderr into a file is the summary alone" ||
	fail "collect: stderr into a file is the summary alone"
[ "$(grep -Ec '^[0-9a-f-]{36}$' "$T_TMP/c1.out")" = $N ] &&
	[ "$(grep -Ec '^[0-9a-f-]{36}$' "$T_TMP/c2.out")" = $N ] &&
	[ "$(wc -c <"$T_TMP/c1.out")" = "$(wc -c <"$T_TMP/c2.out")" ] &&
	ok "collect: stdout is $N uuids both ways" ||
	fail "collect: stdout is $N uuids both ways"

# Attachment uploads in a sync: small chunks, so a 3 MB photo takes many.
export GRIDAGENT_ATTACH_CHUNK=65536
"$GRIDGEN" --type house --count 3 --seed 5 >"$T_TMP/houses"
ag collect house --json "$T_TMP/houses" >"$T_TMP/hu" 2>/dev/null
head -c 3000000 /dev/urandom >"$T_TMP/a.jpg"
head -c 3000000 /dev/urandom >"$T_TMP/b.jpg"
ag attach "$(sed -n 1p "$T_TMP/hu")" "$T_TMP/a.jpg" >/dev/null &&
	ok "attach a 3 MB photo" || fail "attach a 3 MB photo"
tty "$T_TMP/s1.out" "$T_TMP/s1.tty" "$GRIDAGENT" --home "$AH" sync
[ $? -eq 0 ] && ok "sync on a terminal exits 0" ||
	fail "sync on a terminal exits 0"
shown "$T_TMP/s1.tty" "sync: attachment 1 of 1, [0-9.]* of 2.[0-9] MiB sent" &&
	ok "sync: the terminal shows the attachment's upload" ||
	fail "sync: the terminal shows the attachment's upload"
grep -q "all acked" "$T_TMP/s1.out" && ok "... and the summary on stdout" ||
	fail "... and the summary on stdout"
ag attach "$(sed -n 2p "$T_TMP/hu")" "$T_TMP/b.jpg" >/dev/null
ag sync >"$T_TMP/s2.out" 2>"$T_TMP/s2.err"
[ $? -eq 0 ] && quiet "$T_TMP/s2.err" "attachment 1 of" &&
	grep -q "all acked" "$T_TMP/s2.out" &&
	ok "sync: nothing of it on stderr into a file" ||
	fail "sync: nothing of it on stderr into a file"
# A photo the platform refuses: the error is a line of its own.
head -c 3000000 /dev/urandom >"$T_TMP/c.jpg"
ag attach "$(sed -n 3p "$T_TMP/hu")" "$T_TMP/c.jpg" >/dev/null
pf attachment limit 1000000 >/dev/null && restart_platform
tty "$T_TMP/s3.out" "$T_TMP/s3.tty" "$GRIDAGENT" --home "$AH" sync
rc=$?
"$PY" -c '
import re, sys
t = open(sys.argv[1], "rb").read()
sys.exit(0 if b"attachment 1 of 1" in t and b"cannot be sent" in t and
         not re.search(rb"[^\r\n]gridagent: [a-z]*:? ?attachment [0-9a-f]{16}\.\.\. cannot", t)
         else 1)' "$T_TMP/s3.tty" && [ $rc -eq 65 ] &&
	ok "sync: a refused photo's error starts a line (exit 65)" ||
	fail "sync: a refused photo's error starts a line (exit $rc)"
pf attachment limit 67108864 >/dev/null && restart_platform
unset GRIDAGENT_ATTACH_CHUNK
# A bad line's problem is a line of its own, not the progress line's tail.
sed '700s/.*/{"name":1}/' "$T_TMP/people" >"$T_TMP/bad"
tty "$T_TMP/c3.out" "$T_TMP/c3.tty" "$GRIDAGENT" --home "$AH" collect person \
	--json "$T_TMP/bad"
rc=$?
"$PY" -c '
import re, sys
t = open(sys.argv[1], "rb").read()
sys.exit(0 if b"gridagent: line 700: name:" in t and
         not re.search(rb"[^\r\n]gridagent: line 700", t) else 1)' "$T_TMP/c3.tty" &&
	[ $rc -eq 65 ] && ok "collect: a bad line's problem starts a line (exit 65)" ||
	fail "collect: a bad line's problem starts a line (exit $rc)"

expect_exit 0 "sync the $((2 * N)) records" ag sync

# Export, each format: the same bytes on stdout with and without a terminal.
for f in ndjson csv; do
	tty "$T_TMP/e1.out" "$T_TMP/e1.tty" "$GRIDPLATFORM" --home "$PH" export \
		--format $f
	[ $? -eq 0 ] && ok "export $f on a terminal exits 0" ||
		fail "export $f on a terminal exits 0"
	shown "$T_TMP/e1.tty" "export: [0-9]* records written" &&
		ok "export $f: the terminal shows the records written" ||
		fail "export $f: the terminal shows the records written"
	wiped "$T_TMP/e1.tty" && ok "export $f: the line is wiped at the end" ||
		fail "export $f: the line is wiped at the end"
	pf export --format $f >"$T_TMP/e2.out" 2>"$T_TMP/e2.err"
	[ ! -s "$T_TMP/e2.err" ] &&
		ok "export $f: nothing on stderr into a file" ||
		fail "export $f: nothing on stderr into a file"
	cmp -s "$T_TMP/e1.out" "$T_TMP/e2.out" && [ -s "$T_TMP/e1.out" ] &&
		ok "export $f: stdout is the same bytes both ways" ||
		fail "export $f: stdout is the same bytes both ways"
done
[ "$(wc -l <"$T_TMP/e2.out")" -gt $((2 * N)) ] &&
	ok "export: all the records" || fail "export: all the records"
# Records scrolling on the terminal are their own progress: no line is
# drawn among them.
both "$T_TMP/e3.tty" "$GRIDPLATFORM" --home "$PH" export --format ndjson
! grep -q "export: [0-9]* records written" "$T_TMP/e3.tty" &&
	[ "$(grep -c '"uuid"' "$T_TMP/e3.tty")" = $((2 * N + 3)) ] &&
	ok "export to the terminal itself: the records alone" ||
	fail "export to the terminal itself: the records alone"

# Purge, on two copies of the home (a purge is done once).
cp -Rp "$AH" "$T_TMP/ag2"
tty "$T_TMP/p1.out" "$T_TMP/p1.tty" "$GRIDAGENT" --home "$AH" purge --days 0
[ $? -eq 0 ] && ok "purge on a terminal exits 0" ||
	fail "purge on a terminal exits 0"
shown "$T_TMP/p1.tty" "purge: [0-9]* records, [0-9]* changes stripped" &&
	ok "purge: the terminal shows the records stripped" ||
	fail "purge: the terminal shows the records stripped"
wiped "$T_TMP/p1.tty" && ok "purge: the line is wiped at the end" ||
	fail "purge: the line is wiped at the end"
"$GRIDAGENT" --home "$T_TMP/ag2" purge --days 0 >"$T_TMP/p2.out" \
	2>"$T_TMP/p2.err"
[ ! -s "$T_TMP/p2.err" ] && ok "purge: nothing on stderr into a file" ||
	fail "purge: nothing on stderr into a file"
cmp -s "$T_TMP/p1.out" "$T_TMP/p2.out" &&
	[ "$(cat "$T_TMP/p1.out")" = "$((2 * N + 3)) records purged" ] &&
	ok "purge: stdout is the same both ways ($(head -c 40 "$T_TMP/p2.out"))" ||
	fail "purge: stdout is the same both ways ($(head -c 40 "$T_TMP/p2.out"))"

done_testing

# The batch lines on a terminal: with two connections under way, the
# bytes sent only grow, and the last line says what the summary says.
expect_exit 0 "collect $N more" ag collect person --json "$T_TMP/people"
tty "$T_TMP/s4.out" "$T_TMP/s4.tty" "$GRIDAGENT" --home "$AH" sync \
	--batch-records 100
[ $? -eq 0 ] && ok "sync them on a terminal, in batches of 100" ||
	fail "sync them on a terminal, in batches of 100"
"$PY" - "$T_TMP/s4.tty" "$T_TMP/s4.out" $(((N + 99) / 100)) <<'PY' &&
import re, sys
units = {b"B": 1, b"KiB": 1024, b"MiB": 1 << 20, b"GiB": 1 << 30}
t = open(sys.argv[1], "rb").read()
lines = re.findall(rb"acked (\d+)/\d+ batches, \d+ records, ([0-9.]+) (B|KiB|MiB) sent", t)
sizes = [float(n) * units[u] for _, n, u in lines]
summary = re.search(rb"([0-9.]+ (?:B|KiB|MiB)) in ", open(sys.argv[2], "rb").read() + t)
ok = (len(lines) >= 2 and int(lines[-1][0]) == int(sys.argv[3]) and
      all(b >= a for a, b in zip(sizes, sizes[1:])) and summary is not None and
      b"%s %s" % (lines[-1][1], lines[-1][2]) == summary.group(1))
if not ok:
    print("# lines:", lines[-3:], "summary:", summary and summary.group(1))
sys.exit(0 if ok else 1)
PY
	ok "sync: the bytes sent only grow, the last line as the summary" ||
	fail "sync: the bytes sent only grow, the last line as the summary"
