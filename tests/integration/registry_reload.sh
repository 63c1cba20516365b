#!/usr/bin/env bash
# Integration (issue 6, faults): the stream registry reloaded again and again while a stream
# runs never drops a subscriber (or a publisher) it still allows.
#
# A subscriber and a publisher granted by the registry; while 4000 messages flow, the grants
# directory is rewritten the ways operators and their tools do it: atomically (a new file renamed
# over the old one, with an unrelated grant added), in place (truncated, then written), touched,
# a file of garbage lines added (refused and logged, the valid grants kept), a new file added and
# removed. relay-control reloads each time (debounced: a file is read once its writer is done), and
# must revoke nobody: the subscriber gets every message, no subscription_revoked is logged, and the
# dataplane drops none of the publisher's messages (drop_not_admitted 0).
set -euo pipefail
source "$(dirname "$0")/../../tools/lib.sh"
rly_require_netns
trap rly_cleanup EXIT
rly_net_up "rrl$$"
K="$RLY_BUILD/tools/relay-keys"
REG="$RLY_WORK/registry"
mkdir -p "$REG"
for who in owner pub sub other; do
	"$K" new "$RLY_WORK/$who.id" >/dev/null
done
STREAM=$("$K" stream --owner "$RLY_WORK/owner.id" market/reload | awk '/^stream /{print $2}')
"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/pub.id" \
	--perms publish --valid-for 3600 --out "$REG/publishers.grants" >/dev/null
"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/sub.id" \
	--perms subscribe --valid-for 3600 --out "$REG/subscribers.grants" >/dev/null
"$K" grant --identity "$RLY_WORK/owner.id" --stream "$STREAM" --grantee "$RLY_WORK/other.id" \
	--perms subscribe --valid-for 3600 --out "$RLY_WORK/other.grants" >/dev/null

rly_start_relay
rly_start_control --registry "$REG"
admit_streams_is() { [ "$(rly_counter admit_streams)" = "$1" ]; }
rly_wait_for "admission to reach the dataplane" 10 admit_streams_is 1 ||
	{ echo "FAIL: the dataplane never got the admission list" >&2; exit 1; }

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}
N=4000
rly_bg sub "$RLY_BUILD/tools/relay-sub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/sub.id" --bind "$RLY_CLIENT_IP:45101" --count "$N" --duration 40 \
	--verify --json --ready-file "$RLY_WORK/sub.ready"
rly_wait_for "the subscriber" 15 test -e "$RLY_WORK/sub.ready" || { cat "$RLY_WORK/sub.err" >&2; exit 1; }
loads0=$(rly_counter ctl_registry_loads)
rly_in_clients "$RLY_BUILD/tools/relay-pub" --relay "$RLY_RELAY_IP" --stream "$STREAM" \
	--identity "$RLY_WORK/pub.id" --count "$N" --rate 500 --json --quiet >"$RLY_WORK/pub.out" &
PUB=$!

S="$REG/subscribers.grants"
for round in 1 2 3 4 5; do
	# Atomic: a complete new file renamed over the old one, an unrelated grant added.
	cat "$S" "$RLY_WORK/other.grants" >"$REG/.tmp.grants"
	mv "$REG/.tmp.grants" "$S"
	sleep 0.3
	# In place: truncated, then written, as `cat > file` or a naive editor does.
	cp "$S" "$RLY_WORK/copy.grants"
	: >"$S"
	sleep 0.02
	cat "$RLY_WORK/copy.grants" >"$S"
	sleep 0.3
	touch "$S" "$REG/publishers.grants"
	chmod 0644 "$S"
	sleep 0.3
	# Garbage next to the grants: refused line by line, nothing else changes.
	printf 'not a grant\n%s\n' "$(head -c 40 /dev/urandom | base64)" >"$REG/junk.grants"
	sleep 0.3
	rm "$REG/junk.grants"
	cp "$RLY_WORK/other.grants" "$REG/extra.grants"
	sleep 0.3
	rm "$REG/extra.grants"
	sleep 0.3
done
wait $PUB
wait "$RLY_PID_sub" || true
loads=$(( $(rly_counter ctl_registry_loads) - loads0 ))
refused=$(rly_counter ctl_registry_refused)
msgs=$(rly_json "$RLY_WORK/sub.out" msgs)
echo "registry: $loads reloads during the stream, $refused records refused; subscriber: $msgs/$N," \
	"lost $(rly_json "$RLY_WORK/sub.out" lost), resubscribes $(rly_json "$RLY_WORK/sub.out" resubscribes)"
[ "$loads" -ge 10 ] || bad "only $loads reloads: the rewrites did not reach relay-control"
[ "$refused" -gt 0 ] || bad "the garbage lines were not refused"
[ "$msgs" = "$N" ] || bad "the subscriber got $msgs of $N"
[ "$(rly_json "$RLY_WORK/sub.out" resubscribes)" = 0 ] || bad "the subscriber had to subscribe again"
grep -q '"event":"subscription_revoked"' "$RLY_WORK/control.log" && bad "a reload revoked the subscriber"
[ "$(rly_counter drop_not_admitted)" = 0 ] || bad "the dataplane dropped $(rly_counter drop_not_admitted) of the publisher's messages"
[ $fail -eq 0 ] && echo "PASS: registry reloads ($loads) while streaming revoked nobody it still allows"
exit $fail
