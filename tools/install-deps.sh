#!/bin/sh
# Installs the Debian packages asp-relay needs to build, test and benchmark.
# Idempotent: packages already present are left alone, so a developer
# machine with everything installed pays one dpkg query and nothing else.
# Run as root (make run / make test call it); as another user it only
# reports what is missing.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
libwebsockets-dev libwebsockets-evlib-ev libev-dev libssl-dev openssl
libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
libopus-dev libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev libinih-dev
libhiredis-dev redis-server
ffmpeg socat gnuplot-nox linux-perf chromium
systemd groff-base util-linux"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js runs the end-to-end tests and the bench's node-ws peer; any
# node >= 18 will do, so a preinstalled one is kept.
if ! command -v node >/dev/null 2>&1; then
	missing="$missing nodejs npm"
elif ! command -v npm >/dev/null 2>&1; then
	missing="$missing npm"
fi

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root, or: apt-get install$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh machine, whose package lists are empty.
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
