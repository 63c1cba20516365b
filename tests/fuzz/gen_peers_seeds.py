#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the hand-made seeds of fuzz_peers (tests/fuzz/fuzz_peers.c) into DIR.

Each seed is an event script in the harness's format: a mode byte (bit 0: 3 relays, else 2;
bits 1-2: degree/degree_max 1/1, 1/2, 2/2, 2/3; bit 3: relays 0 and 1 seed each other; bit 4:
short timings, ping 100 ms, dead 300 ms), then events, each a kind byte and its arguments.
Addresses 0-2 are the relays, 3 the outsider (10.0.0.50:4747, the harness, identity 3), 4 the
outsider's other port, 5 relay 0's address on another port, 6 an address nobody answers, 7 0.0.0.0.
Identities 0-2 are the relays', 3 the outsider's, 4 one nobody holds. Streams 0-1; partitions by
selector 0: 0, 1: 1, 2: the key holders' one. The names say which path each seed reaches.
"""
import os
import sys

(RUN, JUMP, DELIVER, NET, SERVE, FLAGGED, DEDUP, HELLO, LINK, IHAVE, IWANT, DISC, REPLAY, RAW,
 LIFE) = range(15)
K_HELLO, K_CHALLENGE, K_PROOF, K_WELCOME, K_PING, K_PONG, K_BYE = range(1, 8)
OUT = 3


def mode(three=False, degree=3, mutual=False, short=False):
    return bytes([int(three) | degree << 1 | int(mutual) << 3 | int(short) << 4])


def run(steps=64):
    return bytes([RUN, steps - 1])


def runs(n):
    return run() * n


def serve(r, stream=0, part=0, off=False):
    return bytes([SERVE, r, int(off) | stream << 1 | part << 2])


def hello(dst, src, kind, f=0, req=1, extra=b""):
    return bytes([HELLO, dst, src, kind, f, req - 1]) + extra


def link(dst, src, kind, prune=False, f=0, stream=0, part=0, reason=0, req=1, extra=b""):
    sel = int(prune) | kind << 1 | reason << 4
    return bytes([LINK, dst, src, sel, f, stream | part << 1, req - 1]) + extra


def flagged(r, flags, src, stream=0, part=0, pub=0, chain=0, seq=1, lm=0):
    return bytes([FLAGGED, r, flags, src, stream | part << 1, pub, chain, seq, lm])


def dedup(r, slot, highest, stream=0, part=0, pub=0, chain=0, first=None):
    fs = 0 if first is None else 8 | first
    return bytes([DEDUP, r, slot, stream | part << 1, pub, chain << 1, fs,
                  highest >> 8, highest & 255])


def disc(dst, src, kind, f=0, stream=0, part=0, req=1, more=0, at=None, ttl=0x8000 | 200,
         signer=None):
    if signer is not None:
        f |= 0x20
        kind |= signer << 4
    b = bytes([DISC, dst, src, f, kind, stream | part << 1, req - 1])
    if (kind & 3) == 3 and f & 8:
        b += bytes([more])
    if (kind & 3) != 2 and not f & 0x40:
        if not f & 2:
            b += bytes([at if at is not None else src])
        b += bytes([ttl >> 8, ttl & 255])
    return b


def life(r, op):
    return bytes([LIFE, r, op])


# An outsider's handshake with relay 0: HELLO (identity 3), then the PROOF for its CHALLENGE.
OUTSIDER_UP = hello(0, OUT, K_HELLO, f=OUT) + hello(0, OUT, K_PROOF, f=1, extra=b"\x07")

SEEDS = {
    "two_relays_session_up": mode() + run(20),
    "three_relays_link_a_stream": mode(True, 3) + serve(0) + serve(1) + serve(2) + runs(3),
    "degree_one_refuses_a_second_join": mode(True, 0) + serve(0) + serve(1) + serve(2) + runs(3),
    "mutual_seeds_open_at_once": mode(True, 3, mutual=True) + serve(1) + serve(0) + runs(2),
    "duplicate_prunes_an_eager_link": mode(True, 3) + serve(0) + serve(1) + serve(2) + runs(3)
    + flagged(1, 4, 2) + flagged(1, 4, 0) + run(10) + flagged(1, 4, 2) + runs(2),
    "ihave_announces_a_miss_and_grafts": mode(True, 3) + serve(0) + serve(1) + serve(2) + runs(3)
    + flagged(1, 4, 2) + run(5) + dedup(0, 0, 10) + dedup(1, 0, 10) + dedup(2, 0, 10) + run(10)
    + dedup(2, 0, 30, first=1) + run(20),
    "published_by_a_local_publisher": mode(True, 3) + serve(2) + flagged(1, 2, 6) + runs(3),
    "peer_data_without_a_link": mode(True, 3) + serve(1) + serve(2) + runs(2)
    + flagged(1, 2, 0) + flagged(0, 2, 1) + run(10),
    "neighbour_records": mode(True) + flagged(1, 1, 0, lm=2) + flagged(1, 1, 0, lm=4)
    + flagged(1, 1, 6) + run(10),
    "outsider_handshake_and_overlay": mode(False, 3) + serve(0) + OUTSIDER_UP
    + hello(0, OUT, K_PING) + link(0, OUT, 1, f=0) + link(0, OUT, 4, f=0)
    + bytes([IHAVE, 0, OUT, 0, 0, 2, 0, 0, 40, 2, 0, 40]) + run(10)
    + link(0, OUT, 5, prune=True) + bytes([IWANT, 0, OUT, 0, 0, 0, 1, 0, 9, 3])
    + link(0, OUT, 6, prune=True) + hello(0, OUT, K_BYE) + run(5),
    "outsider_proof_bad_signature": mode() + hello(0, OUT, K_HELLO, f=OUT)
    + hello(0, OUT, K_PROOF, f=1 | 0x10, extra=b"\x07\x05"),
    "outsider_proof_for_another_identity": mode() + hello(0, OUT, K_HELLO, f=OUT)
    + hello(0, OUT, K_PROOF, f=1 | 2, extra=bytes([1, 7])),
    "outsider_proof_expired_cookie": mode(short=True) + hello(0, OUT, K_HELLO, f=OUT)
    + bytes([JUMP, 0, 0x40, 0]) + hello(0, OUT, K_PROOF, f=1, extra=b"\x07"),
    "spoofed_welcome_to_a_relays_proof": mode() + bytes([DELIVER, 0]) * 3
    + hello(1, 0, K_WELCOME, f=1 | 2, extra=bytes([OUT, 9])) + run(20),
    "replays_of_welcome_proof_challenge": mode() + run(20) + bytes([REPLAY, 3, 0])
    + bytes([REPLAY, 2, 0]) + bytes([REPLAY, 1, 0]) + bytes([REPLAY, 0, 2, OUT])
    + bytes([REPLAY, 4, 4, 9]) + run(5),
    "wrong_tokens_change_nothing": mode(True, 3) + serve(0) + serve(1) + serve(2) + runs(2)
    + link(1, 2, 6, prune=True, f=1, extra=b"\x03\x01") + hello(1, 2, K_BYE, f=1, extra=b"\x00\x01")
    + link(1, 0, 1, f=1, extra=b"\x00\x80") + run(5),
    "accept_and_refuse_for_a_pending_join": mode(True, 3) + serve(1) + run(30) + serve(2)
    + run(3) + link(1, 2, 2, f=2) + link(2, 1, 3, f=2, reason=1) + run(30),
    "a_crashed_relay_is_dropped_and_comes_back": mode(True, 3) + serve(0) + serve(1) + serve(2)
    + runs(2) + life(2, 0) + runs(3) + life(2, 2) + serve(2) + runs(3),
    "a_relay_that_stops_says_bye": mode(True, 3) + serve(1) + serve(2) + runs(2) + life(2, 1)
    + run(10),
    "control_restart_dumps_orphans": mode(True, 3) + serve(0) + serve(1) + serve(2) + runs(2)
    + life(1, 3) + runs(2) + life(2, 3) + bytes([JUMP, 1, 0x10, 0]) + runs(2),
    "dataplane_detaches_and_attaches": mode(True, 3) + serve(1) + serve(2) + runs(2)
    + life(1, 4) + run(20) + life(1, 5) + runs(2),
    "a_lossy_reordering_network": mode(True, 3, short=True) + serve(0) + serve(1) + serve(2)
    + (bytes([DELIVER, 2, NET, 0, 0, NET, 1, 0, NET, 2, 0, NET, 3, 5, DELIVER, 1]) + run(2)) * 8
    + bytes([NET, 4, 1]) + runs(2),
    "a_long_silence_kills_every_session": mode(True, 3) + serve(1) + serve(2) + runs(2)
    + bytes([JUMP, 1, 0x40, 0]) + runs(2),
    "a_stream_nobody_serves_is_left": mode(True, 3, short=True) + serve(1) + serve(2) + runs(2)
    + serve(2, off=True) + runs(2),
    "discovery_announce_lookup_result": mode(True, 3) + serve(1) + run(10) + OUTSIDER_UP
    + disc(0, OUT, 1, f=2) + disc(0, OUT, 2) + disc(0, OUT, 1, f=4 | 2)
    + disc(0, OUT, 1, at=6) + disc(0, OUT, 1, ttl=0x0100) + disc(1, 0, 3, f=8, at=OUT)
    + run(10),
    "a_result_names_the_outsider_who_then_links": mode(False, 3) + serve(1) + run(10)
    + disc(1, 0, 3, f=8, at=OUT) + run(2) + hello(1, OUT, K_CHALLENGE, f=1, extra=b"\x01\x02")
    + hello(1, OUT, K_WELCOME, f=1, extra=b"\x03") + run(5)
    + link(1, OUT, 2, f=2) + run(10),
    "raw_datagrams": mode() + run(10) + bytes([RAW, 0, 0x83, 100]) + bytes(range(200))
    + bytes([RAW, 1, 0x40, 20]) + bytes(40) + bytes([RAW, 0, 3, 4, 0x52, 0x4c, 1, 0x40, 0, 8, 0, 1]),
    "key_holder_partition_is_never_served": mode(True, 3) + serve(1, part=2) + serve(2, part=2)
    + flagged(1, 2, 6, part=2) + runs(2),
    "short_timings_everything": mode(True, 3, mutual=True, short=True) + serve(0) + serve(1, 1)
    + serve(2) + serve(1) + runs(2) + flagged(0, 4, 1) + dedup(1, 1, 5, first=0) + run(10)
    + life(0, 0) + runs(2) + life(0, 2) + runs(2),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
