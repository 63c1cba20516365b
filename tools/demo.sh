#!/usr/bin/env bash
# The main job: install what is needed, build, and run a small relay network on this machine.
#
#   tools/demo.sh [--relays N] [--subs N] [--rate MSGS_PER_S] [--duration S] [--size BYTES]
#                 [--no-install]
#
# N relays (default 3; DPDK, net_af_xdp on a veth, each in its own network namespace, --no-huge),
# each with a relay-control that has an identity and peers with the others: relay 1 is the seed
# the others know (pinned by its key), and they find each other through it. The clients (relay-sub,
# relay-pub on ordinary kernel UDP sockets) sit in one more namespace on the same bridge.
# market/quotes is published on relay 1 and subscribed on every relay, so it crosses the overlay;
# market/trades is also end-to-end encrypted (its publisher on relay 2 holds the key and gives it to
# the identities its registry lets subscribe; the subscriber is on relay 3, so its key request
# and the sealed key cross the overlay). Prints what each subscriber received, what it lost, and its
# latency percentiles, the overlay each relay built, and relay 1's counters. Everything it creates
# (namespaces, veths, shared memory, files, processes) is removed at the end, also on Ctrl-C.
set -euo pipefail

SUBS=4
RELAYS=3
# Every subscriber verifies every message's Ed25519 signature (about 48 us each, ~21,000 per second
# per core), and three relays share this 2-vCPU box with them: the default rate leaves room.
RATE=2000
DURATION=5
SIZE=64
INSTALL=1
while [ $# -gt 0 ]; do
	case "$1" in
	--subs) SUBS=$2; shift 2 ;;
	--relays) RELAYS=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--no-install) INSTALL=0; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case "$SUBS" in '' | *[!0-9]*) echo "demo: --subs wants a number" >&2; exit 2 ;; esac
