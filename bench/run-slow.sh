#!/usr/bin/env bash
# Slow-consumer bench (issue 6): does one subscriber that keeps asking for repair (a slow
# consumer) cost the others throughput or latency? Never pass/fail: it prints its setup and
# tables, and keeps every measured window as a JSON line in bench/results/.
#
#   bench/run-slow.sh [--fanouts "10 100"] [--secs S] [--repeat N] [--items "nak:PPS,..."]
#                     [--configs "budget,nobudget,cut"] [--span N]
#   bench/run-slow.sh --report bench/results/slow-DATE.jsonl   # the tables again
#
# One rly-gen process per run publishes one 64-byte stream to F subscriber endpoints and drains
# them, on one memif link. The first endpoint is the slow one: in the "on" windows it sends NAKs
# (rly-gen flood kind nak) at the item's rate, each for the last --span (default 1024) messages
# published, from its own address and port, as a subscriber that has fallen that far behind would;
# in the "off" windows it is an ordinary subscriber. Windows alternate off, item 1, off, item 2, ...,
# off (rly-gen --flood-schedule), so every item is compared with the windows either side of it, in
# the same process. "others" are the F - 1 other endpoints: their deliveries/s, and the fan-out
# latency to the last of them (the slow endpoint is left out of every window's figures).
# Configs, each a relay started afresh:
#   budget    the relay's defaults (--repair-kbs 4096: 4 MiB/s of repair per subscriber, 1 MiB
#             burst) but --slow-cut-ms 0: the slow subscriber is paced for the whole window
#   nobudget  --repair-kbs 0: every NAK is answered in full (up to 1024 messages per NAK)
#   cut       the defaults (--slow-cut-ms 2000): after 2 s over its budget the slow subscriber is
#             cut (GAP SLOW_CONSUMER, relay-control ends its subscription); its later NAKs are
#             dropped as not from a subscriber
# Per F and config: N runs at full offered load (--rate 0: deliveries/s), then N runs paced at
# 50 % of the lowest peak of the budget config's off windows (fan-out latency).
#
# Layout on a 2-vCPU machine, as run-fanout.sh: the relay's manager and worker lcores on CPU 0,
# rly-gen (publisher, every subscriber including the slow one) and relay-control on CPU 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${RLY_BUILD:-$ROOT/build}
FANOUTS="10 100"
SECS=2
SETTLE=0.5
REPEAT=3
SPAN=1024
ITEMS="nak:1000,nak:10000,nak:100000"
CONFIGS="budget,nobudget,cut"
REPORT_ONLY=""
while [ $# -gt 0 ]; do
	case "$1" in
	--fanouts) FANOUTS=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--repeat) REPEAT=$2; shift 2 ;;
	--items) ITEMS=$2; shift 2 ;;
	--configs) CONFIGS=$2; shift 2 ;;
	--span) SPAN=$2; shift 2 ;;
	--report) REPORT_ONLY=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set /{/^set /!p}' "$0"; exit 0 ;;
	*) echo "run-slow: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done

