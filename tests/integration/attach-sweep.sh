#!/bin/sh
# attach-sweep.sh - abandoned partial uploads are swept: one untouched for
# the partial age is removed (logged) by `gridplatform attachment sweep`
# and by serve when a new upload starts; a younger one stays; a device that
# comes back after its partial was swept starts that file over cleanly.
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

jpeg() { { printf '\377\330\377\340'; head -c "$2" /dev/urandom; } >"$1"; }
event() {
	ag collect event category=CM_MANHOLE title=井盖破损 place=鹏城社区 \
		occurred_at=2026-04-01T10:00:00Z urgency=URGENT
}
sync_ready
check "first sync" ag sync

[ "$(pf attachment partial-age)" = 604800 ] && ok "the partial age is 7 days by default" ||
	fail "the partial age is 7 days by default ($(pf attachment partial-age))"
expect_exit 64 "a partial age of 0 is refused (64)" pf attachment partial-age 0
# --json: one object (it printed the bare value)
pf attachment partial-age --json >"$T_TMP/pa.json"
[ "$(json_get "$T_TMP/pa.json" '(d["setting"], d["value"], d["default"])')" = "('partial-age', 604800, 604800)" ] &&
	ok "attachment partial-age --json" ||
	{ fail "attachment partial-age --json"; sed 's/^/# /' "$T_TMP/pa.json"; }
pf attachment limit --json >"$T_TMP/lim.json"
[ "$(json_get "$T_TMP/lim.json" '(d["setting"], d["value"] == d["default"])')" = "('limit', True)" ] &&
	ok "attachment limit --json" ||
	{ fail "attachment limit --json"; sed 's/^/# /' "$T_TMP/lim.json"; }
pf attachment limit --help >"$T_TMP/help" 2>&1
grep -q 'limit \[BYTES\] \[--json\]' "$T_TMP/help" && ok "... and --help says so" ||
	fail "... and --help says so"
expect_exit 64 "--older-than goes with sweep only (64)" pf attachment list --older-than 5

# ---- a partial upload left behind by an agent killed mid-upload
jpeg "$T_TMP/a.jpg" $((2 * 1024 * 1024))
E1=$(event)
H1=$(ag attach "$E1" "$T_TMP/a.jpg")
GRIDAGENT_ATTACH_CHUNK=262144 GRIDAGENT_FAULT=kill-after-chunk=2 ag sync >/dev/null 2>&1
P1="$PH/attachments/partial/$DEV_ID-$H1"
[ -s "$P1" ] && ok "an upload is left partial" || fail "an upload is left partial"
expect_exit 0 "sweep with the default age" pf attachment sweep
grep -q "^0 abandoned" "$T_TMP/out" && [ -s "$P1" ] &&
	ok "... keeps a partial touched just now" || fail "... keeps a partial touched just now"
touch -d '3 hours ago' "$P1"
expect_exit 0 "sweep --older-than 7200" pf attachment sweep --older-than 7200
grep -q "^1 abandoned" "$T_TMP/out" && [ ! -e "$P1" ] &&
	ok "... removes the partial untouched for 3 hours" ||
	fail "... removes the partial untouched for 3 hours ($(cat "$T_TMP/out"))"
grep -q "swept abandoned partial upload $DEV_ID-$H1" "$T_TMP/err" &&
	ok "... and logs it" || fail "... and logs it"
# The running platform held that upload's stream state: it must notice.
check "the device comes back: its sync starts the file over" ag sync
[ -f "$PH/attachments/$H1" ] && [ -z "$(ls "$PH/attachments/partial")" ] &&
	ok "... and the platform stores it, no partial left" ||
	fail "... and the platform stores it, no partial left"
pf attachment get "$H1" --out "$T_TMP/back.jpg" >/dev/null 2>&1
cmp -s "$T_TMP/back.jpg" "$T_TMP/a.jpg" && ok "... intact" || fail "... intact"

# ---- serve sweeps by itself when a new upload starts (short age)
pf attachment partial-age 60 >/dev/null
[ "$(pf attachment partial-age)" = 60 ] && ok "the partial age is set to 60 s" ||
	fail "the partial age is set to 60 s"
OLD="$PH/attachments/partial/$(printf 'ab%.0s' $(seq 16))-$(printf 'cd%.0s' $(seq 32))"
head -c 5000 /dev/urandom >"$OLD"
touch -d '2 minutes ago' "$OLD"
YOUNG="$PH/attachments/partial/$(printf 'ab%.0s' $(seq 16))-$(printf 'ef%.0s' $(seq 32))"
head -c 5000 /dev/urandom >"$YOUNG"
stop_platform
start_platform "$PH" || fail "the platform restarts"
jpeg "$T_TMP/b.jpg" 100000
E2=$(event)
ag attach "$E2" "$T_TMP/b.jpg" >/dev/null
check "a new upload" ag sync --platform "$PF_URL"
[ ! -e "$OLD" ] && ok "serve swept the partial untouched for 2 minutes" ||
	fail "serve swept the partial untouched for 2 minutes"
[ -e "$YOUNG" ] && ok "... and kept the young one" || fail "... and kept the young one"
grep -q "swept abandoned partial upload" "$PH/serve.log" && ok "... logged" ||
	fail "... logged"

done_testing
