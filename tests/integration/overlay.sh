#!/usr/bin/env bash
# Integration: five relays, each in its own network namespace on one bridge, each with its own
# relay-control. Relay 1 is the only seed the others know. Publishers and subscribers sit on
# different relays; the relays find each other through discovery, link into the stream's overlay
# and push every message along it, dropping duplicates in the dataplane.
#
# Phase 1, no faults: two publishers on relays 2 and 4, a subscriber on every relay. Every
# subscriber gets every message exactly once; in order per publisher chain except what a pruning
# race left out and a peer's history repaired (counted and printed).
# Phase 2, a crash: a publisher on relay 1, and the relay with the most eager links is killed
# (SIGKILL, relay and relay-control) a third of the way in. The subscribers of the other relays
# must get the whole stream: what the dead relay did not pass on is sent again from the history of
# a relay that has it (IHAVE, GRAFT, IWANT) and arrives late; the test shows how much and when.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
source "$(dirname "$0")/../../tools/mesh.sh"
rly_require_netns
trap rly_cleanup EXIT

N=5
rly_mesh_up "ov$$" "$N"
for ((i = 1; i <= N; i++)); do
	rly_mesh_start_relay "$i" $(((i - 1) % 2))
done
SEED=$(rly_mesh_ip 1)
rly_mesh_start_control 1
for ((i = 2; i <= N; i++)); do
	rly_mesh_start_control "$i" --seed "$SEED"
done

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}
field() { rly_json "$RLY_WORK/$1.out" "$2"; }

# start_subs PHASE COUNT RELAYS...: a subscriber per relay, waits until all are subscribed.
start_subs() {
	local phase=$1 count=$2 i
	shift 2
	for i in "$@"; do
		rly_bg "s${phase}_$i" "$RLY_BUILD/tools/relay-sub" --relay "$(rly_mesh_ip "$i")" \
			--stream ov/quotes --bind "$RLY_CLIENT_IP:$((44000 + phase * 100 + i))" \
			--count "$count" --duration 60 --verify --json \
			--ready-file "$RLY_WORK/s${phase}_$i.ready"
	done
	for i in "$@"; do
		rly_wait_for "subscriber on relay $i" 15 test -e "$RLY_WORK/s${phase}_$i.ready" || {
			cat "$RLY_WORK/s${phase}_$i.err" >&2
			exit 1
		}
	done
}

# Every relay with a subscriber has an eager link: the overlay is up.
overlay_up() {
	local i
	for i in "$@"; do
		[ "$(rly_mesh_counter "$i" ctl_links_eager)" -ge 1 ] || return 1
	done
}

# ---- phase 1 ----
NA=3000
NB=1500
late=0
start_subs 1 $((NA + NB)) 1 2 3 4 5
rly_wait_for "the overlay to link" 20 overlay_up 1 2 3 4 5 || {
	tail -5 "$RLY_WORK"/control*.log >&2
	exit 1
}
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip 2)" --stream ov/quotes \
	--count "$NA" --rate 1000 --size 64 --json --quiet >"$RLY_WORK/pubA.out" &
PA=$!
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip 4)" --stream ov/quotes \
	--count "$NB" --rate 500 --size 200 --json --quiet >"$RLY_WORK/pubB.out" &
PB=$!
wait $PA $PB
for i in 1 2 3 4 5; do
	wait "$(eval echo "\$RLY_PID_s1_$i")" || true
	[ "$(field "s1_$i" msgs)" = $((NA + NB)) ] || bad "phase 1: relay $i's subscriber got $(field "s1_$i" msgs) of $((NA + NB))"
	for f in malformed foreign verify_failures out_of_order lost; do
		[ "$(field "s1_$i" $f)" = 0 ] || bad "phase 1: relay $i's subscriber: $f = $(field "s1_$i" $f) (lost by reason: $(field "s1_$i" lost_reasons))"
	done
	# A hole left by two relays pruning at once is repaired: asked for by the subscriber (NAK)
	# and sent by its relay once the relay has it from a peer's history, delivered in order.
	# The relay may send it twice (its NAK answer, and the message itself as it arrives from
	# the peer): the subscriber drops the copy (stale).
	[ "$(field "s1_$i" missing)" = "$(field "s1_$i" repaired)" ] ||
		bad "phase 1: relay $i's subscriber lost $(field "s1_$i" missing) and got $(field "s1_$i" repaired) repaired"
	late=$((late + $(field "s1_$i" repaired)))
	[ "$(field "s1_$i" chains)" = 2 ] || bad "phase 1: relay $i's subscriber saw $(field "s1_$i" chains) chains"
