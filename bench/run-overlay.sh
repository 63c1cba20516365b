#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Relay-network figures of issue 5, on one machine: relays in network namespaces on one bridge
# (tools/mesh.sh), each with its own relay-control, discovery through static seeds.
#
#   a. end-to-end latency across 0..4 relay hops (a line 1-2-3-4-5 made by chained seeds)
#   b. duplicates per delivered message on a 5-relay mesh, 1 then 3 publishers
#   c. time for a new subscriber on a remote relay to get its first message (relay-sub's
#      first_msg_ms), against a subscriber on the publisher's own relay
#   d. memory per stream per relay: structure sizes (overlay-sizes) and VmRSS with 1 vs N streams
#
# Usage (root): bench/run-overlay.sh [--parts abcd] [--runs N] [--rate R] [--secs S]
#                                    [--tries N] [--streams N] [--busy]
#   RLY_BUILD=build-dir (default build); RLY_CTL_OPTS=more relay-control options (all relays).
#   Prints a table per part and writes them all to bench/results/overlay-<date>.txt; raw
#   subscriber JSON and logs stay in $RAW (printed).
# Never a pass/fail on time: it prints figures and the setup they were taken under.
set -uo pipefail
source "$(dirname "$0")/../tools/lib.sh"
source "$(dirname "$0")/../tools/mesh.sh"

PARTS=abcd
RUNS=3
RATE=1000
SECS=10
SIZE=64
TRIES=7
STREAMS=200
BUSY=0
while [ $# -gt 0 ]; do
	case "$1" in
	--parts) PARTS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--tries) TRIES=$2; shift 2 ;;
	--streams) STREAMS=$2; shift 2 ;;
	--busy) BUSY=1; shift ;;
	-h | --help) sed -n 2,18p "$0"; exit 0 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
rly_require_netns
RLY_BUILD=$(cd "$RLY_BUILD" && pwd)
for b in relay/relay control/relay-control tools/relay-sub tools/relay-pub tools/relay-stat \
	bench/overlay-sizes; do
	[ -x "$RLY_BUILD/$b" ] || rly_die "$RLY_BUILD/$b missing: ninja -C $RLY_BUILD"
done
RESULTS="$RLY_ROOT/bench/results"
mkdir -p "$RESULTS"
OUTFILE="$RESULTS/overlay-$(date +%Y%m%d-%H%M%S).txt"
RAW=$(mktemp -d /tmp/relay-overlay-raw.XXXXXX)
trap rly_cleanup EXIT
say() { echo "$*" | tee -a "$OUTFILE"; }

say "# bench/run-overlay.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$RLY_ROOT" rev-parse --short HEAD)"
say "# machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "# relays: net_af_xdp on veth, one bridge, 2 lcores (main + worker) each on one CPU, relay i on CPU (i-1)%2, --idle backoff (idle max 1000 us) unless said; relay-control, clients unpinned"
say "# raw output: $RAW"

# ---------------------------------------------------------------- helpers
# counters I FILE: every counter of relay I as one JSON line.
counters() {
	RLY_INSTANCE="${RLY_MESH_TAG}$1" rly_stat --once --json 2>/dev/null | tail -1 >"$2"
}
# cval FILE NAME: a counter's total from a counters() file.
cval() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.loads(open(sys.argv[1]).read())
except ValueError:
    print(0); sys.exit()
