#!/usr/bin/env bash
# Integration (issue 6): loss repair between a relay and its subscribers, as real processes.
#
# One relay on a bridge; a publisher in a namespace with a clean link; three subscribers in a
# namespace whose link drops datagrams at random in both directions (data, NAKs, repairs and
# heartbeats alike): 1 %, then 5 %. The loss is turned on once the subscribers have their first
# message of the chain (a subscriber cannot tell a lost first message from a chain it joined in
# the middle) and off shortly before the publisher's last one (nothing follows a lost last
# message to show it missing). In between, every loss must be repaired: every subscriber ends with
# every message, byte for byte, exactly once and in order (lost 0, out_of_order 0), and the
# repair latency percentiles are printed.
#
# RLY_LOSS_COUNT (default 6000) messages at RLY_LOSS_RATE (default 1000) per second per phase.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
source "$(dirname "$0")/../../tools/mesh.sh"
rly_require_netns
trap rly_cleanup EXIT

N=${RLY_LOSS_COUNT:-6000}
RATE=${RLY_LOSS_RATE:-1000}
SUBS=3
rly_mesh_up "ls$$" 1
rly_mesh_add_clients l 198.18.0.3
rly_mesh_start_relay 1 0
rly_mesh_start_control 1
RELAY=$(rly_mesh_ip 1)

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}
field() { rly_json "$RLY_WORK/$1.out" "$2"; }

# How many subscribers of phase $1 have printed their first message.
started() {
	local n=0 i
	for ((i = 1; i <= SUBS; i++)); do
		grep -q '^msg ' "$RLY_WORK/p$1_$i.print" 2>/dev/null && n=$((n + 1))
	done
	[ "$n" -eq "$SUBS" ]
}

for pm in 10 50; do
	stream="it/loss$pm"
	for ((i = 1; i <= SUBS; i++)); do
		# --print goes to a file of its own: the test sees each subscriber's first message.
		ip netns exec "${RLY_MESH_TAG}l" "$RLY_BUILD/tools/relay-sub" --relay "$RELAY" \
			--stream "$stream" --bind "198.18.0.3:$((45000 + pm * 10 + i))" --count "$N" \
			--duration 60 --verify --json --print --ready-file "$RLY_WORK/p${pm}_$i.ready" \
			>"$RLY_WORK/p${pm}_$i.print" 2>"$RLY_WORK/p${pm}_$i.err" &
		RLY_PIDS+=($!)
		eval "SUBPID_$i=$!"
	done
	for ((i = 1; i <= SUBS; i++)); do
		rly_wait_for "subscriber $i" 15 test -e "$RLY_WORK/p${pm}_$i.ready" || {
			cat "$RLY_WORK/p${pm}_$i.err" >&2
			exit 1
		}
	done
	rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RELAY" --stream "$stream" \
		--count "$N" --rate "$RATE" --json --quiet >"$RLY_WORK/pub$pm.out" &
	PUB=$!
	rly_wait_for "every subscriber's first message" 10 started "$pm" || bad "no first message"
	rly_mesh_loss l "$pm"
	# Off 0.5 s before the last message: the clean tail shows every gap before it.
	sleep "$(awk -v n="$N" -v r="$RATE" 'BEGIN { printf "%.2f", n / r - 0.8 }')"
	rly_mesh_loss l 0
	wait $PUB
	for ((i = 1; i <= SUBS; i++)); do
		wait "$(eval echo "\$SUBPID_$i")" || true
		# The summary line is the last line of the --print output.
		tail -n 1 "$RLY_WORK/p${pm}_$i.print" >"$RLY_WORK/p${pm}_$i.out"
		f="p${pm}_$i"
		msgs=$(field "$f" msgs)
		printf 'loss %s%%, subscriber %d: %s/%s, %s gaps (%s missing), %s repaired, %s lost, %s NAKs, out of order %s, repair us p50 %s p90 %s p99 %s max %s\n' \
			"$(awk -v p="$pm" 'BEGIN { print p / 10 }')" "$i" "$msgs" "$N" \
			"$(field "$f" gaps)" "$(field "$f" missing)" "$(field "$f" repaired)" \
			"$(field "$f" lost)" "$(field "$f" naks)" "$(field "$f" out_of_order)" \
			"$(field "$f" repair_us.p50)" "$(field "$f" repair_us.p90)" \
			"$(field "$f" repair_us.p99)" "$(field "$f" repair_us.max)"
		[ "$msgs" = "$N" ] || bad "loss $pm permille, subscriber $i got $msgs of $N"
		for k in lost out_of_order verify_failures bad_sig malformed; do
			v=$(field "$f" "$k")
			[ "$v" = 0 ] || bad "loss $pm permille, subscriber $i: $k = $v"
		done
		[ "$(field "$f" gaps)" -gt 0 ] || bad "loss $pm permille, subscriber $i saw no gap: was there any loss?"
		[ "$(field "$f" repaired)" = "$(field "$f" missing)" ] ||
			bad "loss $pm permille, subscriber $i: repaired $(field "$f" repaired) of $(field "$f" missing) missing"
	done
done
echo "relay: $(rly_mesh_counter 1 nak_rx) NAKs, $(rly_mesh_counter 1 repair_msgs) messages sent again," \
	"$(rly_mesh_counter 1 gap_sent) GAPs, $(rly_mesh_counter 1 nak_holdoff) held off," \
	"$(rly_mesh_counter 1 nak_paced) paced"
[ "$(rly_mesh_counter 1 slow_cuts)" = 0 ] || bad "a subscriber was cut as a slow consumer"
[ $fail -eq 0 ] && echo "PASS: loss repair: every subscriber got all $N messages in order at 1 % and 5 % loss"
exit $fail
