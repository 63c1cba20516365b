/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The publisher object, shared by pub.c (datagram queue, signing, sending) and pub_keys.c (the
 * group keys of an encrypting publisher and its key holder).
 */
#ifndef RLY_CLIENT_PUB_H
#define RLY_CLIENT_PUB_H

#include <sys/socket.h>

#include "client/internal.h"

/* Datagrams per sendmmsg; datagram slots queued (a power of two; one is the open datagram). */
#define PUB_VEC		  64u
#define PUB_QUEUE	  256u
#define PUB_DGRAM_DEFAULT RLY_WIRE_DGRAM_FOR_MTU(1500u)
#define HDR_LEN		  sizeof(struct rly_wire_dgram_hdr)
#define MSG_LEN		  sizeof(struct rly_wire_msg_hdr)
#define SIG_LEN		  RLY_WIRE_SIG_LEN
/* Every message, signature included, costs this much room besides its payload. */
#define MSG_OVERHEAD (MSG_LEN + SIG_LEN)

/* The key holder is serviced from offer and flush at most this often (CLOCK_REALTIME ns). */
#define PUB_KEYS_SERVICE_NS 1000000ull
/* The registry directory is looked at at most this often (CLOCK_MONOTONIC ns). */
#define PUB_KEYS_REGISTRY_NS 1000000000ull

struct dgram {
	uint8_t *buf;
	uint16_t len;	/* bytes used, datagram header included */
	uint16_t count; /* messages in it */
};

struct rly_registry;

/* A requester given a key of the current generation, and the first step it may read. */
struct pub_grant {
	uint8_t who[RLY_ID_LEN];
	uint16_t from_step;
};

/* An encrypting publisher's keys and key holder (client/pub_keys.c). */
struct pub_keys {
	int on;
	int key_history;
	uint32_t key_id;		    /* current: generation << 16 | step */
	uint8_t key[RLY_GROUP_KEY_LEN];	    /* key(generation, step): encrypts what is offered */
	uint8_t gen_key[RLY_GROUP_KEY_LEN]; /* key(generation, 0): older steps for key_history */
	struct pub_grant *granted;	    /* who was given a key of this generation */
	uint32_t n_granted;
	uint32_t cap_granted;
	uint8_t (*prev)[RLY_ID_LEN]; /* who had the generation before: no rotate when they ask */
	uint32_t n_prev;
	char *registry_dir;
	struct rly_registry *reg;
	uint64_t reg_fingerprint;
	uint64_t reg_check_ns; /* CLOCK_MONOTONIC: next look at the directory */
	uint64_t service_ns;   /* CLOCK_REALTIME: last service from offer or flush */
	rly_sub_t *holder;     /* the key holder's subscription on RLY_KEY_HOLDER_PARTITION */
	int answered;	       /* key requests answered during the current poll */
	void (*on_key_event)(void *ctx, enum rly_key_event ev, const uint8_t *who, uint32_t key_id);
	void *ctx;
};

struct rly_pub {
	int fd;
	char relay[CLIENT_ADDR_STRLEN];
	uint32_t dgram_max;
	uint32_t msgs_per_dgram;
	uint32_t overhead; /* room a message takes besides its plaintext */
	uint64_t seq;
	/* Fields that never change from one message to the next, copied as a block. */
	struct rly_wire_msg_hdr tmpl;
	struct rly_identity id;
	uint32_t head;
	uint32_t closed;
	struct dgram q[PUB_QUEUE];
	struct mmsghdr vec[PUB_VEC];
	struct iovec iov[PUB_VEC];
	struct rly_pub_stats st;
	uint8_t *mem;
	struct pub_keys keys;
};

/* Load the registry, draw generation 1 and start the key holder's registration. 0 or -errno. */
int pub_keys_init(rly_pub_t *p, const struct rly_pub_opts *o);
void pub_keys_close(rly_pub_t *p);
/* From offer and flush: answer key requests and run timers without blocking, at most once per
 * PUB_KEYS_SERVICE_NS of @p now_real_ns. */
void pub_keys_service(rly_pub_t *p, uint64_t now_real_ns);

#endif