[ "$SUBS" -ge 1 ] && [ "$SUBS" -le 64 ] || { echo "demo: --subs must be 1..64" >&2; exit 2; }
case "$RELAYS" in '' | *[!0-9]*) echo "demo: --relays wants a number" >&2; exit 2 ;; esac
[ "$RELAYS" -ge 2 ] && [ "$RELAYS" -le 5 ] || { echo "demo: --relays must be 2..5" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root: it creates network namespaces and runs DPDK" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
step() { printf '\n== %s\n' "$*"; }

if [ $INSTALL -eq 1 ]; then
	step "installing dependencies (Debian packages)"
	tools/install-deps.sh
fi
step "building"
tools/build.sh

source tools/lib.sh
source tools/mesh.sh
# A demo killed with SIGKILL cannot clean up; the next one removes what it left.
for ns in $(ip netns list 2>/dev/null | awk '/^rlydemo/{print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
trap 'rly_cleanup; echo; echo "demo: cleaned up (namespaces, veths, bridge, /dev/shm/relay.rlydemo*, work files)"' EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

step "network: $RELAYS relay namespaces and a client namespace on one bridge (198.18.0.0/24; relay i is 198.18.0.(10+i), clients 198.18.0.2)"
rly_mesh_up rlydemo "$RELAYS"
step "relays: each 2 lcores on one CPU (manager + 1 worker), --no-huge, back-off idle so they share this machine"
for r in $(seq 1 "$RELAYS"); do
	rly_mesh_start_relay "$r" $(((r - 1) % 2))
	sed -n 's/^relay: /  relay '"$r"': /p' "$RLY_WORK/relay$r.log" | head -2
done
SEED_KEY=$("$RLY_BUILD/tools/relay-keys" show "$RLY_WORK/relay1.id" | awk '/^public /{print $2}')
step "relay-control: subscriptions, plus peering with an identity each; relay 1 is the seed (pinned to ${SEED_KEY:0:16}...)"
rly_mesh_start_control 1
for r in $(seq 2 "$RELAYS"); do
	rly_mesh_start_control "$r" --seed "$(rly_mesh_ip 1)@$SEED_KEY"
done
RLY_RELAY_IP=$(rly_mesh_ip 1)
TRADES_RELAY=2                     # the encrypted stream's publisher (its key holder) ...
TRADES_SUB_RELAY=$((RELAYS > 2 ? 3 : 1)) # ... and its subscriber: the key crosses the overlay

# Two streams: most subscribers on the quotes, one on the trades. The trades are end-to-end
# encrypted: identities for their owner, publisher and subscriber, and the owner's signed grant
# that lets the subscriber have the key.
COUNT_Q=$((RATE * DURATION))
COUNT_T=$((RATE / 4 * DURATION))
step "identities and the trades' registry (relay-keys): owner, publisher, subscriber; a signed subscribe grant"
KEYS="$RLY_BUILD/tools/relay-keys"
mkdir -p "$RLY_WORK/registry"
for who in owner trades-pub trades-sub; do
	"$KEYS" new "$RLY_WORK/$who.id" >/dev/null
done
TRADES=$("$KEYS" stream --owner "$RLY_WORK/owner.id" market/trades | awk '/^stream /{print $2}')
"$KEYS" grant --identity "$RLY_WORK/owner.id" --stream "$TRADES" --grantee "$RLY_WORK/trades-sub.id" \
	--perms subscribe --valid-for 3600 --out "$RLY_WORK/registry/trades.grants" | sed 's/^/  /'
echo "  market/trades is stream $TRADES"
step "subscribers: $SUBS relay-sub processes, market/quotes spread over the relays"
for i in $(seq 1 "$SUBS"); do
	stream=market/quotes
	label=market/quotes
	count=$COUNT_Q
	who=()
	relay=$(((i - 1) % RELAYS + 1))
	if [ "$i" -eq "$SUBS" ] && [ "$SUBS" -gt 1 ]; then
		stream=$TRADES
		label="market/trades"
		count=$COUNT_T
		who=(--identity "$RLY_WORK/trades-sub.id")
		relay=$TRADES_SUB_RELAY
	fi
	echo "$label" >"$RLY_WORK/sub$i.stream"
	echo "$count" >"$RLY_WORK/sub$i.expect"
	echo "$relay" >"$RLY_WORK/sub$i.relay"
	rly_bg "sub$i" "$RLY_BUILD/tools/relay-sub" --relay "$(rly_mesh_ip "$relay")" --stream "$stream" \
		"${who[@]}" --bind "$RLY_CLIENT_IP:$((40000 + i))" --count "$count" \
		--duration $((DURATION + 10)) --idle-timeout 3 --verify --json \
		--ready-file "$RLY_WORK/sub$i.ready"
done
for i in $(seq 1 "$SUBS"); do
	rly_wait_for "sub$i to subscribe" 15 test -e "$RLY_WORK/sub$i.ready" || {
		cat "$RLY_WORK/sub$i.err" >&2
		exit 1
	}
done
echo "  all $SUBS subscribed"
overlay_up() {
	local r
	for r in $(seq 1 "$RELAYS"); do
		[ "$(rly_mesh_counter "$r" ctl_links_eager)" -ge 1 ] || return 1
	done
}
rly_wait_for "the relays to link into market/quotes' overlay" 20 overlay_up || true
for r in $(seq 1 "$RELAYS"); do
	echo "  relay $r: $(rly_mesh_counter "$r" ctl_peers) peer sessions, $(rly_mesh_counter "$r" ctl_links_eager) eager overlay links"
done

step "publishers: market/quotes on relay 1 at $RATE msgs/s and market/trades (encrypted) on relay $TRADES_RELAY at $((RATE / 4)) msgs/s for ${DURATION}s, ${SIZE}-byte payloads, every message signed (subscribers verify)"
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream market/quotes \
	--rate "$RATE" --count "$COUNT_Q" --size "$SIZE" --json --quiet >"$RLY_WORK/pubq.out" &
PUBQ=$!
RLY_PIDS+=("$PUBQ")
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$(rly_mesh_ip $TRADES_RELAY)" --stream "$TRADES" \
	--identity "$RLY_WORK/trades-pub.id" --encrypt --registry "$RLY_WORK/registry" \
	--rate $((RATE / 4)) --count "$COUNT_T" --size "$SIZE" --json --quiet \
	>"$RLY_WORK/pubt.out" 2>"$RLY_WORK/pubt.err" &
PUBT=$!
RLY_PIDS+=("$PUBT")
wait $PUBQ $PUBT
for i in $(seq 1 "$SUBS"); do
	wait "$(eval echo "\$RLY_PID_sub$i")" || true
done

step "results"
python3 - "$RLY_WORK" "$SUBS" <<'EOF'
import json, os, sys
work, subs = sys.argv[1], int(sys.argv[2])
def last_json(path):
    try:
        lines = [l for l in open(path) if l.lstrip().startswith('{')]
        return json.loads(lines[-1]) if lines else None
    except OSError:
        return None
print("  %-6s %-5s %-14s %17s %6s %6s %5s %8s %6s %7s %9s %9s %9s" % (
    "sub", "relay", "stream", "received/expected", "before", "lost", "gaps", "repaired", "stale",
    "undecr", "p50 us", "p99 us", "max us"))
import re
def first_seq(path):
    """The lowest first sequence of the chains relay-sub saw ("chain X: seq a..b")."""
    seqs = [int(m.group(1)) for m in re.finditer(r"chain [0-9a-f]+: seq (\d+)\.\.", open(path).read())]
    return min(seqs) if seqs else 1
joinloss = 0
prejoin = 0
bad = 0
for i in range(1, subs + 1):
    d = last_json(os.path.join(work, "sub%d.out" % i))
    stream = open(os.path.join(work, "sub%d.stream" % i)).read().strip()
    expect = int(open(os.path.join(work, "sub%d.expect" % i)).read())
    if not d:
        print("  sub%-3d %-14s no result (see %s/sub%d.err)" % (i, stream, work, i))
        bad += 1
        continue
    lat = d.get("lat_us", {})
    undecr = d.get("undecryptable", 0)
    # Published before the stream's overlay reached the publisher's relay: never sent on.
    # (relay-sub shows the chain from its first readable message: the undecryptable ones, which
    # come first, are counted apart)
    before = max(0, first_seq(os.path.join(work, "sub%d.out" % i)) - 1 - undecr)
    lost = expect - d["msgs"] - undecr - before
    joinloss += undecr
    prejoin += before
    relay = open(os.path.join(work, "sub%d.relay" % i)).read().strip()
    bad += (lost != 0 or d.get("missing", 0) != d.get("repaired", 0)
            or d.get("verify_failures", 0) != 0 or d.get("undecryptable_late", 0) != 0)
    print("  sub%-3d %-5s %-14s %8d/%-8d %6d %6d %5d %8d %6d %7d %9.1f %9.1f %9.1f" % (
        i, relay, stream, d["msgs"], expect, before, lost, d["gaps"], d.get("repaired", 0),
        d["stale"], undecr, lat.get("p50", 0), lat.get("p99", 0), lat.get("max", 0)))
for name in ("pubq", "pubt"):
    d = last_json(os.path.join(work, name + ".out"))
    if d:
        print("  publisher %-14s sent %d messages in %d datagrams at %.0f msgs/s" % (
            "market/quotes" if name == "pubq" else "market/trades", d["msgs"], d["dgrams"],
            d["rate_msgs_s"]))
        if d.get("encrypted"):
            print("    encrypted: key %d.%d, %d key requests, %d granted, %d denied" % (
                d["key_id"] >> 16, d["key_id"] & 0xffff, d["key_requests"], d["keys_granted"],
                d["keys_denied"]))
if joinloss:
    print("  undecr: encrypted messages sent before the subscriber's first key request; its")
    print("  request makes the publisher rotate, so nobody reads what came before they asked")
    print("  (docs/encryption.md; relay-pub --key-history gives them the earlier steps)")
print("  latency: publisher's stamp to the subscriber's receive, same clock, through kernel UDP,")
print("  veth, AF_XDP and every relay on the way, on a 2-vCPU VM shared by every process of this")
print("  demo (relays idle by sleeping: most of a hop's latency is a worker waking up).")
print("  repaired: lost on the way and sent again from a relay's history (a subscriber's NAK, or a")
print("  peer's IWANT), delivered in order; stale: copies the subscriber had already and dropped.")
if prejoin:
    print("  before: published before the publisher's relay, which had no subscriber of that stream,")
    print("  saw its first message and linked into the stream's overlay (docs/overlay.md, Roles).")
print("  %s" % ("every subscriber got every message exactly once" if bad == 0 else
                "SOME SUBSCRIBERS LOST MESSAGES (see above)"))
EOF

step "the overlay: what each relay did for market/quotes"
printf '  %-6s %9s %6s %5s %8s %11s %10s %10s %7s %7s\n' relay sessions eager lazy "msgs in" "from peers" "to peers" "dups drop" prunes grafts
for r in $(seq 1 "$RELAYS"); do
	printf '  %-6s %9s %6s %5s %8s %11s %10s %10s %7s %7s\n' "$r" \
		"$(rly_mesh_counter "$r" ctl_peers)" "$(rly_mesh_counter "$r" ctl_links_eager)" \
		"$(rly_mesh_counter "$r" ctl_links_lazy)" "$(rly_mesh_counter "$r" rx_msgs)" \
		"$(rly_mesh_counter "$r" peer_rx_msgs)" "$(rly_mesh_counter "$r" peer_deliveries)" \
		"$(rly_mesh_counter "$r" dedup_duplicates)" "$(rly_mesh_counter "$r" ctl_prunes)" \
		"$(rly_mesh_counter "$r" ctl_grafts)"
done
echo "  (docs/overlay.md: links start eager; a duplicate prunes a link to lazy, a hole grafts it back)"

step "relay 1's counters (relay-stat)"
RLY_INSTANCE=rlydemo1 rly_stat --once | grep -vE '^\S+\s+0\s' | sed 's/^/  /'
