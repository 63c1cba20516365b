#!/usr/bin/env bash
# Integration: an end-to-end encrypted stream through a relay that keeps a stream registry.
#  - the publisher (relay-pub --encrypt) registers as its stream's key holder; a subscriber the
#    registry allows asks for the key through relay-control and decrypts every message
#    (relay-sub --verify checks each payload byte); one it does not allow is refused at subscribe
#  - the subscriber joins before the publisher starts; its first key request makes the publisher
#    rotate, so the messages under the step before (at least the one that made it ask) stay
#    unreadable to it, by design (docs/encryption.md section 3): from then on it reads everything
#  - the publisher rotates its key every 300 ms: the subscriber follows the ratchet alone, with
#    no new key request
#  - nothing of the plaintext crosses the veth (tshark capture) or sits in the memory of the relay
#    or of relay-control; positive controls: a plain stream's canary IS in the capture and in the
#    relay's memory, and the encrypted stream's canary IS in the decrypting subscriber's memory,
#    so the searches would have found it
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
command -v tshark >/dev/null || { echo "SKIP: tshark is not installed (tools/install-deps.sh)" >&2; exit 77; }
trap rly_cleanup EXIT
trap 'echo "FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR
TAG="rre$$"
rly_net_up "$TAG"
K="$RLY_BUILD/tools/relay-keys"
REG="$RLY_WORK/registry"
mkdir -p "$REG"
SECRET_CANARY="SECRET-CANARY-$$-$RANDOM"
PLAIN_CANARY="PLAIN-CANARY-$$-$RANDOM"
N=1500
N_PLAIN=200

for who in owner pub sub_ok sub_no; do
	"$K" new "$RLY_WORK/$who.id" >/dev/null
done
SECRET=$("$K" stream --owner "$RLY_WORK/owner.id" feeds/secret | awk '/^stream /{print $2}')
PLAIN=$("$K" stream --owner "$RLY_WORK/owner.id" feeds/plain | awk '/^stream /{print $2}')
for s in "$SECRET" "$PLAIN"; do
	"$K" grant --identity "$RLY_WORK/owner.id" --stream "$s" --grantee "$RLY_WORK/pub.id" \
		--perms publish --valid-for 3600 --out "$REG/feeds.grants" >/dev/null
	"$K" grant --identity "$RLY_WORK/owner.id" --stream "$s" --grantee "$RLY_WORK/sub_ok.id" \
		--perms subscribe --valid-for 3600 --out "$REG/feeds.grants" >/dev/null
done

rly_start_relay
rly_start_control --registry "$REG"

# Capture everything that crosses the client end of the veth, both directions.
ip netns exec "$RLY_NS_C" tshark -i "${TAG}vc" -w "$RLY_WORK/capture.pcapng" -q \
	>"$RLY_WORK/tshark.log" 2>&1 &
TSHARK_PID=$!
RLY_PIDS+=("$TSHARK_PID")
rly_wait_for "tshark to start capturing" 15 grep -q "Capturing on" "$RLY_WORK/tshark.log" ||
	{ cat "$RLY_WORK/tshark.log" >&2; exit 1; }

fail=0
rc=0
rly_in_clients "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$SECRET" \
	--identity "$RLY_WORK/sub_no.id" --count 1 --subscribe-timeout 3 >/dev/null \
	2>"$RLY_WORK/sub_no.err" || rc=$?
if [ $rc -eq 1 ] && grep -q DENIED "$RLY_WORK/sub_no.err"; then
	echo "ok: a subscriber the registry does not allow was refused at subscribe"
else
	echo "FAIL: unauthorised subscriber: exit $rc, $(cat "$RLY_WORK/sub_no.err")" >&2
	fail=1
fi

rly_bg sub "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$SECRET" \
	--identity "$RLY_WORK/sub_ok.id" --bind "$RLY_CLIENT_IP:46001" --duration 60 --idle-timeout 6 \
	--verify --canary "$SECRET_CANARY" --json --ready-file "$RLY_WORK/sub.ready"
rly_bg plainsub "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$PLAIN" \
	--identity "$RLY_WORK/sub_ok.id" --bind "$RLY_CLIENT_IP:46002" --duration 60 --idle-timeout 6 \
	--verify --canary "$PLAIN_CANARY" --json --ready-file "$RLY_WORK/plainsub.ready"
rly_wait_for "the subscribers" 15 test -e "$RLY_WORK/sub.ready" -a -e "$RLY_WORK/plainsub.ready" ||
	{ cat "$RLY_WORK/sub.err" "$RLY_WORK/plainsub.err" >&2; exit 1; }

rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$PLAIN" \
	--identity "$RLY_WORK/pub.id" --count "$N_PLAIN" --rate 1000 --canary "$PLAIN_CANARY" \
	--json --quiet >"$RLY_WORK/plainpub.out" 2>"$RLY_WORK/plainpub.err" ||
	{ echo "FAIL: plain relay-pub: $(cat "$RLY_WORK/plainpub.err")" >&2; exit 1; }
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$SECRET" \
	--identity "$RLY_WORK/pub.id" --encrypt --registry "$REG" --rotate-every-ms 300 \
	--count "$N" --rate 1000 --canary "$SECRET_CANARY" --json --quiet \
	>"$RLY_WORK/pub.out" 2>"$RLY_WORK/pub.err" ||
	{ echo "FAIL: encrypted relay-pub: $(cat "$RLY_WORK/pub.err")" >&2; exit 1; }

