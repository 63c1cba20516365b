# Shared by the memif benches (run-fanout.sh, run-flood.sh, run-slow.sh): sourced, not run.
#
#   bench_memif_setup NAME INSTANCE ZERO_COPY BINARY...
#
# Checks that every BINARY (relative to $B) is built, then sets WORK (a scratch directory),
# SOCK (the memif socket in it), OUT (bench/results/NAME-DATE.jsonl), PIDS (append the pid of every
# process started; cleanup stops them), EAL (the EAL flags every process shares), MEMIF_SERVER and
# MEMIF_CLIENT (the two ends of one memif link; the client in copy mode unless ZERO_COPY is yes:
# net_memif's zero-copy mode mishandles mbufs shared between frames, so the relay cannot chain
# payloads on it, relay/ports.c), and installs cleanup on EXIT: SIGINT then SIGKILL to PIDS,
# bench_extra_cleanup if the caller defines it, the relay's shm file for INSTANCE, WORK.
bench_memif_setup() {
	local name=$1 zc=$3 x
	BENCH_INSTANCE=$2
	shift 3
	for x in "$@"; do
		[ -x "$B/$x" ] || { echo "run-$name: $B/$x missing: run tools/build.sh" >&2; exit 1; }
	done
	WORK=$(mktemp -d "/tmp/rly-$name.XXXXXX")
	SOCK=$WORK/memif.sock
	mkdir -p "$ROOT/bench/results"
	OUT="$ROOT/bench/results/$name-$(date +%Y%m%d-%H%M%S).jsonl"
	PIDS=()
	trap bench_memif_cleanup EXIT
	EAL=(--no-huge -m 1024 --no-pci --no-shconf --log-level=error)
	MEMIF_SERVER="net_memif0,role=server,socket=$SOCK,socket-abstract=no"
	MEMIF_CLIENT="net_memif0,role=client,socket=$SOCK,socket-abstract=no,zero-copy=$zc"
}

bench_memif_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	if declare -F bench_extra_cleanup >/dev/null; then bench_extra_cleanup; fi
	sleep 0.5
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "/dev/shm/relay.$BENCH_INSTANCE"
	rm -rf "$WORK"
}
