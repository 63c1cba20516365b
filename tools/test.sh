#!/usr/bin/env bash
# Install what is needed, build, and run the tests.
#
#   tools/test.sh [--fast] [--no-install]
#   tools/test.sh asan [--no-install]
#   tools/test.sh soak [--no-install]
#   tools/test.sh dht [--no-install]
#
# Tiers (meson suites): fast (unit tests, corpus replay of every fuzz target, the hot-path check),
# integration (relay, relay-control and clients as real processes over veth in network
# namespaces; skipped with a message where namespaces cannot be made), fuzz (libFuzzer, 30 s per
# parser). The default (and CI) runs the three in build/, then the fast tier again in build-asan/,
# compiled with AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer (meson's
# -Db_sanitize=address,undefined): any error or leak fails it. --fast runs only the two fast
# tiers. The output ends with meson's summaries; each Criterion binary prints its own
# "[====] Synthesis" line above them.
# `asan` runs every tier but fuzz (libFuzzer targets are sanitized already) in build-asan/, the
# relay and relay-control of the integration tests included (about 10 minutes).
# `soak` runs the soak suite alone (tests/soak: 10 minutes of publish/subscribe churn against a
# real relay with an account of every message; RLY_SOAK_S sets the seconds).
# `dht` is apart: it installs OpenDHT (install-deps.sh --with-dht), builds build-dht with
# -Ddht=enabled and runs the dht suite (the OpenDHT discovery backend); the default run and CI
# never need OpenDHT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SUITES=(--suite fast --suite integration --suite fuzz)
INSTALL=1
MODE=default
for a in "$@"; do
	case "$a" in
	--fast) SUITES=(--suite fast) ;;
	--no-install) INSTALL=0 ;;
	dht) MODE=dht ;;
	asan) MODE=asan ;;
	soak) MODE=soak ;;
	*) echo "test: unknown option '$a' (--fast, --no-install, asan, soak, dht)" >&2; exit 2 ;;
	esac
done
if [ $MODE = dht ]; then
	[ $INSTALL -eq 1 ] && tools/install-deps.sh --with-dht
	B="$ROOT/build-dht"
	[ -f "$B/build.ninja" ] || meson setup "$B" "$ROOT" -Ddht=enabled
	meson configure "$B" -Ddht=enabled
	exec meson test -C "$B" -v --num-processes 1 --suite dht
fi
[ $INSTALL -eq 1 ] && tools/install-deps.sh
# The sanitizers' runtime options: stop at the first error, report leaks (LeakSanitizer is on by
# default with ASan on Linux; said here so nobody has to know that).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -Dfuzz=disabled: the libFuzzer targets are built (sanitized) in build/ only; the corpus replay
# programs, in the fast tier, are built here too.
asan_build() {
	RLY_BUILD="$ROOT/build-asan" tools/build.sh -Db_sanitize=address,undefined -Db_lundef=false \
		-Dfuzz=disabled
}
if [ $MODE = soak ]; then
	tools/build.sh
	exec meson test -C "${RLY_BUILD:-build}" -v --num-processes 1 --suite soak
fi
if [ $MODE = asan ]; then
	asan_build
	exec meson test -C "$ROOT/build-asan" -v --num-processes 2 --suite fast --suite integration
fi
tools/build.sh
status=0
meson test -C "${RLY_BUILD:-build}" -v --num-processes 2 "${SUITES[@]}" || status=$?
echo "test: the fast tier again, built with ASan + UBSan + LeakSanitizer (build-asan)"
asan_build
meson test -C "$ROOT/build-asan" --num-processes 2 --print-errorlogs --suite fast || status=$?
exit $status
