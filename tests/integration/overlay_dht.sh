#!/usr/bin/env bash
# Integration, dht suite only (a build with -Ddht=enabled; `tools/test.sh dht`): three relays find
# each other through OpenDHT instead of a seed. Each relay-control runs a DHT node on 127.0.0.1
# (relay-control lives outside the relays' namespaces); relay 1's node bootstraps nobody, the
# others bootstrap from it. A publisher on relay 1, subscribers on relays 2 and 3: both get every
# message exactly once, through the overlay the DHT let them build.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
source "$(dirname "$0")/../../tools/mesh.sh"
rly_require_netns
trap rly_cleanup EXIT

"$RLY_BUILD/control/relay-control" --help | grep -q -- "--discovery static|dht" || {
	echo "SKIP: relay-control has no --discovery" >&2
	exit 77
}
# A free UDP port on 127.0.0.1 for each node.
ports=($(python3 -c '
import socket
ss = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'))
rly_mesh_up "od$$" 3
for i in 1 2 3; do
	rly_mesh_start_relay "$i" $(((i - 1) % 2))
done
rly_mesh_start_control 1 --discovery dht --dht-bind "127.0.0.1:${ports[0]}"
for i in 2 3; do
	rly_mesh_start_control "$i" --discovery dht --dht-bind "127.0.0.1:${ports[$((i - 1))]}" \
		--dht-bootstrap "127.0.0.1:${ports[0]}"
done
# OpenDHT holds operations for about a second after a bootstrap (control-plane-libs.md).
sleep 2

N=2000
for i in 2 3; do
	rly_bg "sub$i" "$RLY_BUILD/tools/relay-sub" --relay "$(rly_mesh_ip "$i")" --stream od/quotes \
		--bind "$RLY_CLIENT_IP:$((45000 + i))" --count "$N" --duration 60 --verify --json \
		--ready-file "$RLY_WORK/sub$i.ready"
	rly_wait_for "subscriber on relay $i" 15 test -e "$RLY_WORK/sub$i.ready"
done
# Relay 1 serves the stream only once its publisher shows up; start it, let the overlay form
# around its first messages, then count from a fresh publisher.
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip 1)" --stream od/quotes \
	--count 200 --rate 200 --quiet >/dev/null
linked() { [ "$(rly_mesh_counter 2 ctl_links_eager)" -ge 1 ] && [ "$(rly_mesh_counter 3 ctl_links_eager)" -ge 1 ]; }
rly_wait_for "relays 2 and 3 to link through the DHT" 30 linked || {
	tail -20 "$RLY_WORK"/control*.log >&2
	exit 1
}
for i in 2 3; do
	kill -INT "$(eval echo "\$RLY_PID_sub$i")" 2>/dev/null || true
	wait "$(eval echo "\$RLY_PID_sub$i")" || true
	mv "$RLY_WORK/sub$i.out" "$RLY_WORK/warm$i.out"
	rm -f "$RLY_WORK/sub$i.ready"
	rly_bg "sub$i" "$RLY_BUILD/tools/relay-sub" --relay "$(rly_mesh_ip "$i")" --stream od/quotes \
		--bind "$RLY_CLIENT_IP:$((45100 + i))" --count "$N" --duration 60 --verify --json \
		--ready-file "$RLY_WORK/sub$i.ready"
	rly_wait_for "subscriber on relay $i" 15 test -e "$RLY_WORK/sub$i.ready"
done
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip 1)" --stream od/quotes \
	--count "$N" --rate 1000 --json --quiet >"$RLY_WORK/pub.out"
fail=0
for i in 2 3; do
	wait "$(eval echo "\$RLY_PID_sub$i")" || true
	got=$(rly_json "$RLY_WORK/sub$i.out" msgs)
	echo "relay $i's subscriber: $got of $N, gaps $(rly_json "$RLY_WORK/sub$i.out" gaps), stale $(rly_json "$RLY_WORK/sub$i.out" stale)"
	[ "$got" = "$N" ] || fail=1
	[ "$(rly_json "$RLY_WORK/sub$i.out" stale)" = 0 ] || fail=1
	[ "$(rly_mesh_counter "$i" ctl_disc_lookups)" -ge 1 ] || { echo "FAIL: relay $i made no DHT lookup" >&2; fail=1; }
done
grep -q '"seeds":0' "$RLY_WORK/control2.log" || { echo "FAIL: relay 2 was given a seed" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: overlay_dht: 3 relays found each other through OpenDHT, no seed; both remote subscribers exact"
exit $fail