c = d.get('counters', d)
v = c.get(sys.argv[2], 0)
print(v.get('total', v.get('value', 0)) if isinstance(v, dict) else v)
EOF
}
# links I: "eager lazy" of relay I (one relay-stat, one python)
links() {
	RLY_INSTANCE="${RLY_MESH_TAG}$1" rly_stat --once --json 2>/dev/null | python3 -c "
import json, sys
try:
    c = json.loads(sys.stdin.read().strip().splitlines()[-1])['counters']
except Exception:
    c = {}
g = lambda k: c.get(k, {}).get('value', c.get(k, {}).get('total', 0))
print(g('ctl_links_eager'), g('ctl_links_lazy'))"
}
# line_filter N: make the bridge a line 1-2-..-N for the relays (clients still reach every relay).
# With the static backend every relay learns every other through its seed's store (records are
# passed on), so chained seeds alone give a full mesh; the bridge must keep non-neighbours apart.
# This kernel has no bridge VLAN filtering, nft, ebtables or tc actions, so: on the bridge's port
# towards relay j, an htb root whose default class passes everything, and a u32 filter that sends
# IPv4 from a non-neighbour relay to a class whose pfifo holds 0 packets (dropped). ARP passes.
line_filter() {
	local n=$1 h="${RLY_MESH_TAG}h" i j dev
	for ((j = 1; j <= n; j++)); do
		dev="${RLY_MESH_TAG}b$j"
		tc -n "$h" qdisc add dev "$dev" root handle 1: htb default 10 2>/dev/null || rly_die "tc htb"
		tc -n "$h" class add dev "$dev" parent 1: classid 1:10 htb rate 10gbit 2>/dev/null
		tc -n "$h" class add dev "$dev" parent 1: classid 1:20 htb rate 10gbit 2>/dev/null
		tc -n "$h" qdisc add dev "$dev" parent 1:20 handle 20: pfifo limit 0
		for ((i = 1; i <= n; i++)); do
			((i == j || i == j - 1 || i == j + 1)) && continue
			tc -n "$h" filter add dev "$dev" parent 1: protocol ip u32 \
				match ip src "$(rly_mesh_ip "$i")/32" flowid 1:20 || rly_die "tc u32"
		done
	done
}
# mesh_start N SEEDMODE [relay options]: SEEDMODE line (relay i seeds from i-1) or star (from 1)
mesh_start() {
	local n=$1 mode=$2 i cpu
	shift 2
	rly_mesh_up "bo$$" "$n"
	[ "$mode" = line ] && line_filter "$n"
	for ((i = 1; i <= n; i++)); do
		cpu=$(((i - 1) % 2))
		rly_mesh_start_relay "$i" "$cpu" "$@"
	done
	rly_mesh_start_control 1 $CTL_OPTS
	for ((i = 2; i <= n; i++)); do
		if [ "$mode" = line ]; then
			rly_mesh_start_control "$i" --seed "$(rly_mesh_ip $((i - 1)))" $CTL_OPTS
		else
			rly_mesh_start_control "$i" --seed "$(rly_mesh_ip 1)" $CTL_OPTS
		fi
	done
}
mesh_stop() {
	cp "$RLY_WORK"/control*.log "$RAW/" 2>/dev/null
	mkdir -p "$RAW/$1" && mv "$RAW"/control*.log "$RAW/$1/" 2>/dev/null
	rly_cleanup
}
CTL_OPTS="${RLY_CTL_OPTS:-}" # RLY_CTL_OPTS: more relay-control options, e.g. --log-level debug
# sub NAME RELAY STREAM PORT [relay-sub options]: a subscriber in the client namespace.
sub() {
	local name=$1 r=$2 stream=$3 port=$4
	shift 4
	rm -f "$RLY_WORK/$name.ready"
	rly_bg "$name" "$RLY_BUILD/tools/relay-sub" --relay "$(rly_mesh_ip "$r")" --stream "$stream" \
		--bind "$RLY_CLIENT_IP:$port" --json --ready-file "$RLY_WORK/$name.ready" "$@"
}
sub_wait_ready() {
	local n
	for n in "$@"; do
		rly_wait_for "subscriber $n" 15 test -e "$RLY_WORK/$n.ready" || {
			cat "$RLY_WORK/$n.err" >&2
			return 1
		}
	done
}
sub_pid() { eval echo "\$RLY_PID_${1//[^A-Za-z0-9_]/_}"; }
sub_stop() { # sub_stop NAME...: SIGINT, wait, keep its output
	local n
	for n in "$@"; do kill -INT "$(sub_pid "$n")" 2>/dev/null; done
	for n in "$@"; do
		wait "$(sub_pid "$n")" 2>/dev/null
		cp "$RLY_WORK/$n.out" "$RAW/$n.out"
	done
}
js() { rly_json "$RAW/$1.out" "$2"; }
median() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:] if x not in ('','None','null')]; print(round(statistics.median(v),1) if v else 'n/a')" "$@"; }
median4() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:] if x not in ('','None','null','n/a')]; print(round(statistics.median(v),4) if v else 'n/a')" "$@"; }

