#!/usr/bin/env bash
# Soak (issue 6, opt-in: meson suite "soak", `tools/test.sh soak`): relay-soak (soak.c) against a
# real relay (AF_XDP on a veth) and relay-control, for RLY_SOAK_S seconds (default 600).
#
# Four publishers send 2000 messages/s with payloads of 0 to 1000 bytes; 32 subscriber slots
# churn (each subscription lives 20-400 ms, from one of 32 client addresses, so a subscribe or an
# unsubscribe happens every few ms); 100 malformed datagrams/s go to the relay. relay-soak keeps
# the account: every message published while a subscription was up either reached it exactly once
# or lies in a range it reported lost. Then: the relay counted the malformed datagrams and is still
# up, every subscription is gone from its table, and the memory of relay and relay-control did
# not grow past their warm-up size by more than a little.
#
# RLY_SOAK_LOSS (permille, default 5) drops that share of the datagrams from the relay to the
# clients (nftables in the clients' namespace): the NAK repair runs all along. A message lost at
# the very edge of a subscription (before the first or after the last one it saw of a chain) shows
# no hole to the subscriber; it is counted apart (edge_unseen) and must be 0 without loss.
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
SECS=${RLY_SOAK_S:-600}
LOSS=${RLY_SOAK_LOSS:-5}
rly_net_up "sk$$"
for i in $(seq 100 131); do
	ip -n "$RLY_NS_C" addr add "198.18.0.$i/24" dev "sk$$vc"
done
rly_start_relay
# Each address subscribes every few hundred ms: well inside these per-source limits.
rly_start_control --sub-rate 200 --sub-burst 400
if [ "$LOSS" -gt 0 ]; then
	printf '%s\n' "table inet rlysoak {" \
		"chain in { type filter hook input priority 0; udp sport 4747 numgen random mod 1000 < $LOSS drop; }" \
		"}" | ip netns exec "$RLY_NS_C" nft -f - || rly_die "nft: cannot install the loss rule"
	echo "loss: $LOSS permille of the datagrams from the relay to the clients (nftables numgen)"
fi
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}
rly_in_clients "$RLY_BUILD/tests/relay-soak" --relay "$RLY_RELAY_IP" --stream it/soak \
	--duration "$SECS" --bind-base 198.18.0.100 --bind-count 32 --json \
	>"$RLY_WORK/soak.out" 2>"$RLY_WORK/soak.err" &
SOAK=$!
sleep $((SECS > 60 ? 30 : SECS / 3))
relay_rss0=$(rss_kb "$RLY_RELAY_PID")
ctl_rss0=$(rss_kb "$RLY_CONTROL_PID")
wire0=$(rly_counter drop_wire)
wait $SOAK || bad "relay-soak found violations or failures (below)"
sleep 1
relay_rss1=$(rss_kb "$RLY_RELAY_PID")
ctl_rss1=$(rss_kb "$RLY_CONTROL_PID")
cat "$RLY_WORK/soak.err" | tail -20
head -1 "$RLY_WORK/soak.out"
kill -0 "$RLY_RELAY_PID" 2>/dev/null || bad "the relay died"
kill -0 "$RLY_CONTROL_PID" 2>/dev/null || bad "relay-control died"
wire=$(rly_counter drop_wire)
subs=$(rly_counter subscribers)
echo "relay: drop_wire $wire ($((wire - wire0)) after the warm-up), subscribers at the end $subs," \
	"nak_rx $(rly_counter nak_rx), repair_msgs $(rly_counter repair_msgs), gap_sent $(rly_counter gap_sent)," \
	"ctl_sub_added $(rly_counter ctl_sub_added), ctl_unsubscribed $(rly_counter ctl_unsubscribed)," \
	"ctl_expired $(rly_counter ctl_expired), drop_punt_rate $(rly_counter drop_punt_rate)"
echo "memory (VmRSS, kB): relay $relay_rss0 -> $relay_rss1, relay-control $ctl_rss0 -> $ctl_rss1 (after the warm-up -> at the end)"
edge=$(rly_json "$RLY_WORK/soak.out" edge_unseen)
if [ "$LOSS" = 0 ]; then
	[ "$edge" = 0 ] || bad "$edge messages missing at subscriptions' edges without any loss"
else
	[ "$(rly_counter nak_rx)" -gt 0 ] || bad "loss $LOSS permille but the relay got no NAK"
fi
[ "$wire" -gt 0 ] || bad "no malformed datagram was counted (drop_wire 0)"
[ "$subs" = 0 ] || bad "$subs subscribers left in the relay's table after every subscription ended"
# The history fills as messages arrive (up to the ring of each chain): allow it, and 10 % more.
[ "$ctl_rss1" -lt $((ctl_rss0 + ctl_rss0 / 10 + 2048)) ] || bad "relay-control grew from $ctl_rss0 to $ctl_rss1 kB"
[ $fail -eq 0 ] && echo "PASS: soak: $SECS s of churn, every message accounted for"
exit $fail
