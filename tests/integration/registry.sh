#!/usr/bin/env bash
# Integration: the stream registry end to end with real processes over veth.
#  - identities and grants made with relay-keys; relay-control --registry DIR
#  - a subscriber with the subscribe grant receives every message, signatures verified;
#    one without it, and an anonymous one, are denied at subscribe
#  - an admitted publisher gets through; one without the publish grant is dropped by the
#    dataplane and counted (drop_not_admitted)
#  - a forged message carrying the admitted publisher's key but not its signature passes the
#    relay (it only checks admission) and is rejected by the subscriber (bad_sig)
#  - removing the subscriber's grant revokes its subscription (relay-control reloads the file)
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rrg$$"
K="$RLY_BUILD/tools/relay-keys"
REG="$RLY_WORK/registry"
mkdir -p "$REG"

for who in owner pub_ok pub_no sub_ok sub_no; do
	"$K" new "$RLY_WORK/$who.id" >/dev/null
done
STREAM=$("$K" stream --owner "$RLY_WORK/owner.id" market/eurusd | awk '/^stream /{print $2}')
[ -n "$STREAM" ] || { echo "FAIL: relay-keys stream printed no name" >&2; exit 1; }
"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/pub_ok.id" \
	--perms publish --valid-for 3600 --out "$REG/market.grants" >/dev/null
"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/sub_ok.id" \
	--perms subscribe --valid-for 3600 --out "$REG/subscribers.grants" >/dev/null
"$K" check "$REG" >/dev/null

rly_start_relay
rly_start_control --registry "$REG"
grep -q '"event":"registry_loaded"' "$RLY_WORK/control.log" || { echo "FAIL: registry not loaded" >&2; exit 1; }
admit_streams_is() { [ "$(rly_counter admit_streams)" = "$1" ]; }
rly_wait_for "admission to reach the dataplane" 10 admit_streams_is 1 ||
	{ echo "FAIL: the dataplane never got the admission list" >&2; exit 1; }

fail=0
# Denied: an identity without the grant, and an anonymous subscriber.
for who in sub_no anonymous; do
	id_args=()
	[ "$who" = anonymous ] || id_args=(--identity "$RLY_WORK/$who.id")
	set +e
	rly_in_clients "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
		"${id_args[@]}" --count 1 --subscribe-timeout 3 >/dev/null 2>"$RLY_WORK/$who.err"
	rc=$?
	set -e
	if [ $rc -eq 1 ] && grep -q DENIED "$RLY_WORK/$who.err"; then
		echo "ok: $who was denied at subscribe"
	else
		echo "FAIL: $who: exit $rc, $(cat "$RLY_WORK/$who.err")" >&2
		fail=1
	fi
done

rly_bg sub "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/sub_ok.id" --bind "$RLY_CLIENT_IP:45001" --duration 30 --idle-timeout 3 \
	--verify --json --ready-file "$RLY_WORK/sub.ready"
rly_wait_for "the authorised subscriber" 15 test -e "$RLY_WORK/sub.ready" || { cat "$RLY_WORK/sub.err" >&2; exit 1; }

rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/pub_ok.id" --count 500 --rate 2000 --json --quiet >"$RLY_WORK/pub_ok.out"
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/pub_no.id" --count 300 --rate 2000 --json --quiet >"$RLY_WORK/pub_no.out"

# A forged message: the admitted publisher's key, a valid layout, a signature it never made.
PUB_OK=$("$K" show "$RLY_WORK/pub_ok.id" | awk '/^public /{print $2}')
KEY=$("$K" stream --owner "$RLY_WORK/owner.id" market/eurusd | awk '/^key /{print $2}')
rly_in_clients python3 - "$RLY_RELAY_IP" "$KEY" "$PUB_OK" <<'EOF'
import os, socket, struct, sys, time
relay, key, pub = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
payload = b"forged!!" * 4
hdr = key + struct.pack(">II", 0, 0x0badc0de) + pub + struct.pack(">QQQIHHHH", 1, 0,
      time.time_ns(), 0, 0, 1, len(payload), 64) + b"\0" * 4
msg = hdr + payload + os.urandom(64)
dgram = struct.pack(">HBBHH", 0x5259, 1, 1, 8 + len(msg), 1) + msg
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(dgram, (relay, 4747))
EOF
sleep 0.5

drops=$(rly_counter drop_not_admitted)
[ "$drops" -eq 300 ] || { echo "FAIL: drop_not_admitted = $drops, expected 300" >&2; fail=1; }
echo "ok: the publisher without the publish grant was dropped by the dataplane ($drops messages)"

# Revoke: the subscriber's grant file goes away; relay-control notices and removes it.
rm "$REG/subscribers.grants"
rly_wait_for "the revocation" 10 grep -q '"event":"subscription_revoked"' "$RLY_WORK/control.log" ||
	{ echo "FAIL: no subscription_revoked after the grant was removed" >&2; fail=1; }
[ "$(rly_counter subscribers)" -eq 0 ] || { echo "FAIL: the revoked subscriber is still in the table" >&2; fail=1; }
echo "ok: removing the grant revoked the live subscription"

wait "$RLY_PID_sub" || true
got=$(rly_json "$RLY_WORK/sub.out" msgs)
bad=$(rly_json "$RLY_WORK/sub.out" bad_sig)
gaps=$(rly_json "$RLY_WORK/sub.out" gaps)
[ "$got" = 500 ] || { echo "FAIL: authorised subscriber got $got of 500" >&2; fail=1; }
[ "$bad" = 1 ] || { echo "FAIL: bad_sig = $bad, expected the 1 forged message" >&2; fail=1; }
[ "$gaps" = 0 ] || { echo "FAIL: gaps = $gaps" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: registry: grants enforced at subscribe and at publish, forged message rejected, revocation applied"
exit $fail