# ---------------------------------------------------------------- a. latency across hops
part_a() {
	local idle=$1 n=5 run i r h
	say ""
	say "## a. end-to-end latency across relay hops, line 1-2-3-4-5 (relay i seeds from i-1), --idle $idle"
	say "# publisher on relay 1: $RATE msg/s, $SIZE B, $SECS s; a subscriber on every relay (--no-verify); $RUNS runs on one stream (its overlay stays up), fresh subscribers and publisher key each run"
	if [ "$idle" = busy ]; then
		n=2
		say "# --idle busy: 5 spinning relays cannot each get a core on $(nproc) vCPUs, so this is a 2-relay line (0 and 1 hop),"
		say "# relay 1 on CPU 0 and relay 2 on CPU 1, each spinning a full CPU; relay-control and clients share those CPUs"
		mesh_start 2 line --idle busy
	else
		mesh_start 5 line
	fi
	for ((run = 1; run <= RUNS; run++)); do
		local s="lat-$$" # one stream for every run: its line overlay stays up
		for ((i = 1; i <= n; i++)); do
			sub "a${run}_$i" "$i" "$s" $((45000 + run * 10 + i)) --no-verify --duration $((SECS + 40))
		done
		sub_wait_ready $(for ((i = 1; i <= n; i++)); do echo "a${run}_$i"; done) || return 1
		# Overlay up: every relay's links match the line (ends 1, middle 2).
		line_ok() {
			local i e l want
			for ((i = 1; i <= n; i++)); do
				read -r e l <<<"$(links "$i")"
				want=2
				[ "$i" = 1 ] || [ "$i" = "$n" ] && want=1
				[ $((e + l)) -eq $want ] || return 1
			done
		}
		rly_wait_for "the line overlay" 10 line_ok || say "# WARNING: the overlay is not the line (see links below)"
		local lk=""
		for ((i = 1; i <= n; i++)); do lk="$lk r$i=$(links "$i" | tr ' ' '/')"; done
		say "# run $run links eager/lazy at start:$lk"
		rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip 1)" --stream "$s" \
			--count $((RATE * SECS)) --rate "$RATE" --size "$SIZE" --json --quiet \
			>"$RAW/a${run}_pub.out" 2>&1
		sleep 1
		lk=""
		for ((i = 1; i <= n; i++)); do lk="$lk r$i=$(links "$i" | tr ' ' '/')"; done
		say "# run $run links eager/lazy at end:  $lk"
		sub_stop $(for ((i = 1; i <= n; i++)); do echo "a${run}_$i"; done)
		for ((i = 1; i <= n; i++)); do
			say "# run $run relay $i: msgs $(js "a${run}_$i" msgs) gaps $(js "a${run}_$i" gaps) lat_us $(js "a${run}_$i" lat_us)"
		done
	done
	say ""
	say "| hops (relay) | msgs (of $((RATE * SECS)), per run) | p50 us | p90 us | p99 us | max us | p50 minus 0-hop p50, us |"
	say "|---|---|---:|---:|---:|---:|---:|"
	for ((i = 1; i <= n; i++)); do
		h=$((i - 1))
		local m="" p50=() p90=() p99=() mx=() d=()
		for ((run = 1; run <= RUNS; run++)); do
			m="$m$(js "a${run}_$i" msgs) "
			p50+=("$(js "a${run}_$i" lat_us.p50)")
			p90+=("$(js "a${run}_$i" lat_us.p90)")
			p99+=("$(js "a${run}_$i" lat_us.p99)")
			mx+=("$(js "a${run}_$i" lat_us.max)")
			d+=("$(python3 -c "print(float('$(js "a${run}_$i" lat_us.p50)' or 0) - float('$(js "a${run}_1" lat_us.p50)' or 0))")")
		done
		say "| $h (relay $i) | ${m% } | $(median "${p50[@]}") | $(median "${p90[@]}") | $(median "${p99[@]}") | $(median "${mx[@]}") | $(median "${d[@]}") |"
	done
	say "# medians over $RUNS runs; the last column is the median over runs of (p50 at h hops - p50 at 0 hops) in the same run"
	mesh_stop "a-$idle"
}