report() {
	python3 - "$1" <<'PYEOF'
import json, statistics, sys
from collections import defaultdict, OrderedDict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs = OrderedDict()
for d in rows:
    runs.setdefault(d["label"], []).append(d)

def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else float("nan")

def ctr(w, k):
    return w.get("relay", {}).get("counters", {}).get(k, 0)

def mean2(a, b):
    return (a + b) / 2

# label: KIND-CONFIG-F-RUN, KIND peak|lat
groups = defaultdict(lambda: defaultdict(list))
for label, ws in runs.items():
    kind, cfg, f, _ = label.split("-")
    for i in range(1, len(ws) - 1, 2):
        on, a, b = ws[i], ws[i - 1], ws[i + 1]
        name = "nak %s/s" % (on["flood"]["pps"] if on["flood"]["pps"] == "max" else "%gk" % (on["flood"]["pps"] / 1e3))
        secs = on.get("relay", {}).get("secs", 1) or 1
        g = {
            "others_off": mean2(a["others_s"], b["others_s"]), "others_on": on["others_s"],
            "naks_s": on["flood"]["sent_s"], "repairs_s": on["repairs_s"],
            "nak_rx_s": ctr(on, "nak_rx") / secs, "paced_s": ctr(on, "nak_paced") / secs,
            "repair_msgs_s": ctr(on, "repair_msgs") / secs, "not_sub_s": ctr(on, "nak_not_subscriber") / secs,
            "cuts": ctr(on, "slow_cuts"), "load_on": on.get("relay", {}).get("load", 0),
            "load_off": mean2(a.get("relay", {}).get("load", 0), b.get("relay", {}).get("load", 0)),
        }
        if "fanout_us" in on and "fanout_us" in a and "fanout_us" in b:
            g["p50_off"] = mean2(a["fanout_us"]["p50"], b["fanout_us"]["p50"])
            g["p50_on"] = on["fanout_us"]["p50"]
            g["p99_off"] = mean2(a["fanout_us"]["p99"], b["fanout_us"]["p99"])
            g["p99_on"] = on["fanout_us"]["p99"]
        groups[(kind, cfg, int(f))][name].append(g)

for (kind, cfg, f), items in sorted(groups.items(), key=lambda x: (x[0][2], x[0][1], x[0][0] != "peak")):
    n = max(len(v) for v in items.values())
    if kind == "peak":
        print("\nF=%d (1 slow + %d others), config %s, full offered load: the others' deliveries/s,"
              " slow-consumer window over the mean of its neighbours, median of %d runs" % (f, f - 1, cfg, n))
        print("%-14s %10s | %10s %10s %7s | %-22s | %9s %9s %9s %9s %7s | %11s" % (
            "slow consumer", "NAKs sent", "others off", "others on", "on/off", "runs", "NAKs rx",
            "paced", "repaired", "refused", "cuts", "relay load"))
        for name, v in items.items():
            ratios = sorted(g["others_on"] / g["others_off"] for g in v if g["others_off"])
            print("%-14s %9.1fk | %9.2fM %9.2fM %6.3fx | %-22s | %8.1fk %8.1fk %8.1fk %8.1fk %7d | %4.2f -> %4.2f" % (
                name, med([g["naks_s"] for g in v]) / 1e3, med([g["others_off"] for g in v]) / 1e6,
                med([g["others_on"] for g in v]) / 1e6, med(ratios),
                " ".join("%.3f" % r for r in ratios), med([g["nak_rx_s"] for g in v]) / 1e3,
                med([g["paced_s"] for g in v]) / 1e3, med([g["repair_msgs_s"] for g in v]) / 1e3,
                med([g["not_sub_s"] for g in v]) / 1e3, max(g["cuts"] for g in v),
                med([g["load_off"] for g in v]), med([g["load_on"] for g in v])))
    else:
        print("\nF=%d, config %s, paced at 50 %% of the peak: fan-out latency to the last of the %d others"
              " (us), off = mean of the neighbours, medians of %d runs" % (f, cfg, f - 1, n))
        print("%-14s %10s | %-19s | %-19s | %-30s | %9s %7s" % ("slow consumer", "NAKs sent",
              "p50 off -> on", "p99 off -> on", "p99 per run", "repaired", "cuts"))
        for name, v in items.items():
            print("%-14s %9.1fk | %7.1f -> %7.1f | %7.1f -> %7.1f | %-30s | %8.1fk %7d" % (
                name, med([g["naks_s"] for g in v]) / 1e3, med([g.get("p50_off") for g in v]),
                med([g.get("p50_on") for g in v]), med([g.get("p99_off") for g in v]),
                med([g.get("p99_on") for g in v]),
                " ".join("%.0f->%.0f" % (g.get("p99_off", 0), g.get("p99_on", 0)) for g in v),
                med([g["repair_msgs_s"] for g in v]) / 1e3, max(g["cuts"] for g in v)))
print("\nNAKs rx: NAKs the relay received (nak_rx); paced: answered in part for the budget (nak_paced);"
      "\nrepaired: messages the relay sent again (repair_msgs); refused: NAKs dropped as not from a"
      "\nsubscriber (after a cut); cuts: slow consumers cut (slow_cuts); all per second of the window.")
PYEOF
}

if [ -n "$REPORT_ONLY" ]; then
	report "$REPORT_ONLY"
	exit 0
fi

INSTANCE=slow$$
source "$ROOT/bench/lib-memif.sh"
bench_memif_setup slow "$INSTANCE" no bench/rly-gen relay/relay control/relay-control bench/c2c
RELAY_OPTS=(--ip 198.18.0.1 --instance "$INSTANCE" --mbufs 131071 --batch on --max-subs-per-stream 4096
	--history-chains 4)
CTL_OPTS=(--instance "$INSTANCE" --secret-file "$WORK/secret")

config_args() {
	case "$1" in
	budget) echo "--slow-cut-ms 0" ;;
	nobudget) echo "--repair-kbs 0 --slow-cut-ms 0" ;;
	cut) echo "" ;;
	*) echo "run-slow: unknown config $1" >&2; exit 2 ;;
	esac
}

