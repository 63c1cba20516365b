# SPDX-License-Identifier: Apache-2.0
# A network of relays on one machine, for tests/integration/overlay.sh and bench/run-overlay.sh:
# every relay in its own network namespace, all of them and one client namespace on a bridge in a
# hub namespace (one L2 segment, 198.18.0.0/24). Source tools/lib.sh first.
#
#   rly_mesh_up TAG N             namespaces ${TAG}h (bridge), ${TAG}r1..N (relays), ${TAG}c
#                                 (clients, 198.18.0.2); relay i is 198.18.0.(10+i)
#   rly_mesh_start_relay I CPU [relay options...]       relay I on net_af_xdp, pinned to CPU
#   rly_mesh_start_control I [relay-control options...] with identity $RLY_WORK/relay$I.id
#   rly_mesh_ip I                 relay I's address
#   rly_mesh_counter I NAME       a counter of relay I
#   rly_mesh_kill I               SIGKILL relay I and its relay-control (a crash)
#   rly_mesh_add_clients NAME IP  one more client namespace ${TAG}NAME on the bridge, at IP/24
#                                 (veth ${TAG}vNAME inside, ${TAG}bNAME on the bridge)
#   rly_mesh_loss NAME PERMILLE   random loss to and from NAME's namespace (see below)
#
# Everything stays inside the namespaces made here; rly_cleanup removes them.

RLY_MESH_TAG=""
RLY_MESH_N=0
declare -A RLY_MESH_RELAY_PID RLY_MESH_CONTROL_PID

rly_mesh_ip() { echo "198.18.0.$((10 + $1))"; }

rly_mesh_up() {
	local tag=$1 n=$2 i
	RLY_MESH_TAG=$tag
	RLY_MESH_N=$n
	RLY_NS_C="${tag}c"
	RLY_CLIENT_IP=198.18.0.2
	RLY_WORK=$(mktemp -d "/tmp/relay-${tag}.XXXXXX")
	ip netns add "${tag}h" || rly_die "ip netns add ${tag}h"
	RLY_EXTRA_NS+=("${tag}h")
	ip -n "${tag}h" link add br0 type bridge || rly_die "bridge"
	ip -n "${tag}h" link set br0 up
	ip -n "${tag}h" link set lo up
	ip netns add "$RLY_NS_C" || rly_die "ip netns add $RLY_NS_C"
	ip link add "${tag}vc" type veth peer name "${tag}bc" || rly_die "veth"
	ip link set "${tag}vc" netns "$RLY_NS_C"
	ip link set "${tag}bc" netns "${tag}h"
	ip -n "${tag}h" link set "${tag}bc" master br0 up
	ip -n "$RLY_NS_C" link set lo up
	ip -n "$RLY_NS_C" addr add "$RLY_CLIENT_IP/24" dev "${tag}vc"
	ip -n "$RLY_NS_C" link set "${tag}vc" up
	ip netns exec "$RLY_NS_C" ethtool -K "${tag}vc" tx off >/dev/null ||
		rly_die "ethtool -K ${tag}vc tx off failed"
	ip netns exec "$RLY_NS_C" sysctl -qw net.core.rmem_max=8388608 2>/dev/null || true
	for ((i = 1; i <= n; i++)); do
		ip netns add "${tag}r$i" || rly_die "ip netns add ${tag}r$i"
		RLY_EXTRA_NS+=("${tag}r$i")
		RLY_EXTRA_SHM+=("${tag}$i")
		ip link add "${tag}v$i" type veth peer name "${tag}b$i" || rly_die "veth $i"
		ip link set "${tag}v$i" netns "${tag}r$i"
		ip link set "${tag}b$i" netns "${tag}h"
		ip -n "${tag}h" link set "${tag}b$i" master br0 up
		ip -n "${tag}r$i" link set lo up
		ip -n "${tag}r$i" link set "${tag}v$i" up
		"$RLY_BUILD/tools/relay-keys" new "$RLY_WORK/relay$i.id" >/dev/null ||
			rly_die "relay-keys new"
	done
}

rly_mesh_start_relay() {
	local i=$1 cpu=$2 ns="${RLY_MESH_TAG}r$1"
	shift 2
	ip netns exec "$ns" "$RLY_BUILD/relay/relay" --lcores="0@$cpu,1@$cpu" --no-huge -m 256 \
		--no-pci --no-shconf --log-level=error \
		--vdev="net_af_xdp0,iface=${RLY_MESH_TAG}v$i" -- \
		--ip "$(rly_mesh_ip "$i")" --instance "${RLY_MESH_TAG}$i" --idle backoff "$@" \
		>"$RLY_WORK/relay$i.log" 2>&1 &
	RLY_MESH_RELAY_PID[$i]=$!
	RLY_PIDS+=($!)
	rly_wait_for "relay $i to start" 20 grep -q "relay: running" "$RLY_WORK/relay$i.log" || {
		cat "$RLY_WORK/relay$i.log" >&2
		rly_die "relay $i did not start"
	}
}

