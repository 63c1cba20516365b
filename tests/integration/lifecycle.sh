#!/usr/bin/env bash
# Integration: a subscriber that unsubscribes, and one that vanishes without a word (its lease
# runs out), both stop getting messages within one lease period while the stream goes on; the
# subscriber that stays gets everything.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rlc$$"
rly_start_relay
rly_start_control

LEASE_MS=1500
rly_bg stay "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/life \
	--bind "$RLY_CLIENT_IP:43000" --duration 30 --idle-timeout 2 --json --ready-file "$RLY_WORK/stay.ready"
rly_bg quits "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/life \
	--bind "$RLY_CLIENT_IP:43001" --count 500 --json --ready-file "$RLY_WORK/quits.ready"
rly_bg vanishes "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/life \
	--bind "$RLY_CLIENT_IP:43002" --count 500 --no-unsubscribe --lease-ms "$LEASE_MS" --json \
	--ready-file "$RLY_WORK/vanishes.ready"
for s in stay quits vanishes; do
	rly_wait_for "$s to subscribe" 15 test -e "$RLY_WORK/$s.ready" || { cat "$RLY_WORK/$s.err" >&2; exit 1; }
done
[ "$(rly_counter subscribers)" -eq 3 ] || { echo "FAIL: relay has $(rly_counter subscribers) subscribers, expected 3" >&2; exit 1; }

rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/life \
	--count 8000 --rate 1000 --json --quiet >"$RLY_WORK/pub.out" &
PUB=$!

fail=0
wait "$RLY_PID_quits"
rly_wait_for "the unsubscribe to be applied" 5 grep -q '"event":"unsubscribed"' "$RLY_WORK/control.log" ||
	{ echo "FAIL: relay-control never logged unsubscribed" >&2; fail=1; }
# The port is free now: anything the relay still sent there would arrive here.
if n=$(rly_udp_silence "$RLY_NS_C" 43001 1.5); then
	echo "ok: unsubscribed endpoint received nothing for 1.5 s"
else
	echo "FAIL: unsubscribed endpoint still received $n datagrams" >&2
	fail=1
fi

wait "$RLY_PID_vanishes"
rly_wait_for "the lease to expire" 10 grep -q '"event":"lease_expired"' "$RLY_WORK/control.log" ||
	{ echo "FAIL: relay-control never expired the silent subscriber" >&2; fail=1; }
echo "ok: relay-control expired the silent subscriber's $LEASE_MS ms lease"
if n=$(rly_udp_silence "$RLY_NS_C" 43002 1.5); then
	echo "ok: expired endpoint received nothing for 1.5 s"
else
	echo "FAIL: expired endpoint still received $n datagrams" >&2
	fail=1
fi
[ "$(rly_counter subscribers)" -eq 1 ] || { echo "FAIL: relay still has $(rly_counter subscribers) subscribers" >&2; fail=1; }

wait $PUB
wait "$RLY_PID_stay" || true
for f in gaps missing stale; do
	v=$(rly_json "$RLY_WORK/stay.out" "$f")
	[ "$v" = 0 ] || { echo "FAIL: staying subscriber $f = $v" >&2; fail=1; }
done
v=$(rly_json "$RLY_WORK/stay.out" msgs)
[ "$v" = 8000 ] || { echo "FAIL: staying subscriber got $v of 8000" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: lifecycle: unsubscribe and lease expiry stop delivery; the rest got all 8000"
exit $fail
