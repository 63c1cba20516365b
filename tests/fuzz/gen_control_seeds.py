#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the hand-made seeds of fuzz_control (tests/fuzz/fuzz_control.c) into DIR.

Each seed is an event script in the harness's format: a mode byte (bit 0: command seqs start
just before the 32-bit wrap, bit 1: a burst of 3 SUBSCRIBEs per source), then events, each a kind
byte and its arguments. Sources are 0-11 (10.0.0.1-4, ports 5000-5002); partitions by selector
0: 0, 1: 1, 2: the key holders' one; identities 0-2. The names say which path each seed reaches.
"""
import os
import struct
import sys

RAW, SUB, ANSWER, REF, KEY_REQ, KEY_RESP, EVENT, CLOCK, RESYNC, DETACH, LOSS, TX = range(12)
HOLDER = 2


def u16(v):
    return struct.pack(">H", v)


def sub(src, part=0, stream=0, ident=None, lease=3000, req=1):
    sel = part | (stream << 2) | ((8 | ident << 4) if ident is not None else 0)
    return bytes([SUB, src, sel]) + u16(lease - 1) + bytes([req])


def answer(pick=0, signed_by=None, other_src=None, bad_cookie=None, bad_sig=None, claim=None,
           lease=3000):
    sel = 0
    if signed_by is not None:
        sel |= 8 | signed_by << 4
    if claim is not None:
        sel |= 4 | claim << 4
    if other_src is not None:
        sel |= 1
    if bad_cookie is not None:
        sel |= 2
    if bad_sig is not None:
        sel |= 128
    b = bytes([ANSWER, pick, sel])
    if other_src is not None:
        b += bytes([other_src])
    b += u16(lease - 1)
    if bad_cookie is not None:
        b += bytes([bad_cookie])
    if sel & 8 and sel & 128:
        b += bytes([bad_sig])
    return b


def ref(src, unsub=False, part=0, stream=0, bad_token=None, req=1):
    sel = part | (stream << 2) | (8 if unsub else 0) | (16 if bad_token is not None else 0)
    b = bytes([REF, src, sel, req])
    return b + (bytes([bad_token]) if bad_token is not None else b"")


def key_req(src, publisher=0, requester=1, part=0, stream=0, bad_sig=None, bad_token=None,
            req=5, key_id=False):
    # who % 3 = publisher, (who >> 2) % 3 = requester
    who = next(w for w in range(256) if w % 3 == publisher and (w >> 2) % 3 == requester
               and bool(w & 8) == key_id)
    sel = part | (stream << 2) | (32 if bad_sig is not None else 0) | \
        (16 if bad_token is not None else 0)
    b = bytes([KEY_REQ, src, sel, who, req - 1])
    if bad_sig is not None:
        b += bytes([bad_sig])
    if bad_token is not None:
        b += bytes([bad_token])
    return b


def key_resp(pick=0, denied=False, other_src=None, bad_req=False, other_pub=None):
    sel = (8 if denied else 0) | (1 if other_src is not None else 0) | (2 if bad_req else 0)
    if other_pub is not None:
        sel |= 4 | other_pub << 5
    b = bytes([KEY_RESP, pick, sel])
    if other_src is not None:
        b += bytes([other_src])
    if not denied:
        b += b"sealed!!"
    return b + b"sig!"


def done(status=0, which=0):
    """which 0: oldest command, 2: the second (first lost), 3: a bogus seq."""
    st = 1 if status == 0 else status << 1
    return bytes([EVENT, which, st]) + (b"\x00" if which == 3 else b"")


def dump_entry(src, part=0, stream=0, bad_seq=False):
    st = (2 if bad_seq else 0) | (stream << 2) | (part << 3)
    return bytes([EVENT, 4, st, src])


def dump_end(count=0, bad_seq=False):
    return bytes([EVENT, 5, 2 if bad_seq else 0, count])


def clock_ms(ms):
    return bytes([CLOCK, 0]) + u16(min(ms * 16, 0xFFFF))


def clock_long(ms):
    return bytes([CLOCK, 1]) + u16(min(ms // 16, 0xFFFF))


def subscriber(src, ident=None, part=0, stream=0):
    """Handshake (signed when ident is given) and the dataplane's OK."""
    return sub(src, part, stream) + answer(signed_by=ident) + done()