done
# What each relay saw, printed when something went wrong, for the next engineer.
dump_counters() {
	local i c line
	for i in "$@"; do
		line="relay $i:"
		for c in rx_msgs deliveries peer_rx_msgs peer_deliveries dedup_duplicates dedup_too_old \
			dedup_untracked split_horizon drop_ctl_tx_bad tx_drop ctl_repair_sent \
			ctl_repair_unavailable ctl_prunes ctl_grafts; do
			line="$line $c=$(rly_mesh_counter "$i" "$c")"
		done
		echo "$line" >&2
	done
}
[ $fail -eq 0 ] || dump_counters 1 2 3 4 5
dups=0
prunes=0
peer_rx=0
for i in 1 2 3 4 5; do
	dups=$((dups + $(rly_mesh_counter "$i" dedup_duplicates)))
	prunes=$((prunes + $(rly_mesh_counter "$i" ctl_prunes)))
	peer_rx=$((peer_rx + $(rly_mesh_counter "$i" peer_rx_msgs)))
done
echo "phase 1: 5 subscribers x $((NA + NB)) messages, each exactly once and in order ($late repaired); relays received $peer_rx messages from peers, dropped $dups duplicates, pruned $prunes links"
[ "$peer_rx" -gt 0 ] || bad "no message crossed a peer link"
[ "$prunes" -gt 0 ] || bad "no link was pruned: duplicates are not being turned into a tree"
# Duplicates per delivered message across the overlay (the dataplane's dedup count over what the
# subscribers received).
echo "phase 1: duplicates per delivered message: $(python3 -c "print(round($dups / (5 * ($NA + $NB)), 4))")"

# ---- phase 2: kill the relay that carries the most eager links ----
NC=6000
RATE=1000
start_subs 2 "$NC" 1 2 3 4 5
victim=0
best=-1
for i in 2 3 4 5; do
	e=$(rly_mesh_counter "$i" ctl_links_eager)
	if [ "$e" -gt "$best" ]; then
		best=$e
		victim=$i
	fi
done
echo "phase 2: relay $victim has the most eager links ($best); it is killed 2 s into the stream"
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$SEED" --stream ov/quotes --count "$NC" \
	--rate "$RATE" --size 64 --json --quiet >"$RLY_WORK/pubC.out" &
PC=$!
sleep 2
kill_ms=$(date +%s%3N)
rly_mesh_kill "$victim"
wait $PC
sleep 1
for i in 1 2 3 4 5; do
	[ "$i" = "$victim" ] && continue
	pid=$(eval echo "\$RLY_PID_s2_$i")
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" || true
	got=$(field "s2_$i" msgs)
	missing=$(field "s2_$i" missing)
	repaired=$(field "s2_$i" repaired)
	gaps=$(field "s2_$i" gaps)
	echo "phase 2: relay $i's subscriber got $got of $NC: $gaps gap(s) of $missing messages (= $((missing * 1000 / RATE)) ms of the stream), $repaired of them repaired, $(field "s2_$i" naks) NAKs, $(field "s2_$i" stale) copies dropped"
	# Delivery resumed: the last message arrived.
	grep -q "seq [0-9]*\.\.$NC\b" "$RLY_WORK/s2_$i.out" || bad "relay $i's subscriber did not get the end of the stream"
	for f in malformed foreign verify_failures out_of_order lost; do
		[ "$(field "s2_$i" $f)" = 0 ] || bad "phase 2: relay $i's subscriber: $f = $(field "s2_$i" $f) (lost by reason: $(field "s2_$i" lost_reasons))"
	done
	# Nothing is lost for good: what the dead relay did not pass on comes from a peer's history
	# once a lazy link's IHAVE shows the hole (about 50 ms + --graft-after-ms).
	[ "$got" = "$NC" ] || bad "relay $i's subscriber got $got of $NC"
	[ "$missing" = "$repaired" ] || bad "relay $i's subscriber lost $((missing - repaired)) messages for good"
done
# Repair seen in the control logs after the kill.
for i in 1 2 3 4 5; do
	[ "$i" = "$victim" ] && continue
	python3 - "$RLY_WORK/control$i.log" "$kill_ms" "$i" <<'EOF'
import json, sys, datetime
events = {}
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") not in ("link_grafted", "peer_dead", "link_down", "link_up"):
        continue
    t = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000
    if t >= int(sys.argv[2]):
        events.setdefault(e["event"], int(t - int(sys.argv[2])))
print("phase 2: relay %s after the kill (ms): %s" % (sys.argv[3], events or "no overlay change"))
EOF
done
[ $fail -eq 0 ] && echo "PASS: overlay: 5 relays, phase 1 exact, phase 2 survived the loss of relay $victim"
exit $fail
