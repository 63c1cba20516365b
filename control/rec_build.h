/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one way relay-control addresses a reply: a control datagram in a tx-ring record, sent to an
 * endpoint as the dataplane learnt it (port, next-hop MAC, address, UDP port). Header-only, so the
 * parts of relay-control that are built without DPDK (tests, fuzz targets) share it.
 */
#ifndef RLY_CONTROL_REC_BUILD_H
#define RLY_CONTROL_REC_BUILD_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "relay/shm.h"
#include "relay/wire.h"

/** Fill @p rec with a @p type datagram carrying @p body for @p to. 0, or -EINVAL. */
static inline int rly_ctl_rec_build(struct rly_pkt_rec *rec, const struct rly_endpoint *to,
				    unsigned type, const void *body)
{
	int len;

	memset(rec, 0, offsetof(struct rly_pkt_rec, data));
	rec->port_id = to->port_id;
	rec->ip_be = to->ip_be;
	rec->udp_port_be = to->udp_port_be;
	memcpy(rec->mac, to->mac, sizeof(rec->mac));
	len = rly_wire_build_control(rec->data, sizeof(rec->data), type, body);
	if (len < 0)
		return -EINVAL;
	rec->len = (uint16_t)len;
	return 0;
}

#endif