rly_mesh_start_control() {
	local i=$1
	shift
	"$RLY_BUILD/control/relay-control" --instance "${RLY_MESH_TAG}$i" \
		--secret-file "$RLY_WORK/control$i.secret" --identity "$RLY_WORK/relay$i.id" "$@" \
		>>"$RLY_WORK/control$i.log" 2>&1 &
	RLY_MESH_CONTROL_PID[$i]=$!
	RLY_PIDS+=($!)
	rly_wait_for "relay-control $i to attach" 10 grep -q '"event":"resync_done"' \
		"$RLY_WORK/control$i.log" || {
		cat "$RLY_WORK/control$i.log" >&2
		rly_die "relay-control $i did not attach"
	}
}

rly_mesh_counter() {
	RLY_INSTANCE="${RLY_MESH_TAG}$1" rly_counter "$2"
}

rly_mesh_kill() {
	kill -KILL "${RLY_MESH_RELAY_PID[$1]}" "${RLY_MESH_CONTROL_PID[$1]}" 2>/dev/null || true
	wait "${RLY_MESH_RELAY_PID[$1]}" "${RLY_MESH_CONTROL_PID[$1]}" 2>/dev/null || true
	rm -f "/dev/shm/relay.${RLY_MESH_TAG}$1"
}

rly_mesh_add_clients() {
	local name=$1 ip=$2 tag=$RLY_MESH_TAG
	ip netns add "${tag}${name}" || rly_die "ip netns add ${tag}${name}"
	RLY_EXTRA_NS+=("${tag}${name}")
	ip link add "${tag}v${name}" type veth peer name "${tag}b${name}" || rly_die "veth $name"
	ip link set "${tag}v${name}" netns "${tag}${name}"
	ip link set "${tag}b${name}" netns "${tag}h"
	ip -n "${tag}h" link set "${tag}b${name}" master br0 up
	ip -n "${tag}${name}" link set lo up
	ip -n "${tag}${name}" addr add "$ip/24" dev "${tag}v${name}"
	ip -n "${tag}${name}" link set "${tag}v${name}" up
	ip netns exec "${tag}${name}" ethtool -K "${tag}v${name}" tx off >/dev/null ||
		rly_die "ethtool -K ${tag}v${name} tx off failed"
	ip netns exec "${tag}${name}" sysctl -qw net.core.rmem_max=8388608 2>/dev/null || true
}

# rly_mesh_loss NAME PERMILLE: drop each datagram to and from client namespace NAME with
# probability PERMILLE/1000, independently (Bernoulli, as tc netem loss does). With tc netem where
# the kernel has it (both ends of the link's egress); else with nftables' numgen in the client
# namespace (input and output: this VM's kernel has no CONFIG_NET_SCH_NETEM). 0 removes it.
# Prints which one it used.
rly_mesh_loss() {
	local name=$1 pm=$2 tag=$RLY_MESH_TAG ns="${RLY_MESH_TAG}$1"
	local pct
	pct=$(awk -v p="$pm" 'BEGIN { printf "%.1f%%", p / 10 }')
	tc -n "$ns" qdisc del dev "${tag}v${name}" root 2>/dev/null || true
	tc -n "${tag}h" qdisc del dev "${tag}b${name}" root 2>/dev/null || true
	ip netns exec "$ns" nft delete table inet rlyloss 2>/dev/null || true
	[ "$pm" -gt 0 ] || return 0
	if tc -n "$ns" qdisc add dev "${tag}v${name}" root netem loss "$pct" 2>/dev/null &&
		tc -n "${tag}h" qdisc add dev "${tag}b${name}" root netem loss "$pct" 2>/dev/null; then
		echo "netem loss $pct on both ends of ${tag}v${name}"
		return 0
	fi
	tc -n "$ns" qdisc del dev "${tag}v${name}" root 2>/dev/null || true
	printf '%s\n' "table inet rlyloss {" \
		"chain in { type filter hook input priority 0; udp sport 4747 numgen random mod 1000 < $pm drop; }" \
		"chain out { type filter hook output priority 0; udp dport 4747 numgen random mod 1000 < $pm drop; }" \
		"}" | ip netns exec "$ns" nft -f - || rly_die "nft: cannot install the loss rules"
	echo "nftables numgen loss $pct in and out of namespace $ns (no netem in this kernel)"
}

# rly_mesh_bg_in NAME WHO CMD... : start CMD in client namespace ${TAG}NAME, stdout to
# $RLY_WORK/WHO.out.
rly_mesh_bg_in() {
	local ns="${RLY_MESH_TAG}$1" who=$2
	shift 2
	ip netns exec "$ns" "$@" >"$RLY_WORK/$who.out" 2>"$RLY_WORK/$who.err" &
	RLY_PIDS+=($!)
	eval "RLY_PID_${who//[^A-Za-z0-9_]/_}=$!"
}

# rly_mesh_bg NAME CMD... : like rly_bg (client namespace).
rly_mesh_bg() { rly_bg "$@"; }