# The subscribers are still running (idle timeout): look into the memory of everyone.
scan() { python3 "$RLY_ROOT/tests/integration/memscan.py" "$1" "$2" | awk '{print $2}'; }
# The subscriber first: it leaves after its idle timeout, and the relay's and relay-control's
# scans take seconds (they map the relay's shared memory, its message history included).
SUB_PID=$(pgrep -f -- "--canary $SECRET_CANARY" | head -1)
sub_secret=$(scan "$SECRET_CANARY" "$SUB_PID")
relay_secret=$(scan "$SECRET_CANARY" "$RLY_RELAY_PID")
control_secret=$(scan "$SECRET_CANARY" "$RLY_CONTROL_PID")
relay_plain=$(scan "$PLAIN_CANARY" "$RLY_RELAY_PID")
echo "memory: relay holds the encrypted stream's canary $relay_secret times, relay-control" \
	"$control_secret times; the relay holds the plain stream's canary $relay_plain times; the" \
	"decrypting subscriber holds the secret canary $sub_secret times"
[ "$relay_secret" = 0 ] || { echo "FAIL: plaintext of the encrypted stream in the relay's memory" >&2; fail=1; }
[ "$control_secret" = 0 ] || { echo "FAIL: plaintext of the encrypted stream in relay-control's memory" >&2; fail=1; }
[ "$relay_plain" -gt 0 ] || { echo "FAIL: positive control: the scan did not find the plain stream's canary in the relay" >&2; fail=1; }
[ "$sub_secret" -gt 0 ] || { echo "FAIL: positive control: the scan did not find the decrypted canary in the subscriber" >&2; fail=1; }

wait "$RLY_PID_sub" || true
wait "$RLY_PID_plainsub" || true
kill -INT "$TSHARK_PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$TSHARK_PID" 2>/dev/null || break; sleep 0.1; done

frames=$(tshark -r "$RLY_WORK/capture.pcapng" -Y "udp.port == 4747" -T fields -e frame.number 2>/dev/null | wc -l)
cap_secret=$(python3 -c "import sys; print(open(sys.argv[1],'rb').read().count(sys.argv[2].encode()))" \
	"$RLY_WORK/capture.pcapng" "$SECRET_CANARY")
cap_plain=$(python3 -c "import sys; print(open(sys.argv[1],'rb').read().count(sys.argv[2].encode()))" \
	"$RLY_WORK/capture.pcapng" "$PLAIN_CANARY")
key_frames=$(tshark -r "$RLY_WORK/capture.pcapng" -Y "udp.port == 4747 && udp.length == 272" \
	-T fields -e frame.number 2>/dev/null | wc -l)
echo "capture: $frames relay frames ($key_frames of key-message size), the secret canary" \
	"$cap_secret times, the plain canary $cap_plain times"
[ "$frames" -ge $((2 * N)) ] || { echo "FAIL: the capture missed traffic ($frames frames)" >&2; fail=1; }
[ "$cap_secret" = 0 ] || { echo "FAIL: plaintext of the encrypted stream crossed the veth" >&2; fail=1; }
[ "$cap_plain" -ge "$N_PLAIN" ] || { echo "FAIL: positive control: plain canary seen $cap_plain times" >&2; fail=1; }
[ "$key_frames" -ge 2 ] || { echo "FAIL: no KEY_REQUEST/KEY_RESPONSE crossed the veth" >&2; fail=1; }

got=$(rly_json "$RLY_WORK/sub.out" msgs)
corrupt=$(rly_json "$RLY_WORK/sub.out" verify_failures)
undecryptable=$(rly_json "$RLY_WORK/sub.out" undecryptable)
late=$(rly_json "$RLY_WORK/sub.out" undecryptable_late)
key_requests=$(rly_json "$RLY_WORK/sub.out" key_requests)
rotations=$(rly_json "$RLY_WORK/pub.out" rotations)
echo "subscriber: $got of $N decrypted, $corrupt corrupt, $undecryptable undecryptable" \
	"($late after its first decrypted message), $key_requests key requests;" \
	"publisher: $rotations rotations"
[ $((got + undecryptable)) = "$N" ] || { echo "FAIL: the authorised subscriber received $((got + undecryptable)) of $N" >&2; fail=1; }
[ "$corrupt" = 0 ] || { echo "FAIL: $corrupt corrupt payloads" >&2; fail=1; }
[ "$undecryptable" -ge 1 ] || { echo "FAIL: the subscriber read the message sent before its key request: no rotate on join" >&2; fail=1; }
[ "$late" = 0 ] || { echo "FAIL: $late messages undecryptable after the subscriber had its key" >&2; fail=1; }
[ "$rotations" -ge 3 ] || { echo "FAIL: the publisher rotated only $rotations times" >&2; fail=1; }
[ "$key_requests" -ge 1 ] && [ "$key_requests" -le 2 ] ||
	{ echo "FAIL: $key_requests key requests: rotation should not need new ones" >&2; fail=1; }
[ "$(rly_counter ctl_key_responses)" -ge 1 ] || { echo "FAIL: relay-control forwarded no KEY_RESPONSE" >&2; fail=1; }
grep -q '"event":"key_holder_added"' "$RLY_WORK/control.log" ||
	{ echo "FAIL: relay-control logged no key_holder_added" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: e2e: encrypted stream decrypted by the authorised subscriber only; no plaintext on the wire or in the relay"
exit $fail
