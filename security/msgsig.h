/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Data message signatures (wire protocol v1, include/relay/wire.h).
 *
 * A signed message has flags & RLY_MSG_F_SIGNED, sig_len 64, and 64 bytes of Ed25519 signature
 * after its payload, by the key in its `publisher` field, over the 96-byte message header with
 * `ttl` set to 0 (relays may change ttl) followed by the payload.
 */
#ifndef RLY_SECURITY_MSGSIG_H
#define RLY_SECURITY_MSGSIG_H

#include <stddef.h>

#include "relay/client.h"
#include "relay/wire.h"

/**
 * Sign the message at @p h in place: sets flags |= SIGNED and sig_len = 64, then writes the
 * signature after the payload. The caller leaves 64 bytes of room there and sets every other field
 * (publisher = @p id's key) first.
 */
void rly_msg_sign(const struct rly_identity *id, struct rly_wire_msg_hdr *h);

/** 1 if the message at @p h (a whole, parser-validated message) carries a valid signature. */
int rly_msg_verify(const struct rly_wire_msg_hdr *h);

#endif
