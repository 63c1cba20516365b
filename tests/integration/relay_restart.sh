#!/usr/bin/env bash
# Integration (issue 6, faults): the relay (the DPDK dataplane) is killed with SIGKILL in the
# middle of a stream, then started again; relay-control stays up.
#
# - relay-control notices (relay_lost), waits, and attaches to the new relay by itself;
# - the dead relay's shared memory is replaced, not reused: the new object names the new pid, and
#   relay-stat reads it;
# - the subscribers notice within about one heartbeat period (a heartbeat unanswered for a period,
#   no data either), subscribe again as soon as the relay is back, and go on with the same
#   publisher chain: what was published while the relay was down is reported lost (the new relay
#   never had it), everything after arrives, in order, nothing twice;
# - a publisher started afresh after the restart (a new chain) is taken as such: no false gap.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rrs$$"
rly_start_relay
rly_start_control

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}
N=7000
RATE=500
# lease 3 s: a heartbeat every second.
for i in 1 2; do
	rly_bg "sub$i" "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream it/relay-restart \
		--bind "$RLY_CLIENT_IP:$((44100 + i))" --lease-ms 3000 --duration 40 --idle-timeout 10 \
		--verify --json --print --ready-file "$RLY_WORK/sub$i.ready"
done
for i in 1 2; do
	rly_wait_for "sub$i to subscribe" 15 test -e "$RLY_WORK/sub$i.ready" || { cat "$RLY_WORK/sub$i.err" >&2; exit 1; }
done
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/relay-restart \
	--count "$N" --rate "$RATE" --json --quiet >"$RLY_WORK/pub.out" &
PUB=$!

sleep 3
OLD_PID=$RLY_RELAY_PID
kill -KILL "$OLD_PID"
KILLED_AT=$(date +%s.%N)
echo "killed the relay (pid $OLD_PID) with SIGKILL"
wait "$OLD_PID" 2>/dev/null || true
# The subscribers notice: "lost the subscription" in their stderr.
for i in 1 2; do
	rly_wait_for "sub$i to notice" 5 grep -q "lost the subscription" "$RLY_WORK/sub$i.err" ||
		bad "sub$i did not notice the relay was gone within 5 s"
done
NOTICED_AT=$(date +%s.%N)
echo "ok: both subscribers noticed within $(awk -v a="$KILLED_AT" -v b="$NOTICED_AT" 'BEGIN { printf "%.1f", b - a }') s (heartbeat period 1 s)"
rly_wait_for "relay-control to see the relay gone" 5 grep -q '"event":"relay_lost"' "$RLY_WORK/control.log" ||
	bad "relay-control did not log relay_lost"
sleep 1
# The same instance again: the dead relay's /dev/shm object must be replaced. (Its old log
# says "relay: running" too.)
rm -f "$RLY_WORK/relay.log"
before=$(grep -c '"event":"resync_done"' "$RLY_WORK/control.log" || true)
rly_start_relay
rly_wait_for "relay-control to attach to the new relay" 10 rly_resyncs_above "$before" ||
	bad "relay-control did not attach to the restarted relay"
shm_pid=$(rly_stat --once --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["pid"])')
[ "$shm_pid" = "$RLY_RELAY_PID" ] && echo "ok: the shared memory is the new relay's (pid $shm_pid)" ||
	bad "relay-stat reads relay pid $shm_pid, the new relay is $RLY_RELAY_PID"
for i in 1 2; do
	rly_wait_for "sub$i to subscribe again" 10 grep -q "re-subscribed" "$RLY_WORK/sub$i.err" ||
		bad "sub$i did not subscribe again"
done
wait $PUB || bad "relay-pub failed"

# A new publisher after the restart: a chain of its own, which no subscriber takes for a gap.
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream it/relay-restart \
	--count 500 --rate 500 --json --quiet >"$RLY_WORK/pub2.out"
for i in 1 2; do
	wait "$(eval echo "\$RLY_PID_sub$i")" || true
	tail -n 1 "$RLY_WORK/sub$i.out" >"$RLY_WORK/sub$i.json"
	f="$RLY_WORK/sub$i.json"
	msgs=$(rly_json "$f" msgs) lost=$(rly_json "$f" lost) chains=$(rly_json "$f" chains)
	echo "sub$i: $msgs messages, $lost reported lost, $(rly_json "$f" chains) chains, resubscribes $(rly_json "$f" resubscribes), out of order $(rly_json "$f" out_of_order), stale $(rly_json "$f" stale)"
	grep '^gap ' "$RLY_WORK/sub$i.out" | sed 's/^/  /'
	[ "$chains" = 2 ] || bad "sub$i saw $chains chains, expected 2 (before and after the new publisher)"
	[ "$((msgs + lost))" = "$((N + 500))" ] || bad "sub$i: $msgs delivered + $lost lost != $((N + 500)) published"
	[ "$lost" -gt 0 ] || bad "sub$i lost nothing while the relay was down?"
	[ "$lost" -lt "$((RATE * 10))" ] || bad "sub$i lost $lost messages, more than 10 s of the stream"
	for k in out_of_order verify_failures bad_sig; do
		v=$(rly_json "$f" "$k")
		[ "$v" = 0 ] || bad "sub$i: $k = $v"
	done
	[ "$(rly_json "$f" resubscribes)" -ge 1 ] || bad "sub$i did not subscribe again"
	# The new chain began at its seq 1: no gap on it.
	if grep '^gap ' "$RLY_WORK/sub$i.out" | grep -qv "chain=$(grep '^gap ' "$RLY_WORK/sub$i.out" | head -1 | sed 's/.*chain=\([0-9a-f]*\).*/\1/')"; then
		bad "sub$i reported a gap on a second chain"
	fi
done
[ $fail -eq 0 ] && echo "PASS: relay restart: subscribers noticed, came back, lost only what the dead relay never passed on"
exit $fail
