#!/usr/bin/env bash
# Fan-out bench: the relay with one worker core, and dpdk-testpmd io forwarding as the reference
# ceiling, on the same memif link with the same generator, in one run. Never pass/fail: it prints
# its setup and a table, and keeps every measurement as a JSON line in bench/results/.
#
#   bench/run-fanout.sh [--sizes "64 1024"] [--fanouts "1 10 100 1000"] [--secs S] [--repeat N]
#                       [--batch on|off] [--zero-copy yes|no] [--relay-args "..."]
#
# Per payload size: testpmd io at full rate (N repeats) and at 50 % / 90 % of its peak (latency
# floor of this harness); then per fan-out F: the relay at full rate (N repeats, the median is
# shown, with the relay worker's load from relay-stat) and at 50 % / 90 % of that median's
# publish rate (fan-out latency: publish stamp to the last subscriber of each message).
#
# Layout on a 2-vCPU machine: relay manager and worker lcores on CPU 0 (the manager sleeps);
# rly-gen (the publisher and every subscriber endpoint, sending and draining on one lcore) and
# relay-control (asleep once subscriptions are made) on CPU 1; testpmd gets CPU 0 the same way.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${RLY_BUILD:-$ROOT/build}
SIZES="64 1024"
FANOUTS="1 10 100 1000"
SECS=3
REPEAT=5
LAT_REPEAT=3
BATCH=on
ZC=no
RELAY_ARGS=""
while [ $# -gt 0 ]; do
	case "$1" in
	--sizes) SIZES=$2; shift 2 ;;
	--fanouts) FANOUTS=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--lat-repeat) LAT_REPEAT=$2; shift 2 ;;
	--batch) BATCH=$2; shift 2 ;;
	--zero-copy) ZC=$2; shift 2 ;;
	--relay-args) RELAY_ARGS=$2; shift 2 ;;
	*) echo "run-fanout: unknown option $1 (see the top of this file)" >&2; exit 2 ;;
	esac
done
command -v dpdk-testpmd >/dev/null || { echo "run-fanout: dpdk-testpmd missing (package dpdk-dev)" >&2; exit 1; }
# Copy mode by default on the client side too: measured faster here for fan-out (the relay's
# output is read by the generator's core either way); see lib-memif.sh for zero-copy.
source "$ROOT/bench/lib-memif.sh"
bench_extra_cleanup() { pkill -INT -f "dpdk-testpmd --lcores=0@0,1@0" 2>/dev/null || true; }
bench_memif_setup fanout bench "$ZC" bench/rly-gen relay/relay control/relay-control tools/relay-stat

# Nothing from the previous run may still spin on a CPU: testpmd in particular can take a while to
# die after SIGINT (and crashes in its exit path). Wait for every process of ours to be gone.
quiesce() {
	local pat="dpdk-testpmd --lcores=0@0,1@0|$B/relay/relay|$B/bench/rly-gen|$B/control/relay-control"
	for _ in $(seq 50); do
		pgrep -f "$pat" >/dev/null || return 0
		sleep 0.1
	done
	pkill -KILL -f "$pat" || true
	sleep 0.2
}

start_gen() {
	quiesce
	rm -f "$SOCK"
	taskset -c 1 "$B/bench/rly-gen" --lcores=0@1 "${EAL[@]}" --vdev="$MEMIF_SERVER" -- \
		--json --warmup 1 --duration "$SECS" "$@" >"$WORK/gen.out" 2>"$WORK/gen.err" &
	GEN=$!
	for _ in $(seq 200); do [ -S "$SOCK" ] && return 0; sleep 0.05; done
	cat "$WORK/gen.err" >&2
	return 1
}

# Wait for the generator; append its JSON line, plus the relay worker's load if sampled.
finish_gen() {
	local extra=${1:-}
	wait "$GEN" || { cat "$WORK/gen.err" >&2; return 1; }
	python3 - "$WORK/gen.out" "$extra" >>"$OUT" <<'EOF'
import json, sys
d = json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][-1])
if sys.argv[2]:
    try:
        s = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
        d["relay_load"] = s.get("load", [None])[0]
        d["relay_tx_drop_s"] = s["counters"]["tx_drop"].get("rate", 0)
        b = s["counters"]["rx_bursts"].get("rate", 0)
        d["relay_avg_burst"] = s["counters"]["rx_pkts"].get("rate", 0) / b if b else 0
    except Exception:
        pass
print(json.dumps(d))
EOF
}

run_relay() { # label, then rly-gen args
	local label=$1
	shift
	start_gen --mode relay --label "$label" "$@"
	taskset -c 0 "$B/relay/relay" --lcores=0@0,1@0 "${EAL[@]}" --single-file-segments \
		--vdev="$MEMIF_CLIENT" -- --ip 198.18.0.1 --instance bench --mbufs 131071 \
		--batch "$BATCH" --max-subs-per-stream 4096 $RELAY_ARGS >"$WORK/relay.log" 2>&1 &
	local relay=$!
	PIDS+=("$relay")
	for _ in $(seq 200); do grep -q "relay: running" "$WORK/relay.log" && break; sleep 0.05; done
	taskset -c 1 "$B/control/relay-control" --instance bench --secret-file "$WORK/secret" \
		--sub-rate 100000 --sub-burst 100000 >"$WORK/control.log" 2>&1 &
	local ctl=$!
	PIDS+=("$ctl")
	# Sample the relay over the generator's measured window.
	for _ in $(seq 1200); do grep -q "^ready" "$WORK/gen.out" && break; sleep 0.05; done
	sleep 1.2
	taskset -c 1 "$B/tools/relay-stat" --instance bench --json --count 2 \
		--interval "$(echo "($SECS - 0.4) * 1000 / 1" | bc)" >"$WORK/stat.json" 2>/dev/null || true
	finish_gen "$WORK/stat.json"
	kill -INT "$ctl" "$relay" 2>/dev/null || true
	wait "$ctl" "$relay" 2>/dev/null || true
	quiesce
}

