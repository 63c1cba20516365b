#!/usr/bin/env bash
# Integration: revocation by rekey, through a relay that enforces nothing (no registry): the
# relay goes on forwarding the ciphertext to everyone, so only the cryptography keeps a revoked
# subscriber out.
#  - subscribers A and B, both allowed by the publisher's registry, decrypt the stream
#  - B's grant is removed from the registry while the publisher runs; the publisher's client
#    notices, rekeys (a new random generation), and refuses B the new key (signed DENIED)
#  - A asks for the new generation and decrypts everything after its first key (the rekey costs
#    it nothing); B receives every message after the rekey and can decrypt none of them
#    (undecryptable), without a gap or a corrupt payload. Both lose the message(s) from before
#    their first key request, by design (the rotate on join, docs/encryption.md section 3)
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
trap 'echo "FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR
rly_net_up "rrk$$"
K="$RLY_BUILD/tools/relay-keys"
REG="$RLY_WORK/registry"
mkdir -p "$REG"
CANARY="REKEY-CANARY-$$"
N=3000
RATE=500

for who in owner pub sub_a sub_b; do
	"$K" new "$RLY_WORK/$who.id" >/dev/null
done
STREAM=$("$K" stream --owner "$RLY_WORK/owner.id" feeds/rekey | awk '/^stream /{print $2}')
grant() { # grant WHO PERMS FILE
	"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/$1.id" \
		--perms "$2" --valid-for 3600 --out "$3" >/dev/null
}
grant pub publish "$REG/feed.grants"
grant sub_a subscribe "$REG/feed.grants"
grant sub_b subscribe "$REG/feed.grants"

rly_start_relay
rly_start_control # no --registry: this relay lets anyone subscribe and forwards everything

for s in a b; do
	rly_bg "sub_$s" "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
		--identity "$RLY_WORK/sub_$s.id" --bind "$RLY_CLIENT_IP:4700$([ $s = a ] && echo 1 || echo 2)" \
		--duration 60 --idle-timeout 4 --verify --canary "$CANARY" --json \
		--ready-file "$RLY_WORK/sub_$s.ready"
done
rly_wait_for "the subscribers" 15 test -e "$RLY_WORK/sub_a.ready" -a -e "$RLY_WORK/sub_b.ready" ||
	{ cat "$RLY_WORK/sub_a.err" "$RLY_WORK/sub_b.err" >&2; exit 1; }

rly_bg pub "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/pub.id" --encrypt --registry "$REG" --count "$N" --rate "$RATE" \
	--canary "$CANARY" --json --quiet

# A third of the way in, revoke B: the registry file is replaced by one without its grant.
sleep $((N / RATE / 3))
grant pub publish "$RLY_WORK/new.grants"
grant sub_a subscribe "$RLY_WORK/new.grants"
mv "$RLY_WORK/new.grants" "$REG/feed.grants"
echo "revoked B at $(date +%T.%N | cut -c1-12)"

fail=0
wait "$RLY_PID_pub" || { echo "FAIL: relay-pub: $(cat "$RLY_WORK/pub.err")" >&2; exit 1; }
wait "$RLY_PID_sub_a" || true
wait "$RLY_PID_sub_b" || true
sed -n 's/^/  pub: /p' "$RLY_WORK/pub.err" | grep -i "rekey\|denied" | head -5 || true

rekeys=$(rly_json "$RLY_WORK/pub.out" rekeys)
denied=$(rly_json "$RLY_WORK/pub.out" keys_denied)
for s in a b; do
	eval "got_$s=\$(rly_json \"\$RLY_WORK/sub_$s.out\" msgs)"
	eval "und_$s=\$(rly_json \"\$RLY_WORK/sub_$s.out\" undecryptable)"
	eval "late_$s=\$(rly_json \"\$RLY_WORK/sub_$s.out\" undecryptable_late)"
	eval "bad_$s=\$(rly_json \"\$RLY_WORK/sub_$s.out\" verify_failures)"
	eval "gaps_$s=\$(rly_json \"\$RLY_WORK/sub_$s.out\" missing)"
done
echo "publisher: $rekeys rekeys, $denied keys denied"
echo "A: $got_a decrypted, $und_a undecryptable ($late_a after its first key), $bad_a corrupt, $gaps_a missing"
echo "B: $got_b decrypted, $und_b undecryptable ($late_b after its first key), $bad_b corrupt, $gaps_b missing"
[ "$rekeys" -ge 1 ] || { echo "FAIL: the publisher did not rekey after the revocation" >&2; fail=1; }
[ "$denied" -ge 1 ] || { echo "FAIL: the publisher denied no key request" >&2; fail=1; }
[ $((got_a + und_a)) = "$N" ] && [ "$late_a" = 0 ] ||
	{ echo "FAIL: A should decrypt every message after its first key" >&2; fail=1; }
[ "$bad_a" = 0 ] && [ "$bad_b" = 0 ] || { echo "FAIL: corrupt payloads" >&2; fail=1; }
[ "$gaps_b" = 0 ] || { echo "FAIL: B lost messages in transit: the test needs it to receive them all" >&2; fail=1; }
[ "$got_b" -gt 0 ] || { echo "FAIL: B decrypted nothing even before its revocation" >&2; fail=1; }
[ "$late_b" -gt $((N / 3)) ] || { echo "FAIL: B could read what was published after the rekey" >&2; fail=1; }
[ $((got_b + und_b)) = "$N" ] || { echo "FAIL: B received $((got_b + und_b)) of $N" >&2; fail=1; }
[ $fail -eq 0 ] && echo "PASS: e2e_rekey: after the rekey the revoked subscriber received every message and could decrypt none"
exit $fail