# ---------------------------------------------------------------- b. duplicates
# sampler: every 0.25 s, the sum over relays of dedup_duplicates and of subscriber deliveries.
sampler() {
	local out=$1 stop=$2
	python3 - "$RLY_BUILD/tools/relay-stat" "$RLY_MESH_TAG" "$RLY_MESH_N" "$out" "$stop" <<'EOF' &
import json, os, subprocess, sys, time
stat, tag, n, out, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
f = open(out, "w")
def val(c, k):
    v = c.get(k, 0)
    return v.get('total', v.get('value', 0)) if isinstance(v, dict) else v
while not os.path.exists(stop):
    t = time.time()
    dups = subs = prunes = peer_rx = 0
    for i in range(1, n + 1):
        try:
            o = subprocess.run([stat, "--instance", f"{tag}{i}", "--once", "--json"],
                               capture_output=True, text=True, timeout=2).stdout
            c = json.loads(o.strip().splitlines()[-1])
            c = c.get('counters', c)
        except Exception:
            continue
        dups += val(c, 'dedup_duplicates')
        subs += val(c, 'deliveries') - val(c, 'peer_deliveries')
        prunes += val(c, 'ctl_prunes')
        peer_rx += val(c, 'peer_rx_msgs')
    f.write(json.dumps({"t": t, "dups": dups, "sub_deliveries": subs, "prunes": prunes,
                        "peer_rx": peer_rx}) + "\n")
    f.flush()
    time.sleep(max(0, 0.25 - (time.time() - t)))
EOF
	SAMPLER_PID=$!
	RLY_PIDS+=($SAMPLER_PID)
}

