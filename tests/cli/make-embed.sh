#!/bin/sh
# make-embed.sh - the embedded schema follows the files in schema/: once
# built it is not made again for nothing, and a change in the list of
# files (one removed, here as a list that still names it) makes it again.
# Before, only a changed file did: a removed scratch migration stayed in
# the binaries until `make clean`.
. "$GS_TOP/tests/lib.sh"

B=$T_TMP/build
mkdir -p "$B"
# The packages are there (make test built everything): no deps.sh here.
touch "$B/.deps-ok"
EMBED_C=$B/gen/embedded_data.c
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$GS_TOP" \
		--no-print-directory BUILD="$B" "$EMBED_C" >"$T_TMP/make.out" 2>&1
}

mk && [ -s "$EMBED_C" ] && grep -q EMBED "$T_TMP/make.out" &&
	ok "the embedded data is made" || fail "the embedded data is made"
mk && ! grep -q EMBED "$T_TMP/make.out" &&
	ok "... and not made again when nothing changed" ||
	fail "... and not made again when nothing changed"
if [ -f "$B/gen/schema.list" ]; then
	printf '%s schema/platform/9999-gone.sql\n' \
		"$(cat "$B/gen/schema.list")" >"$B/gen/schema.list"
fi
mk && grep -q EMBED "$T_TMP/make.out" &&
	ok "... and made again when a file has left schema/" ||
	fail "... and made again when a file has left schema/"
mk && ! grep -q EMBED "$T_TMP/make.out" &&
	ok "... once" || fail "... once"
sed 's/^/# /' "$T_TMP/make.out"
done_testing
