/* SPDX-License-Identifier: Apache-2.0 */
/* Builders and readers of control datagrams for the relay-control tests (test_control*.c). */
#ifndef RLY_TEST_CONTROL_HELPERS_H
#define RLY_TEST_CONTROL_HELPERS_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "relay/shm.h"
#include "relay/wire.h"

static const uint8_t tc_stream[RLY_STREAM_KEY_LEN] = {0xde, 0xad, 0xbe, 0xef, 1, 2,  3,	 4,
						      5,    6,	  7,	8,    9, 10, 11, 12};
static const uint8_t tc_mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

/* A punt record carrying @p body of @p type from ip:port (host order), received on port 0. */
static inline void tc_punt(struct rly_pkt_rec *rec, unsigned type, const void *body, const char *ip,
			   uint16_t port)
{
	memset(rec, 0, sizeof(*rec));
	rec->port_id = 0;
	inet_pton(AF_INET, ip, &rec->ip_be);
	rec->udp_port_be = htons(port);
	memcpy(rec->mac, tc_mac, 6);
	int n = rly_wire_build_control(rec->data, sizeof(rec->data), type, body);
	rec->len = (uint16_t)(n > 0 ? n : 0);
}

static inline void tc_subscribe(struct rly_pkt_rec *rec, const char *ip, uint16_t port,
				uint32_t partition, uint32_t lease_ms, uint64_t request_id,
				uint64_t issued_ms, const uint8_t *cookie)
{
	struct rly_wire_subscribe b;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, tc_stream, sizeof(tc_stream));
	rly_be32_store(&b.partition, partition);
	rly_be32_store(&b.lease_ms, lease_ms);
	rly_be64_store(&b.request_id, request_id);
	rly_be64_store(&b.issued_ms, issued_ms);
	if (cookie)
		memcpy(b.cookie, cookie, RLY_COOKIE_LEN);
	tc_punt(rec, RLY_MSG_SUBSCRIBE, &b, ip, port);
}

/* HEARTBEAT or UNSUBSCRIBE naming a subscription by its token. */
static inline void tc_ref(struct rly_pkt_rec *rec, unsigned type, const char *ip, uint16_t port,
			  uint32_t partition, uint64_t request_id, const uint8_t *token)
{
	struct rly_wire_sub_ref b;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, tc_stream, sizeof(tc_stream));
	rly_be32_store(&b.partition, partition);
	rly_be64_store(&b.request_id, request_id);
	memcpy(b.token, token, RLY_COOKIE_LEN);
	tc_punt(rec, type, &b, ip, port);
}

/* The body of a reply record if it is a valid datagram of @p type, else NULL. */
static inline const void *tc_body(const struct rly_pkt_rec *rec, unsigned type)
{
	struct rly_wire_view v;

	if (rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v) != RLY_WIRE_ERR_OK ||
	    v.type != type)
		return NULL;
	return v.body;
}

static inline uint32_t tc_ip(const char *ip)
{
	uint32_t a;
	inet_pton(AF_INET, ip, &a);
	return a;
}

#endif