part_b() {
	local run i np s
	say ""
	say "## b. duplicates per delivered message: 5 relays, all seeded from relay 1, a subscriber on every relay"
	say "# each publisher $RATE msg/s, $SIZE B, $SECS s; $RUNS runs per case, a fresh stream each (the overlay forms when the subscribers arrive; prunes start with the first duplicates)"
	CTL_OPTS="--serve-linger-s 2 ${RLY_CTL_OPTS:-}" # so the link gauges at the end count this run's stream only
	mesh_start 5 star
	CTL_OPTS="${RLY_CTL_OPTS:-}"
	say "# relay-control --serve-linger-s 2 (default 30), 4 s between runs, so the gauges count one stream"
	say ""
	say "| publishers (relays) | run | delivered to subscribers | dedup_duplicates (sum) | dups per delivered | first 1 s: dups / delivered | rest: dups / delivered | last dup seen by (s) | ctl_prunes (sum) | eager/lazy links per relay at end |"
	say "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
	for np in 1 3; do
		local prelays="1"
		[ "$np" = 3 ] && prelays="2 3 5"
		local ratios=()
		for ((run = 1; run <= RUNS; run++)); do
			s="dup${np}p$run"
			for i in 1 2 3 4 5; do
				sub "b${np}_${run}_$i" "$i" "$s" $((46000 + np * 100 + run * 10 + i)) --no-verify --duration $((SECS + 60))
			done
			sub_wait_ready $(for i in 1 2 3 4 5; do echo "b${np}_${run}_$i"; done) || return 1
			ov_up() { local i e l; for i in 1 2 3 4 5; do read -r e l <<<"$(links "$i")"; [ "$e" -ge 1 ] || return 1; done; }
			rly_wait_for "the overlay" 20 ov_up || say "# WARNING: a relay has no eager link"
			sleep 1 # let discovery finish linking (degree 4)
			for i in 1 2 3 4 5; do counters "$i" "$RAW/b${np}_${run}_before_$i.json"; done
			rm -f "$RAW/stop"
			sampler "$RAW/b${np}_${run}_samples.jsonl" "$RAW/stop"
			rly_wait_for "the first sample" 10 test -s "$RAW/b${np}_${run}_samples.jsonl"
			local t0 pids=()
			t0=$(date +%s.%N)
			for r in $prelays; do
				rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip "$r")" --stream "$s" \
					--count $((RATE * SECS)) --rate "$RATE" --size "$SIZE" --json --quiet \
					>"$RAW/b${np}_${run}_pub$r.out" 2>&1 &
				pids+=($!)
			done
			wait "${pids[@]}"
			sleep 1.5
			touch "$RAW/stop"
			wait "$SAMPLER_PID" 2>/dev/null
			local lk="" dups=0 prunes=0 delivered=0 e l
			for i in 1 2 3 4 5; do
				counters "$i" "$RAW/b${np}_${run}_after_$i.json"
				e=$(cval "$RAW/b${np}_${run}_after_$i.json" ctl_links_eager)
				l=$(cval "$RAW/b${np}_${run}_after_$i.json" ctl_links_lazy)
				lk="$lk r$i=$e/$l"
				dups=$((dups + $(cval "$RAW/b${np}_${run}_after_$i.json" dedup_duplicates) - $(cval "$RAW/b${np}_${run}_before_$i.json" dedup_duplicates)))
				prunes=$((prunes + $(cval "$RAW/b${np}_${run}_after_$i.json" ctl_prunes) - $(cval "$RAW/b${np}_${run}_before_$i.json" ctl_prunes)))
			done
			sub_stop $(for i in 1 2 3 4 5; do echo "b${np}_${run}_$i"; done)
			local gaps="" reps=""
			for i in 1 2 3 4 5; do
				delivered=$((delivered + $(js "b${np}_${run}_$i" msgs)))
				gaps="$gaps$(js "b${np}_${run}_$i" missing)/"
				reps="$reps$(js "b${np}_${run}_$i" repaired)/"
			done
			local split
			split=$(python3 - "$RAW/b${np}_${run}_samples.jsonl" "$t0" <<'EOF'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0 = float(sys.argv[2])
if len(s) < 3:
    print("n/a | n/a"); sys.exit()
base = max((x for x in s if x["t"] <= t0), key=lambda x: x["t"], default=s[0])
one = min((x for x in s if x["t"] >= t0 + 1.0), key=lambda x: x["t"], default=s[-1])
end = s[-1]
def r(a, b):
    dd, dv = b["dups"] - a["dups"], b["sub_deliveries"] - a["sub_deliveries"]
    return "%d / %d = %.4f" % (dd, dv, dd / dv if dv else float('nan'))
last = min((x for x in s if x["dups"] == end["dups"]), key=lambda x: x["t"])
print("%s (%.2f s) | %s | %.2f" % (r(base, one), one["t"] - t0, r(one, end), last["t"] - t0))
EOF
)
			local ratio
			ratio=$(python3 -c "print(round($dups / $delivered, 4) if $delivered else 'n/a')")
			ratios+=("$ratio")
			sleep 4
			say "| $np ($prelays) | $run | $delivered (missing per sub: ${gaps%/}; repaired: ${reps%/}) | $dups | $ratio | $split | $prunes |$lk |"
		done
		say "# $np publisher(s): median dups per delivered over $RUNS runs: $(median4 "${ratios[@]}")"
		sleep 3
	done
	say "# missing = messages in a subscriber's gap reports; repaired = late messages that filled one (relay-sub JSON); missing - repaired = lost for good"
	say "# delivered = sum of the subscribers' msgs; dups = sum over relays of the change in dedup_duplicates; first 1 s from the per-0.5 s samples of the dataplane counters (deliveries - peer_deliveries), so its split point is within 0.25 s of 1 s (shown); 'last dup seen by' = first sample at which the duplicate count reached its final value, from the publishers' start"
	mesh_stop b
}

