# SPDX-License-Identifier: Apache-2.0
# Shared by tools/demo.sh and tests/integration/*.sh: a relay on one end of a veth pair inside a
# network namespace, its clients in another, and clean-up of everything on any exit.
#
#   source tools/lib.sh
#   rly_net_up TAG            namespaces ${TAG}r (relay) and ${TAG}c (clients), veth between them
#   rly_start_relay ARGS...   relay on net_af_xdp (net_af_packet with RLY_PMD=af_packet)
#   rly_start_control ARGS... relay-control for the same instance
#   rly_in_clients CMD...     run a command in the client namespace
#   rly_cleanup               kill what was started, delete namespaces, shm and the work dir
#
# Addresses: relay 198.18.0.1 (owned by DPDK; it answers ARP itself), clients 198.18.0.2/24.
# Everything stays inside the namespaces this file creates.

RLY_ROOT=${RLY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RLY_BUILD=${RLY_BUILD:-$RLY_ROOT/build}
RLY_RELAY_IP=198.18.0.1
RLY_CLIENT_IP=198.18.0.2
RLY_PIDS=()
RLY_NS_R=""
RLY_NS_C=""
RLY_INSTANCE=""
RLY_WORK=""
RLY_EXTRA_NS=()  # more namespaces to delete (tools/mesh.sh)
RLY_EXTRA_SHM=() # more relay instances whose shm to remove

rly_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rly_die() { rly_log "error: $*"; exit 1; }

# Exit status 77 tells meson the test was skipped.
rly_require_netns() {
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to create network namespaces" >&2; exit 77; }
	local probe="rlyprobe$$"
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "SKIP: this machine cannot create network namespaces (ip netns add failed)" >&2
		exit 77
	fi
	ip netns del "$probe"
}

rly_net_up() {
	local tag=$1
	RLY_NS_R="${tag}r"
	RLY_NS_C="${tag}c"
	RLY_INSTANCE="${tag}"
	RLY_WORK=$(mktemp -d "/tmp/relay-${tag}.XXXXXX")
	ip netns add "$RLY_NS_R" || rly_die "ip netns add $RLY_NS_R"
	ip netns add "$RLY_NS_C" || rly_die "ip netns add $RLY_NS_C"
	ip link add "${tag}vr" type veth peer name "${tag}vc" || rly_die "ip link add veth"
	ip link set "${tag}vr" netns "$RLY_NS_R"
	ip link set "${tag}vc" netns "$RLY_NS_C"
	ip -n "$RLY_NS_R" link set lo up
	ip -n "$RLY_NS_R" link set "${tag}vr" up
	ip -n "$RLY_NS_C" link set lo up
	ip -n "$RLY_NS_C" addr add "$RLY_CLIENT_IP/24" dev "${tag}vc"
	ip -n "$RLY_NS_C" link set "${tag}vc" up
	# veth offloads the UDP checksum to a NIC that does not exist: frames reach AF_XDP with the
	# checksum unfinished, and the relay rightly drops them (drop_udp_csum). Finish it in software.
	ip netns exec "$RLY_NS_C" ethtool -K "${tag}vc" tx off >/dev/null ||
		rly_die "ethtool -K ${tag}vc tx off failed"
	# Subscribers may ask for 4 MiB receive buffers.
	ip netns exec "$RLY_NS_C" sysctl -qw net.core.rmem_max=8388608 2>/dev/null || true
	RLY_RELAY_IF="${tag}vr"
}

rly_pmd_vdev() {
	case "${RLY_PMD:-af_xdp}" in
	af_xdp) echo "net_af_xdp0,iface=$RLY_RELAY_IF" ;;
	af_packet) echo "net_af_packet0,iface=$RLY_RELAY_IF" ;;
	*) rly_die "RLY_PMD must be af_xdp or af_packet" ;;
	esac
}

# rly_start_relay [relay options...]: backoff idle so it shares this small machine politely.
rly_start_relay() {
	ip netns exec "$RLY_NS_R" "$RLY_BUILD/relay/relay" --lcores=0@0,1@0 --no-huge -m 256 \
		--no-pci --no-shconf --log-level=error --vdev="$(rly_pmd_vdev)" -- \
		--ip "$RLY_RELAY_IP" --instance "$RLY_INSTANCE" --idle backoff "$@" \
		>"$RLY_WORK/relay.log" 2>&1 &
	RLY_RELAY_PID=$!
	RLY_PIDS+=("$RLY_RELAY_PID")
	rly_wait_for "relay to start" 20 rly_relay_running || {
		cat "$RLY_WORK/relay.log" >&2
		rly_die "relay did not start"
	}
}

