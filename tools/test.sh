#!/usr/bin/env bash
# Install what is needed, build, and run the tests.
#
#   tools/test.sh [--fast] [--no-install]
#
# Tiers (meson suites): fast (unit tests, corpus replay of every fuzz target, the hot-path check),
# integration (relay, relay-control and clients as real processes over veth in network
# namespaces; skipped with a message where namespaces cannot be made), fuzz (libFuzzer, 30 s per
# parser). --fast runs only the first. The output ends with meson's summary; each Criterion binary
# prints its own "[====] Synthesis" line above it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SUITES=(--suite fast --suite integration --suite fuzz)
INSTALL=1
for a in "$@"; do
	case "$a" in
	--fast) SUITES=(--suite fast) ;;
	--no-install) INSTALL=0 ;;
	*) echo "test: unknown option '$a' (--fast, --no-install)" >&2; exit 2 ;;
	esac
done
[ $INSTALL -eq 1 ] && tools/install-deps.sh
tools/build.sh
exec meson test -C "${RLY_BUILD:-build}" -v --num-processes 2 "${SUITES[@]}"