def holder(src, ident, stream=0):
    return sub(src, HOLDER, stream) + answer(signed_by=ident)


SEEDS = {
    "plain_subscribe_heartbeat_unsubscribe": bytes([0]) + subscriber(0) + ref(0) + clock_ms(900)
    + ref(0) + ref(0, unsub=True) + done() + ref(0, unsub=True),
    "key_request_forwarded_and_answered": bytes([0]) + holder(4, 0) + subscriber(0, ident=1)
    + key_req(0, publisher=0, requester=1) + key_resp() + key_resp()
    + key_req(0, publisher=0, requester=1, req=6) + key_resp(denied=True),
    "key_request_refusals": bytes([0]) + holder(4, 0) + subscriber(0, ident=1) + subscriber(1)
    + key_req(2) + key_req(0, bad_token=3) + key_req(1) + key_req(0, requester=2)
    + key_req(0, bad_sig=7) + key_req(0, publisher=2) + ref(1),
    "key_requests_pending_full": bytes([0]) + holder(4, 0) + subscriber(0, ident=1)
    + b"".join(key_req(0, req=r, key_id=bool(r & 1)) for r in range(10, 16))
    + clock_long(5100) + key_resp() + key_resp(other_src=5) + key_resp(bad_req=True)
    + key_resp(other_pub=2),
    "key_holders_full_renew_expire": bytes([0]) + holder(4, 0) + holder(5, 1) + holder(6, 2)
    + holder(7, 0) + ref(4, part=HOLDER) + ref(5, part=HOLDER, unsub=True)
    + ref(9, part=HOLDER) + clock_long(70000) + ref(4, part=HOLDER),
    "holder_must_sign_and_signature_checked": bytes([0]) + sub(4, HOLDER) + answer()
    + sub(4, HOLDER) + answer(signed_by=0, bad_sig=9) + sub(0) + answer(claim=2)
    + done(),
    "cookie_wrong_expired_elsewhere": bytes([0]) + sub(0) + answer(bad_cookie=3)
    + answer(other_src=1) + clock_ms(2500) + answer() + sub(0, req=2) + answer(),
    "lease_expiry_and_control_loss": bytes([0]) + subscriber(0) + subscriber(1, part=1)
    + clock_ms(2000) + bytes([LOSS]) + clock_ms(4000) + bytes([LOSS]) + clock_long(20000)
    + done() + done(status=2),
    "resync_dump_and_reprove": bytes([0]) + subscriber(0, ident=1) + bytes([RESYNC])
    + dump_entry(0) + dump_entry(2, part=1) + dump_entry(3, bad_seq=True) + dump_end(2)
    + ref(0) + key_req(0) + subscriber(0, ident=1) + key_req(0) + dump_end(),
    "resync_answered_done_and_detach": bytes([0]) + sub(0) + answer() + bytes([RESYNC])
    + sub(1) + answer() + done(which=2) + done(status=6) + clock_long(20000)
    + bytes([DETACH]) + done(),
    "command_statuses": bytes([1]) + b"".join(sub(s) + answer() for s in range(8))
    + done(status=3) + done(status=4) + done(status=5) + done(status=7) + done(status=9)
    + done(which=3) + done(which=2) + done(status=1) + done(),
    "rate_limited_sources": bytes([2]) + b"".join(sub(0, req=r) for r in range(5))
    + key_req(0) + clock_ms(1000) + sub(0),
    "tx_crowded_and_full": bytes([0]) + bytes([TX, 1]) + sub(0) + answer() + bytes([TX, 0])
    + sub(0) + bytes([TX, 1]) + answer(bad_cookie=1) + answer() + done() + ref(0)
    + bytes([TX, 2]) + ref(0) + sub(1) + bytes([TX, 0]) + answer(),
    "raw_records": bytes([0]) + bytes([RAW, 0, 1]) + u16(12) + b"\x00\x00\x00\x15" + b"\x00" * 8
    + bytes([RAW, 1, 3]) + u16(8) + b"\x00\x00\x00\x01\x00\x00\x00\x01"
    + bytes([RAW, 2, 9]) + u16(0) + b"\x07" + bytes([RAW, 3, 1]) + u16(3) + b"RY\x01",
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, b in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