run_testpmd() { # label, then rly-gen args
	local label=$1
	shift
	start_gen --mode reflect --label "$label" "$@"
	(sleep $((SECS + 20)) | exec taskset -c 0 dpdk-testpmd --lcores=0@0,1@0 "${EAL[@]}" \
		--single-file-segments --vdev="$MEMIF_CLIENT" -- --forward-mode=io \
		--port-topology=loop --nb-cores=1 --total-num-mbufs=65536 >"$WORK/testpmd.log" 2>&1) &
	local tp=$!
	finish_gen
	pkill -INT -f "dpdk-testpmd --lcores=0@0,1@0" || true
	wait "$tp" 2>/dev/null || true
	quiesce
}

# Median of a field over the JSON lines with a given label.
median() {
	python3 - "$OUT" "$1" "$2" <<'EOF'
import json, statistics, sys
v = [json.loads(l)[sys.argv[3]] for l in open(sys.argv[1]) if json.loads(l)["label"] == sys.argv[2]]
print(statistics.median(v) if v else 0)
EOF
}

echo "setup: $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk)"
echo "       relay: 1 worker + manager lcore on CPU 0, --no-huge, memif client zero-copy=$ZC, batch $BATCH, busy-spin $RELAY_ARGS"
echo "       rly-gen: memif server on CPU 1, one lcore sends and drains; relay-control on CPU 1"
echo "       reference: dpdk-testpmd io forwarding (port-topology loop), same link, same generator"
echo "       ${SECS} s measured after 1 s warm-up per point, full-rate points repeated $REPEAT x (median)"
echo "       raw results: $OUT"
echo "       core-to-core round trip CPU 0 <-> 1 now: $("$B/bench/c2c" 0 1 50000) (this VM moves between ~50, ~120 and ~500 ns; cross-core rates follow)"
for size in $SIZES; do
	# Repeats interleave testpmd and every F, so a slow spell of the machine (the hypervisor moves
	# these vCPUs around) hits all of them rather than one point.
	for r in $(seq "$REPEAT"); do
		run_testpmd "io-peak-$size" --size "$size" --rate 0
		for f in $FANOUTS; do
			run_relay "peak-$f-$size" --subs "$f" --size "$size" --rate 0
		done
	done
	io=$(median "io-peak-$size" rx_frames_s)
	for r in $(seq "$LAT_REPEAT"); do
		for pct in 50 90; do
			run_testpmd "io-lat$pct-$size" --size "$size" --rate "$(echo "$io * $pct / 100" | bc)"
		done
		for f in $FANOUTS; do
			peak=$(median "peak-$f-$size" pub_msgs_s)
			for pct in 50 90; do
				run_relay "lat$pct-$f-$size" --subs "$f" --size "$size" \
					--rate "$(echo "$peak * $pct / 100" | bc)"
			done
		done
	done
done

python3 - "$OUT" "$SIZES" "$FANOUTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pick(label):
    return [r for r in rows if r["label"] == label]
def med(label, key):
    v = [r.get(key) for r in pick(label) if r.get(key) is not None]
    return statistics.median(v) if v else float("nan")
def lat(label, key):
    v = [r["fanout_us"][key] for r in pick(label) if "fanout_us" in r]
    return statistics.median(v) if v else float("nan")
for size in sys.argv[2].split():
    io = med("io-peak-%s" % size, "rx_frames_s")
    io_runs = sorted(r["rx_frames_s"] for r in pick("io-peak-%s" % size))
    print("\n%s-byte payloads, one message per published datagram" % size)
    print("%-10s %12s %13s %7s %6s | %-30s | %-30s" % ("", "publish/s", "deliveries/s", "vs io",
          "burst", "50% load: p50 / p99 / p99.9 us", "90% load: p50 / p99 / p99.9 us"))
    def latcols(prefix):
        return " | ".join("%8.2f / %8.2f / %8.1f" % (lat(prefix % p, "p50"), lat(prefix % p, "p99"),
                          lat(prefix % p, "p999")) for p in (50, 90))
    print("%-10s %12.0f %13.0f %7s %6s | %s   runs %s" % ("io fwd", io, io, "1.00x", "",
          latcols("io-lat%d-" + size), "/".join("%.1fM" % (x / 1e6) for x in io_runs)))
    for f in sys.argv[3].split():
        d = med("peak-%s-%s" % (f, size), "deliveries_s")
        runs = sorted(r["deliveries_s"] for r in pick("peak-%s-%s" % (f, size)))
        p = med("peak-%s-%s" % (f, size), "pub_msgs_s")
        burst = med("peak-%s-%s" % (f, size), "relay_avg_burst")
        print("%-10s %12.0f %13.0f %6.2fx %6.1f | %s   runs %s" % ("relay F=%s" % f, p, d, d / io,
              burst, latcols("lat%d-" + f + "-" + size),
              "/".join("%.1fM" % (x / 1e6) for x in runs)))
print("\npublish/s and deliveries/s: medians of the full-rate runs; deliveries count every message")
print("received by every subscriber endpoint. 'vs io': deliveries/s over testpmd's forwarded")
print("frames/s (one message per frame). burst: the relay's average rx burst in the measured window")
print("(32 = frames wait for it: the relay is the bottleneck; lower = the generator/sink or link is).")
print("Latency: publish stamp to the last subscriber of each sampled message (every 16th), paced at")
print("50 % / 90 % of the median peak publish rate; medians of the runs. The io fwd row is the same")
print("harness with testpmd instead of the relay.")
EOF
