#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write fuzz_worker's hand-made seeds (one per path) into DIR, in its event-script format.

    gen_worker_seeds.py DIR

Events (tests/fuzz/fuzz_worker.c): RAW 0, WRAP 1, DATA 2, NAK 3, SUB 4, CLOCK 5, RECLAIM 6.
"""
import os
import sys

RAW, WRAP, DATA, NAK, SUB, CLOCK, RECLAIM = range(7)


def sub(stream, src, delete=False):
    return bytes([SUB, (0x80 if delete else 0) | (src << 1) | stream])


def data(chain, n, src, steps, plen=40):
    out = bytes([DATA, chain | ((n - 1) << 2) | (src << 4)])
    for s in steps[:n]:
        out += bytes([s, plen])
    return out


def nak_recent(chain, src, ranges):
    """NAK near the chain's highest: ranges of (skip, length) pairs."""
    out = bytes([NAK, chain | (src << 2) | 0x40, len(ranges) - 1])
    for skip, length in ranges:
        out += bytes([skip, length])
    return out


def nak_at(chain, src, start, ranges, unknown=False):
    out = bytes([NAK, chain | (src << 2) | (0x80 if unknown else 0), len(ranges) - 1])
    out += start.to_bytes(2, "big")
    for skip, length in ranges:
        out += bytes([skip, length])
    return out


def stream(chain, src, count):
    out = b""
    for _ in range(count):
        out += data(chain, 4, src, [0, 0, 0, 0])
    return out


SEEDS = {
    "nak_answered_from_the_history": sub(0, 0) + stream(0, 3, 20) + nak_recent(0, 0, [(0, 10)]),
    "nak_from_a_stranger": sub(0, 0) + stream(0, 3, 10) + nak_recent(0, 1, [(0, 10)]),
    "nak_over_holes_and_past_the_highest":
        sub(0, 0) + data(0, 4, 3, [0, 5, 0, 3]) + data(0, 4, 3, [0, 0, 7, 0])
        + nak_at(0, 0, 1, [(0, 60), (2, 5)]),
    "nak_eight_ranges": sub(1, 2) + stream(1, 3, 30)
        + nak_recent(1, 2, [(1, 3), (1, 3), (1, 3), (1, 3), (1, 3), (1, 3), (1, 3), (1, 3)]),
    "nak_evicted_from_a_small_ring": sub(0, 0) + stream(0, 3, 60) + nak_at(0, 0, 1, [(0, 200)]),
    "nak_unknown_chain": sub(0, 0) + stream(0, 3, 5) + nak_recent(0, 0, [(0, 4)], ) + nak_at(0, 0, 1, [(0, 4)], unknown=True),
    "budget_spent_then_refilled": sub(0, 0) + stream(0, 3, 60)
        + nak_at(0, 0, 1, [(0, 250)]) * 4 + bytes([CLOCK, 0xff, 0xff]) + nak_at(0, 0, 1, [(0, 250)]),
    "cut_as_a_slow_consumer": sub(0, 0) + stream(0, 3, 60)
        + (nak_at(0, 0, 1, [(0, 250)]) + bytes([CLOCK, 0x40, 0x00])) * 12,
    "reclaimed_chain_then_nak": sub(0, 0) + stream(0, 3, 10) + bytes([RECLAIM])
        + nak_recent(0, 0, [(0, 8)]) + stream(0, 3, 3) + nak_recent(0, 0, [(0, 8)]),
    "subscribe_unsubscribe_then_nak": sub(0, 0) + stream(0, 3, 5) + sub(0, 0, True)
        + nak_recent(0, 0, [(0, 8)]),
    "publisher_repeats_and_jumps": sub(0, 1) + data(0, 4, 3, [0, 0x80, 0x80, 2])
        + data(0, 4, 3, [0x80, 0, 1, 0]) + nak_at(0, 1, 1, [(0, 20)]),
    "raw_frames": bytes([RAW, 30]) + bytes(range(60)) + bytes([RAW, 0]) + bytes(14),
    "wrap_garbage_and_a_nak_body": sub(0, 0) + bytes([WRAP, 0x03, 110]) + bytes(range(220))
        + bytes([WRAP, 0x01, 20]) + b"RY\x01\x20" + bytes(36),
}

if __name__ == "__main__":
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    for name, seed in SEEDS.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(seed)
    print("gen_worker_seeds: %d seeds in %s" % (len(SEEDS), d))
