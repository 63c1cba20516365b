#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Run one libFuzzer target for a bounded time over a committed corpus without writing into it.
#   run_fuzz.sh TARGET CORPUS_DIR WORK_DIR [SECONDS]
# New inputs go to WORK_DIR/new, crashes to WORK_DIR/artifacts/. The exit status is nonzero on a
# crash, a leak, a timeout or an out-of-memory: libFuzzer's default error exit code is 77, which
# meson reads as "skipped", so it is set to 1 here.
set -eu
target=$1
corpus=$2
work=$3
secs=${4:-30}
mkdir -p "$work/new" "$work/artifacts"
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/artifacts/" "$work/new" "$corpus"
