#!/bin/sh
# deps.sh - make sure the Debian packages gridsync builds and tests with are
# installed.  As root it installs what is missing; otherwise it names the
# exact command to run and fails.  Called by make before anything is built.
set -u

# pkg-config module -> Debian package
MODULES="sqlite3:libsqlite3-dev zlib:zlib1g-dev libdeflate:libdeflate-dev
libsodium:libsodium-dev
libcurl:libcurl4-openssl-dev libmicrohttpd:libmicrohttpd-dev
jansson:libjansson-dev cmocka:libcmocka-dev"
# command -> Debian package
COMMANDS="cc:gcc make:make pkg-config:pkg-config sqlite3:sqlite3
python3:python3 curl:curl"

missing=""
command -v pkg-config >/dev/null 2>&1 || missing="pkg-config"
for pair in $MODULES; do
	mod=${pair%%:*} pkg=${pair#*:}
	if ! pkg-config --exists "$mod" 2>/dev/null; then
		missing="$missing $pkg"
	fi
done
for pair in $COMMANDS; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
[ -z "${missing# }" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || exit 1
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2 || exit 1
	exit 0
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: install them with: sudo apt-get install$missing" >&2
exit 1
