#!/usr/bin/env bash
# Install what is needed, build, and run the tests.
#
#   tools/test.sh [--fast] [--no-install]
#   tools/test.sh dht [--no-install]
#
# Tiers (meson suites): fast (unit tests, corpus replay of every fuzz target, the hot-path check),
# integration (relay, relay-control and clients as real processes over veth in network
# namespaces; skipped with a message where namespaces cannot be made), fuzz (libFuzzer, 30 s per
# parser). --fast runs only the first. The output ends with meson's summary; each Criterion binary
# prints its own "[====] Synthesis" line above it.
# `dht` is apart: it installs OpenDHT (install-deps.sh --with-dht), builds build-dht with
# -Ddht=enabled and runs the dht suite (the OpenDHT discovery backend); the default run and CI
# never need OpenDHT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SUITES=(--suite fast --suite integration --suite fuzz)
INSTALL=1
DHT=0
for a in "$@"; do
	case "$a" in
	--fast) SUITES=(--suite fast) ;;
	--no-install) INSTALL=0 ;;
	dht) DHT=1 ;;
	*) echo "test: unknown option '$a' (--fast, --no-install, dht)" >&2; exit 2 ;;
	esac
done
if [ $DHT -eq 1 ]; then
	[ $INSTALL -eq 1 ] && tools/install-deps.sh --with-dht
	B="$ROOT/build-dht"
	[ -f "$B/build.ninja" ] || meson setup "$B" "$ROOT" -Ddht=enabled
	meson configure "$B" -Ddht=enabled
	exec meson test -C "$B" -v --num-processes 1 --suite dht
fi
[ $INSTALL -eq 1 ] && tools/install-deps.sh
tools/build.sh
exec meson test -C "${RLY_BUILD:-build}" -v --num-processes 2 "${SUITES[@]}"