rly_relay_running() {
	grep -q "relay: running" "$RLY_WORK/relay.log" 2>/dev/null
}

rly_start_control() {
	local before
	before=$(grep -c '"event":"resync_done"' "$RLY_WORK/control.log" 2>/dev/null || true)
	"$RLY_BUILD/control/relay-control" --instance "$RLY_INSTANCE" \
		--secret-file "$RLY_WORK/control.secret" "$@" >>"$RLY_WORK/control.log" 2>&1 &
	RLY_CONTROL_PID=$!
	RLY_PIDS+=("$RLY_CONTROL_PID")
	rly_wait_for "relay-control to attach" 10 rly_resyncs_above "${before:-0}" || {
		cat "$RLY_WORK/control.log" >&2
		rly_die "relay-control did not attach"
	}
}

rly_resyncs_above() {
	[ "$(grep -c '"event":"resync_done"' "$RLY_WORK/control.log" 2>/dev/null)" -gt "$1" ]
}

rly_in_clients() {
	ip netns exec "$RLY_NS_C" "$@"
}

# rly_bg NAME CMD... : start CMD in the client namespace, stdout to $RLY_WORK/NAME.out
rly_bg() {
	local name=$1
	shift
	ip netns exec "$RLY_NS_C" "$@" >"$RLY_WORK/$name.out" 2>"$RLY_WORK/$name.err" &
	RLY_PIDS+=($!)
	eval "RLY_PID_${name//[^A-Za-z0-9_]/_}=$!"
}

# rly_wait_for WHAT SECONDS CMD... : poll CMD every 0.1 s until it succeeds or time runs out.
rly_wait_for() {
	local what=$1 secs=$2
	shift 2
	local i
	for ((i = 0; i < secs * 10; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	rly_log "timed out after ${secs}s waiting for $what"
	return 1
}

# rly_json FILE FIELD[.SUB]: a field of the last JSON line of FILE.
rly_json() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith('{')]
v = json.loads(lines[-1]) if lines else {}
for part in sys.argv[2].split('.'):
    v = v.get(part, '') if isinstance(v, dict) else ''
print(v)
EOF
}

# rly_udp_silence NS PORT SECS: 0 if nothing arrives on PORT for SECS seconds, else 1.
rly_udp_silence() {
	ip netns exec "$1" python3 - "$2" "$3" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.1)
end, n = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    try:
        s.recv(65536)
        n += 1
    except socket.timeout:
        pass
print(n)
sys.exit(0 if n == 0 else 1)
EOF
}

rly_stat() {
	"$RLY_BUILD/tools/relay-stat" --instance "$RLY_INSTANCE" "$@"
}

# A counter's total from relay-stat's JSON.
rly_counter() {
	rly_stat --once --json 2>/dev/null | python3 -c "
import json, sys
d = json.loads(sys.stdin.read().strip().splitlines()[-1])
c = d.get('counters', d)
v = c.get('$1')
print(v.get('total', v.get('value', 0)) if isinstance(v, dict) else (v if v is not None else 0))"
}

rly_cleanup() {
	local p
	for p in "${RLY_PIDS[@]}"; do
		kill -INT "$p" 2>/dev/null || true
	done
	for p in "${RLY_PIDS[@]}"; do
		for _ in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
	done
	RLY_PIDS=()
	[ -n "$RLY_NS_R" ] && ip netns del "$RLY_NS_R" 2>/dev/null
	[ -n "$RLY_NS_C" ] && ip netns del "$RLY_NS_C" 2>/dev/null
	[ -n "$RLY_INSTANCE" ] && rm -f "/dev/shm/relay.$RLY_INSTANCE"
	for p in "${RLY_EXTRA_NS[@]}"; do
		ip netns del "$p" 2>/dev/null
	done
	for p in "${RLY_EXTRA_SHM[@]}"; do
		rm -f "/dev/shm/relay.$p"
	done
	RLY_EXTRA_NS=()
	RLY_EXTRA_SHM=()
	if [ -n "$RLY_WORK" ] && [ -z "${RLY_KEEP_WORK:-}" ]; then
		rm -rf "$RLY_WORK"
	fi
	return 0
}
