#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the hand-made seeds of fuzz_client (tests/fuzz/fuzz_client.c) into DIR.

Each seed is an event script in the harness's format: a mode byte (bit 0 no_verify, bit 1
anonymous, bit 2 auto re-subscribe), then events, each a kind byte and its arguments. The names
say which path each seed reaches first; the fuzzer takes it from there.
"""
import os
import struct
import sys

RAW, DATA, KEY_RESP, START, CHALLENGE, ACK, UNSUB, CLOCK, SUBSCRIBE, BURST = range(10)


def u16(v):
    return struct.pack(">H", v)


def msg(seq, chain=1, back=1, who=0, payload=b"hello", enc=None, tamper=None, opts=0,
        ctype=1, ttl=0):
    """who: bit 0 publisher 0/1, bits 1-2: 0 signed, 2 forged, 3 unsigned.
    enc: (gen_sel, step) to encrypt (gen = 1 + gen_sel % 3); opts adds 2 foreign stream,
    4 foreign partition, 8 wrong key, 16 tamper."""
    o = opts | (1 if enc else 0) | (16 if tamper is not None else 0)
    b = bytes([who, o, len(payload)]) + u16(seq - 1) + bytes([back - 1, chain - 1, ctype])
    b += payload
    if enc:
        b += bytes([enc[0]]) + u16(enc[1])
    if tamper is not None:
        b += bytes([tamper])
    return b + bytes([ttl])


def burst(count, seq=1, chain=1, who=0, enc=None, per_dgram=12):
    """count signed messages of one chain in a row, per_dgram to a datagram."""
    sel = who | (2 if enc else 0) | (chain - 1) << 2 | (per_dgram - 1) << 4
    c = count - 1 if count <= 32 else 224 + (count - 257) // 2
    assert count <= 32 or (257 <= count <= 319 and count % 2 == 1)
    b = bytes([BURST, sel, c]) + u16(seq - 1)
    return b + (bytes([enc[0]]) + u16(enc[1]) if enc else b"")


def data(*msgs):
    return bytes([DATA, len(msgs) - 1]) + b"".join(msgs)


def subscribe(lease=3000, auto=0):
    return bytes([SUBSCRIBE, auto]) + u16(lease - 300)


def key_resp(flags=0, status=0, extra=b""):
    """status: 0/1 OK, 2 DENIED, 3 UNAVAILABLE, 4 RATE_LIMITED (+16*k: the k-th last request)."""
    return bytes([KEY_RESP, flags, status]) + extra


def clock_ms(ms):
    return bytes([CLOCK, 0]) + u16(min(ms * 16, 0xFFFF))


def clock_s(s):
    return bytes([CLOCK, 1]) + u16(min(s * 256, 0xFFFF))


def ack(kind, status_ok=True, status=0, lease=3000, hb=100, sel=0):
    """kind 0 SUB_ACK, 1 HEARTBEAT_ACK, 2 UNSUB_ACK."""
    st = 1 if status_ok else status << 1
    return bytes([ACK, sel | (kind << 3), st]) + u16(lease) + bytes([hb // 10])


SEEDS = {
    "plain_in_order": bytes([0]) + subscribe() + data(msg(1), msg(2), msg(3, payload=b"x" * 60)),
    "plain_gap_and_stale": bytes([0]) + data(msg(1), msg(5)) + data(msg(3), msg(5))
    + data(msg(9, back=2, chain=2, who=1)),
    "forged_unsigned_tampered": bytes([0]) + data(msg(1, who=4), msg(2, who=6), msg(3, tamper=2))
    + data(msg(4, opts=2), msg(5, opts=4)),
    "no_verify_unsigned": bytes([1]) + data(msg(1, who=6), msg(2, who=4), msg(3, tamper=0)),
    "encrypted_key_granted": bytes([0]) + subscribe() + data(msg(1, enc=(0, 0)))
    + data(msg(2, enc=(0, 0)), msg(3, enc=(0, 0)))
    + key_resp() + data(msg(4, enc=(0, 5))),
    "encrypted_ratchet_and_rekey": bytes([0]) + subscribe() + data(msg(1, enc=(0, 3)))
    + key_resp() + data(msg(2, enc=(0, 4)), msg(3, enc=(0, 40)), msg(4, enc=(0, 2)))
    + data(msg(5, enc=(1, 0))) + key_resp() + data(msg(6, enc=(1, 5000)))
    + key_resp(),
    "encrypted_denied": bytes([0]) + subscribe() + data(msg(1, enc=(0, 0)), msg(2, enc=(0, 0)))
    + key_resp(status=2) + data(msg(3, enc=(0, 0))) + clock_s(6) + data(msg(4, enc=(0, 0))),
    "encrypted_unsigned_answers_ignored": bytes([0]) + subscribe() + data(msg(1, enc=(0, 0)))
    + key_resp(flags=2, status=3) + key_resp(flags=2 | 64) + key_resp(flags=4)
    + key_resp(flags=8) + key_resp(flags=16) + key_resp(flags=32, extra=b"\x05")
    + clock_ms(250) + clock_ms(500) + key_resp(),
    "encrypted_wrong_key": bytes([0]) + subscribe() + data(msg(1, enc=(0, 0), opts=8))
    + key_resp() + data(msg(2, enc=(0, 1))) + key_resp(flags=64 | 128, extra=b"\x00\x00\x09"),
    "encrypted_give_up": bytes([0]) + subscribe(lease=60000)
    + data(msg(1, enc=(0, 0), chain=1), msg(1, enc=(1, 0), chain=2, who=1))
    + clock_s(3) + clock_s(4) + clock_s(4) + data(msg(2, enc=(0, 0))),
    "encrypted_before_subscribed": bytes([0]) + data(msg(1, enc=(0, 0))) + subscribe()
    + clock_ms(300) + key_resp(),
    "encrypted_anonymous": bytes([2]) + subscribe() + data(msg(1, enc=(0, 0)), msg(2)),
    "session_handshake_steps": bytes([0]) + bytes([START, 0]) + bytes([CHALLENGE, 0]) + u16(5)
    + b"\x01\x02\x03\x04" + ack(0, False, 3) + bytes([CHALLENGE, 0]) + u16(6) + b"abcd"
    + ack(0) + clock_ms(100) + ack(1) + clock_ms(200) + ack(1, False, 4),
    "session_auto_resubscribe": bytes([4]) + subscribe(lease=300) + clock_s(2) + clock_s(2)
    + bytes([CHALLENGE, 0]) + u16(7) + b"wxyz" + ack(0, False, 1) + clock_s(2),
    "session_refused_and_unsubscribe": bytes([0]) + bytes([START, 0]) + ack(0, False, 5)
    + subscribe() + bytes([UNSUB]) + clock_ms(150) + ack(2) + bytes([UNSUB]),
    "encrypted_burst_fills_the_key_queue": bytes([0]) + subscribe()
    + burst(301, enc=(0, 0)) + key_resp() + burst(20, seq=302, enc=(0, 1), per_dgram=5),
    "plain_burst_then_stale": bytes([0]) + burst(30, per_dgram=6) + burst(10, seq=25, chain=1)
    + burst(10, seq=1, chain=2, who=1),
    "raw_datagrams": bytes([0]) + bytes([RAW, 1]) + u16(12) + b"\x00" * 3 + b"\x01"
    + b"\x00\x00\x00\x01" + b"junk" + bytes([RAW, 0]) + u16(3) + b"RY\x01"
    + bytes([RAW, 1]) + u16(8) + b"\x00\x00\x00\x31\x00\x00\x00\x01",
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, b in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
