#!/usr/bin/env bash
# Configure (once) and build everything into build/ (or $RLY_BUILD).
#   tools/build.sh [extra meson setup options, used on first configure]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${RLY_BUILD:-$ROOT/build}
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" "$ROOT" "$@"
fi
ninja -C "$BUILD"
