#!/usr/bin/env bash
# Integration: relay-control is killed with SIGKILL in the middle of a stream. The dataplane keeps
# forwarding to the subscribers it has; a new relay-control resynchronises from the dataplane's
# table without dropping anyone, and the subscribers' heartbeats keep working (no resubscription,
# no gap, nothing lost).
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rcr$$"
rly_start_relay
rly_start_control

# A 6 s lease: a heartbeat every 2 s, the subscription lost after 6 s of silence. The outage
# below (2.5 s, two counter reads and the restart: about 3.5 s on this machine) stays well
# within it, so a resubscription would be a fault of the restart, not of the test's timing.
for i in 1 2; do
	rly_bg "sub$i" "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/restart \
		--bind "$RLY_CLIENT_IP:$((44000 + i))" --lease-ms 6000 --count 9000 --duration 40 \
		--verify --json --ready-file "$RLY_WORK/sub$i.ready"
done
for i in 1 2; do
	rly_wait_for "sub$i to subscribe" 15 test -e "$RLY_WORK/sub$i.ready" || { cat "$RLY_WORK/sub$i.err" >&2; exit 1; }
done
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/restart \
	--count 9000 --rate 1000 --json --quiet >"$RLY_WORK/pub.out" &
PUB=$!

sleep 2
kill -KILL "$RLY_CONTROL_PID"
echo "killed relay-control (pid $RLY_CONTROL_PID) with SIGKILL"
before=$(rly_counter deliveries)
sleep 2.5
after=$(rly_counter deliveries)
fail=0
if [ "$after" -gt "$before" ]; then
	echo "ok: with relay-control dead the relay went on delivering ($((after - before)) deliveries in 2.5 s)"
else
	echo "FAIL: no deliveries while relay-control was dead" >&2
	fail=1
fi
rly_start_control
entries=$(grep '"event":"resync_done"' "$RLY_WORK/control.log" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["entries"])')
[ "$entries" = 2 ] || { echo "FAIL: resync found $entries subscribers, expected 2" >&2; fail=1; }
echo "ok: the new relay-control resynchronised $entries subscribers from the dataplane"

wait $PUB
for i in 1 2; do
	wait "$(eval echo "\$RLY_PID_sub$i")" || true
	for f in gaps missing stale verify_failures resubscribes; do
		v=$(rly_json "$RLY_WORK/sub$i.out" "$f")
		[ "$v" = 0 ] || { echo "FAIL: sub$i $f = $v" >&2; fail=1; }
	done
	v=$(rly_json "$RLY_WORK/sub$i.out" msgs)
	[ "$v" = 9000 ] || { echo "FAIL: sub$i got $v of 9000" >&2; fail=1; }
done
grep -q '"event":"lease_expired"' "$RLY_WORK/control.log" && { echo "FAIL: a subscriber expired across the restart" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: control restart: 9000/9000 to both subscribers, no gap, no resubscription"
exit $fail
