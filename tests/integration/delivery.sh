#!/usr/bin/env bash
# Integration: relay (DPDK, AF_XDP on a veth in its own namespace) + relay-control + real
# publisher and subscriber processes on kernel UDP sockets in another namespace.
# Every subscriber gets every message of its stream exactly once, in order, intact; the other
# stream's messages never reach it; the clients found the relay through its own ARP replies.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rid$$"
rly_start_relay
rly_start_control

N_A=3000
N_B=800
for i in 1 2 3; do
	rly_bg "subA$i" "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/quotes \
		--bind "$RLY_CLIENT_IP:$((42000 + i))" --count "$N_A" --duration 30 --verify --json \
		--ready-file "$RLY_WORK/subA$i.ready"
done
rly_bg subB "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/trades \
	--bind "$RLY_CLIENT_IP:42010" --count "$N_B" --duration 30 --verify --json \
	--ready-file "$RLY_WORK/subB.ready"
for s in subA1 subA2 subA3 subB; do
	rly_wait_for "$s to subscribe" 15 test -e "$RLY_WORK/$s.ready" || {
		cat "$RLY_WORK/$s.err" >&2
		exit 1
	}
done

rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/quotes \
	--count "$N_A" --rate 3000 --size 100 --json --quiet >"$RLY_WORK/pubA.out" &
PUB_A=$!
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/trades \
	--count "$N_B" --rate 1000 --size 40 --batch 4 --json --quiet >"$RLY_WORK/pubB.out" &
PUB_B=$!
wait $PUB_A $PUB_B

fail=0
check() { # name field expected
	local got
	got=$(rly_json "$RLY_WORK/$1.out" "$2")
	if [ "$got" != "$3" ]; then
		echo "FAIL: $1 $2 = '$got', expected $3" >&2
		fail=1
	fi
}
for s in subA1 subA2 subA3 subB; do
	wait "$(eval echo "\$RLY_PID_$s")" || true
	n=$N_A
	[ "$s" = subB ] && n=$N_B
	check "$s" msgs "$n"
	for f in gaps missing stale malformed foreign verify_failures; do
		check "$s" "$f" 0
	done
	check "$s" chains 1
	echo "ok: $s received $(rly_json "$RLY_WORK/$s.out" msgs) messages, p99 latency $(rly_json "$RLY_WORK/$s.out" lat_us.p99) us"
done

deliveries=$(rly_counter deliveries)
[ "$deliveries" -eq $((3 * N_A + N_B)) ] || { echo "FAIL: relay counted $deliveries deliveries, expected $((3 * N_A + N_B))" >&2; fail=1; }
for c in drop_wire drop_udp_csum drop_ip_csum drop_punt_full tx_drop; do
	v=$(rly_counter "$c")
	[ "$v" -eq 0 ] || { echo "FAIL: relay counter $c = $v" >&2; fail=1; }
done
[ "$(rly_counter arp_replies)" -ge 1 ] || { echo "FAIL: the relay never answered ARP" >&2; fail=1; }
rly_in_clients ip neigh show "$RLY_RELAY_IP" | grep -q lladdr || { echo "FAIL: no neighbour entry for the relay" >&2; fail=1; }
grep -c '"event":"subscribe_added"' "$RLY_WORK/control.log" | grep -qx 4 || { echo "FAIL: relay-control did not log 4 subscribe_added" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: delivery: 4 subscribers, 2 streams, $deliveries deliveries, all exact"
exit $fail
