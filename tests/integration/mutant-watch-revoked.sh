#!/bin/sh
# mutant-watch-revoked.sh - `sync --watch` of a device the platform
# revoked stops (exit 77) once its batch is quarantined: it does not go on
# probing and sealing for a platform that will never apply its changes
# (tests/MUTANTS.md, third campaign, SY5).
. "$GS_TOP/tests/lib.sh"
. "$GS_TOP/tests/integration/agent-sync-lib.inc"

sync_ready

collect_people 5 41 || fail "collect 5"
expect_exit 0 "sync before revocation" ag sync
expect_exit 0 "the admin revokes the device" pf revoke "$DEV_ID"
collect_people 3 42 || fail "collect 3 after revocation"

# (the binary itself in the background, not the ag shell function, so
# that $! is the agent's pid)
"$GRIDAGENT" --home "$AH" sync --watch --max-backoff 1 --interval 1 \
	--pull-interval 1 >"$T_TMP/watch.out" 2>"$T_TMP/watch.err" &
wait_or_kill $! 15
if [ "$RC" = killed ]; then
	fail "--watch of a revoked device stops by itself (still running after 15 s)"
else
	[ "$RC" = 77 ] && ok "--watch of a revoked device stops by itself, exit 77" ||
		fail "--watch of a revoked device stops by itself, exit 77 (got $RC)"
fi
grep -q 'revoked' "$T_TMP/watch.err" && ok "... saying revoked" ||
	fail "... saying revoked"
expect_exit 0 "status --json" ag status --json
[ "$(json_get "$T_TMP/out" 'd["changes"]["quarantined"]')" = 3 ] &&
	ok "... its 3 changes quarantined" || fail "... its 3 changes quarantined"

done_testing