reap() {
	local p=$1
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# One rly-gen run: label F rate relay-args
run_one() {
	local label=$1 f=$2 rate=$3 rargs=$4 gen relay ctl secs=$SECS
	# The cut needs 2 s over the budget inside the window.
	case "$label" in *-cut-*) secs=4 ;; esac
	rm -f "$SOCK" "/dev/shm/relay.$INSTANCE"
	taskset -c 1 "$B/bench/rly-gen" --lcores=0@1 "${EAL[@]}" --vdev="$MEMIF_SERVER" -- \
		--mode relay --json --label "$label" --subs "$f" --size 64 --rate "$rate" \
		--warmup 1 --duration "$secs" --settle "$SETTLE" --heartbeats --lease-ms 120000 \
		--instance "$INSTANCE" --slow-subs 1 --nak-span "$SPAN" --flood-schedule "$ITEMS" \
		>"$WORK/gen.out" 2>"$WORK/gen.err" &
	gen=$!
	PIDS+=("$gen")
	for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
	# shellcheck disable=SC2086
	taskset -c 0 "$B/relay/relay" --lcores=0@0,1@0 "${EAL[@]}" --single-file-segments \
		--vdev="$MEMIF_CLIENT" -- "${RELAY_OPTS[@]}" $rargs >"$WORK/relay.log" 2>&1 &
	relay=$!
	PIDS+=("$relay")
	for _ in $(seq 200); do grep -q "relay: running" "$WORK/relay.log" && break; sleep 0.05; done
	taskset -c 1 "$B/control/relay-control" "${CTL_OPTS[@]}" >"$WORK/control.log" 2>&1 &
	ctl=$!
	PIDS+=("$ctl")
	if ! wait "$gen"; then
		echo "run-slow: rly-gen failed ($label):" >&2
		tail -5 "$WORK/gen.err" "$WORK/relay.log" "$WORK/control.log" >&2
		kill -INT "$ctl" "$relay" 2>/dev/null || true
		reap "$ctl"; reap "$relay"
		return 1
	fi
	kill -INT "$ctl" "$relay" 2>/dev/null || true
	reap "$ctl"
	reap "$relay"
	PIDS=()
	grep -c slow_consumer_cut "$WORK/control.log" >"$WORK/cuts" || true
	grep '^{' "$WORK/gen.out" | sed "s/}\$/,\"loadavg1\":$(cut -d' ' -f1 /proc/loadavg),\"ctl_cuts_logged\":$(cat "$WORK/cuts")}/" >>"$OUT"
}

peak_of() {
	python3 - "$OUT" "$1" <<'EOF'
import json, sys
v = [d["pub_msgs_s"] for d in map(json.loads, open(sys.argv[1]))
     if d["label"].startswith("peak-budget-%s-" % sys.argv[2]) and d["flood"] is None]
print(int(min(v)) if v else 0)
EOF
}

echo "setup: $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), DPDK $(pkg-config --modversion libdpdk), $(gcc --version | head -1)"
echo "       code: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), build $B"
echo "       relay: 1 worker + manager lcore on CPU 0, --no-huge, memif client copy mode, ${RELAY_OPTS[*]:2}"
echo "       rly-gen on CPU 1: memif server, one lcore publishes 64 B messages and drains F endpoints;"
echo "              endpoint 1 is the slow consumer: NAKs for the last $SPAN messages at each item's rate"
echo "       relay-control on CPU 1; items $ITEMS; configs $CONFIGS"
echo "       windows: ${SECS} s measured (4 s for cut), ${SETTLE} s after each switch, 1 s warm-up; $REPEAT runs"
echo "       core-to-core round trip CPU 0 <-> 1 now: $("$B/bench/c2c" 0 1 50000)"
echo "       raw results: $OUT"
T0=$(date +%s)
IFS=, read -r -a CFGS <<<"$CONFIGS"
for f in $FANOUTS; do
	for cfg in "${CFGS[@]}"; do
		for r in $(seq "$REPEAT"); do
			run_one "peak-$cfg-$f-$r" "$f" 0 "$(config_args "$cfg")"
		done
	done
	half=$(( $(peak_of "$f") / 2 ))
	[ "$half" -gt 0 ] || half=100000
	echo "F=$f: latency runs paced at $half msgs/s"
	for cfg in "${CFGS[@]}"; do
		for r in $(seq "$REPEAT"); do
			run_one "lat-$cfg-$f-$r" "$f" "$half" "$(config_args "$cfg")"
		done
	done
done
echo "took $(( $(date +%s) - T0 )) s"
report "$OUT"