# ---------------------------------------------------------------- c. first message
part_c() {
	local k r s
	say ""
	say "## c. time from SUB_ACK to the first message (relay-sub first_msg_ms), publisher at $RATE msg/s, $SIZE B"
	say "# fresh 5-relay mesh, all seeded from relay 1 (sessions 1-2, 1-3, 1-4, 1-5 are up from the start); a fresh stream per try"
	mesh_start 5 star
	local local_v=() seed_v=() fresh_v=() again_v=()
	# try CASE PUBRELAY SUBRELAY K
	try() {
		local c=$1 pr=$2 sr=$3 k=$4 s="first-$1-$4-$$"
		rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip "$pr")" --stream "$s" \
			--duration 8 --rate "$RATE" --size "$SIZE" --quiet >/dev/null 2>&1 &
		local pp=$!
		sleep 2 # the publisher's relay serves and announces the stream
		local t0
		t0=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
		sub "c_${c}_$k" "$sr" "$s" $((47000 + k)) --no-verify --count 1 --duration 6
		wait "$(sub_pid "c_${c}_$k")" 2>/dev/null
		cp "$RLY_WORK/c_${c}_$k.out" "$RAW/"
		kill -INT $pp 2>/dev/null
		wait $pp 2>/dev/null
		local v
		v=$(js "c_${c}_$k" first_msg_ms)
		# what relay-control of the subscriber's relay logged for this stream, from the subscription on
		python3 - "$RLY_WORK/control$sr.log" "$t0" >"$RAW/c_${c}_${k}_events.txt" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("ts", "") >= sys.argv[2] and e.get("event") not in ("heartbeat",):
        print(line.strip())
EOF
		echo "$v"
	}
	for ((k = 1; k <= TRIES; k++)); do local_v+=("$(try local 1 1 "$k")"); done
	for ((k = 1; k <= TRIES; k++)); do seed_v+=("$(try seed 1 4 "$k")"); done
	# Publishers on relays 4 has no session with yet (only the first try per relay is fresh).
	local fr=(2 3 5)
	for ((k = 1; k <= 3; k++)); do fresh_v+=("$(try fresh "${fr[$((k - 1))]}" 4 "$k")"); done
	for ((k = 1; k <= TRIES; k++)); do again_v+=("$(try again "${fr[$(((k - 1) % 3))]}" 4 "$k")"); done
	# A fresh mesh gives only 3 fresh tries: more meshes until there are $TRIES.
	local m=1
	while [ ${#fresh_v[@]} -lt "$TRIES" ]; do
		mesh_stop "c$m"
		m=$((m + 1))
		mesh_start 5 star
		for ((k = 1; k <= 3 && ${#fresh_v[@]} < TRIES; k++)); do
			fresh_v+=("$(try fresh "${fr[$((k - 1))]}" 4 "$((m * 10 + k))")")
		done
	done
	say ""
	say "| subscriber on | publisher on | what it waits for | tries | first_msg_ms median | min | max | every try |"
	say "|---|---|---|---:|---:|---:|---:|---|"
	mm() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:] if x not in ('','None','null')]; print('%.1f | %.1f' % (min(v), max(v)) if v else 'n/a | n/a')" "$@"; }
	say "| relay 1 | relay 1 | SUB_ADD only (local) | $TRIES | $(median "${local_v[@]}") | $(mm "${local_v[@]}") | ${local_v[*]} |"
	say "| relay 4 | relay 1 (its seed: session up) | lookup + JOIN/ACCEPT + SUB_ADD | $TRIES | $(median "${seed_v[@]}") | $(mm "${seed_v[@]}") | ${seed_v[*]} |"
	say "| relay 4 | relays 2, 3, 5 (no session yet) | lookup + peer session + JOIN/ACCEPT + SUB_ADD | ${#fresh_v[@]} ($m meshes) | $(median "${fresh_v[@]}") | $(mm "${fresh_v[@]}") | ${fresh_v[*]} |"
	say "| relay 4 | relays 2, 3, 5 again (session up) | lookup + JOIN/ACCEPT + SUB_ADD | $TRIES | $(median "${again_v[@]}") | $(mm "${again_v[@]}") | ${again_v[*]} |"
	say "# null = no message within 6 s. Per-try control events: $RAW/c_*_events.txt"
	mesh_stop c
}

# ---------------------------------------------------------------- d. memory
declare -A RSS_R RSS_C
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
part_d() {
	local i k
	say ""
	say "## d. memory per stream per relay"
	say '```'
	"$RLY_BUILD/bench/overlay-sizes" | tee -a "$OUTFILE"
	say '```'
	say "# measured: 2 relays (relay 2 seeds from relay 1); 1 stream, then $STREAMS streams with a subscriber on each relay (so every stream has a peer link), subscribers paced at 20/s (relay-control admits 50 SUBSCRIBEs/s per source)"
	mesh_start 2 line
	snap() { # snap LABEL
		local l=$1 p
		for i in 1 2; do
			RSS_R[$l.$i]=$(rss_kb "${RLY_MESH_RELAY_PID[$i]}")
			RSS_C[$l.$i]=$(rss_kb "${RLY_MESH_CONTROL_PID[$i]}")
			say "| $l | relay $i | ${RSS_R[$l.$i]} | ${RSS_C[$l.$i]} | $(links "$i" | tr ' ' /) | $(counters "$i" "$RAW/c.tmp"; cval "$RAW/c.tmp" streams) |"
		done
	}
	say ""
	say "| streams | relay | relay VmRSS kB | relay-control VmRSS kB | eager/lazy links | dataplane streams |"
	say "|---|---|---:|---:|---|---:|"
	sleep 2
	snap "0"
	for i in 1 2; do sub "d_${i}_1" "$i" "mem1" $((50000 + i * 1000 + 1)) --no-verify; done
	sub_wait_ready d_1_1 d_2_1
	sleep 3
	snap "1"
	local r1=(${RLY_MESH_RELAY_PID[1]}) names=()
	for ((k = 2; k <= STREAMS; k++)); do
		for i in 1 2; do
			sub "d_${i}_$k" "$i" "mem$k" $((50000 + i * 1000 + k)) --no-verify --subscribe-timeout 20
			names+=("d_${i}_$k")
		done
		sleep 0.1
	done
	sub_wait_ready "${names[@]}" || say "# WARNING: not every subscriber subscribed"
	sleep 5
	snap "$STREAMS"
	for i in 1 2; do
		say "# relay $i: bytes per stream = (VmRSS at $STREAMS - at 1) / $((STREAMS - 1)): relay $(((RSS_R[$STREAMS.$i] - RSS_R[1.$i]) * 1024 / (STREAMS - 1))), relay-control $(((RSS_C[$STREAMS.$i] - RSS_C[1.$i]) * 1024 / (STREAMS - 1)))"
	done
	say "# no message was published in part d: dedup chains (8320 B each at --dedup-window 1024, in the preallocated shm region) are not touched; the subscribers' own memory is not counted"
	sub_stop d_1_1 d_2_1 "${names[@]}" >/dev/null 2>&1
	mesh_stop d
}

case "$PARTS" in *a*) part_a backoff; [ "$BUSY" = 1 ] && part_a busy ;; esac
case "$PARTS" in *b*) part_b ;; esac
case "$PARTS" in *c*) part_c ;; esac
case "$PARTS" in *d*) part_d ;; esac
say ""
say "# load after: $(cut -d' ' -f1-3 /proc/loadavg); results: $OUTFILE"
