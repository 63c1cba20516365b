/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peering internals shared by peer_sessions.c (sessions, neighbours, the handshake, dispatch) and
 * overlay.c (streams, links, Plumtree, discovery glue). Not for other modules: use peers.h.
 */
#ifndef RLY_CONTROL_PEERS_INT_H
#define RLY_CONTROL_PEERS_INT_H

#include <stdint.h>

#include "common/hist.h"
#include "control/discovery.h"
#include "control/peers.h"
#include "control/ratelimit.h"

/* Bounds. Linear searches over these are fine at this size; see docs/overlay.md, "Limits". */
#define SESS_MAX 256u
#define NEIGH_MAX 256u
#define OV_MAX 1024u
#define CAND_MAX 32u
#define MISS_MAX 8u
#define ORPHAN_MAX 256u
#define SNAP_MAX 4096u

enum sess_state {
	S_FREE = 0,
	S_ARP,	 /* waiting for the neighbour's MAC */
	S_HELLO, /* HELLO sent, waiting for CHALLENGE */
	S_PROOF, /* PROOF sent, waiting for WELCOME */
	S_UP,
};

struct peer_sess {
	uint8_t st;	    /* enum sess_state */
	uint8_t initiator;
	uint8_t seed;	    /* a configured seed: kept up for as long as we run */
	uint8_t announced;  /* logged as up */
	struct rly_endpoint ep;		  /* address, port, MAC, flags = RLY_EP_F_PEER */
	uint8_t id[RLY_ID_LEN];		  /* the peer's identity once proven */
	uint8_t expect[RLY_ID_LEN];	  /* identity a discovery record named, or zero */
	uint8_t my_token[RLY_COOKIE_LEN];    /* the peer puts it on what it sends us */
	uint8_t their_token[RLY_COOKIE_LEN]; /* we put it on what we send the peer */
	uint64_t request_id;		  /* our HELLO's */
	uint64_t issued_ms;		  /* the CHALLENGE we answer (PROOF resends) */
	uint8_t cookie[RLY_COOKIE_LEN];
	uint64_t next_try_ms;
	uint32_t tries;
	uint64_t last_rx_ms;
	uint64_t last_ping_ms;
	uint64_t opened_ms;
};

struct neigh {
	uint32_t ip_be;
	uint16_t port_id;
	uint8_t mac[6];
	uint64_t seen_ms;
};

enum link_state {
	L_NONE = 0,
	L_JOINING, /* JOIN sent (or waiting for the session to send it) */
	L_EAGER,
	L_LAZY,
};

struct ov_link {
	uint8_t st;	 /* enum link_state */
	uint8_t sent;	 /* L_JOINING: the JOIN went out */
	int16_t sess;	 /* index into sessions */
	uint64_t since_ms;
	uint64_t request_id;
	uint64_t hold_ms; /* no PRUNE before this (just made eager, or grafted) */
	uint64_t last_dup_prune_ms;
};

struct ov_cand {
	uint32_t ip_be;
	uint16_t port_be;
	uint8_t id[RLY_ID_LEN];
	uint64_t expires_ms;	   /* of its discovery record (our clock) */
	uint64_t refused_until_ms; /* refused, timed out or dead: not tried again before */
};

struct ov_miss {
	uint8_t used;
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t want;	   /* the highest seq the IHAVE announced */
	int16_t from;	   /* link index that announced it */
	uint64_t deadline_ms;
};

/* Chains whose first-arriving link an overlay tracks (Plumtree per source, approximated). */
#define FIRST_CHAINS 8u

/* Which link brings a chain's messages first: decaying scores from the dedup table's first_src. */
struct ov_first {
	uint8_t used;
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t seen_ms;
	uint16_t score[RLY_PEER_DEGREE_CAP];
};

struct ov_stream {
	uint8_t used;
	uint8_t member; /* announced and watched */
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint64_t local_until_ms; /* served while now is before this */
	uint64_t next_maint_ms;
	uint64_t joined_ms;
	uint64_t first_link_ms; /* when it first had an eager link (logged) */
	struct ov_link link[RLY_PEER_DEGREE_CAP];
	struct ov_cand cand[CAND_MAX];
	struct ov_miss miss[MISS_MAX];
	struct ov_first first[FIRST_CHAINS];
};

/* A peer endpoint found in the dataplane at resync, kept until a link claims it or it times out. */
struct orphan {
	uint8_t used;
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_endpoint ep;
	uint64_t deadline_ms;
};

/* One chain of the dedup region, as read at the last IHAVE tick. */
struct snap_chain {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint32_t idx; /* in the region: its live `highest` can be read again */
	uint64_t highest;
	uint64_t first_src; /* where its newest message came from (ip_be << 16 | port_be) */
	uint64_t first_seq; /* the first seq this relay saw of it */
	uint64_t seen_ms;   /* when relay-control first saw the chain */
	uint64_t age_ms;
};

struct rly_ctl_peers {
	struct rly_ctl_peers_cfg cfg;
	struct rly_ctl_peers_io io;
	struct rly_identity id;
	int enabled;
	uint8_t cookie_key[32];
	struct rly_ctl_ratelimit rl; /* PROOFs and HELLOs per source address */

	uint32_t self_ip_be;
	uint16_t self_port_be;
	int attached;

	/* the dataplane's message history, and the largest datagram it sends */
	struct rly_hist hist;
	uint32_t dedup_window;
	uint32_t dgram_max;
	/* the dataplane's dedup region */
	const uint8_t *dedup;
	uint32_t dedup_chains;
	uint64_t dedup_stride;
	uint64_t tsc_hz;

	struct rly_disc *disc;

	struct peer_sess sess[SESS_MAX];
	struct neigh neigh[NEIGH_MAX];
	struct ov_stream *ov; /* ov_max entries */
	uint32_t ov_max;
	struct orphan orphan[ORPHAN_MAX];
	struct snap_chain *snap; /* SNAP_MAX */
	/* per chain slot of the dedup region: the tag last seen there, and since when */
	uint64_t *seen_tag;
	uint64_t *seen_ms;
	uint32_t n_snap;
	uint64_t next_ihave_ms;
	uint64_t next_local_ms;
	uint64_t next_sess_ms;

	struct rly_ctr_block *ctr;
	struct rly_ctr_block own_ctr;
	uint64_t now_ms;
};

/* peer_sessions.c */
void peers_count(struct rly_ctl_peers *p, enum rly_ctr id);
void peers_gauge(struct rly_ctl_peers *p, enum rly_ctr id, uint64_t v);
uint64_t peers_rand64(void);
/* The session with this address, or -1. */
int sess_find(const struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be);
/* The session with this address, opened (as initiator) if there is none; -1 when full. */
int sess_open(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be,
	      const uint8_t expect[RLY_ID_LEN], uint64_t now_ms);
/* Send a body of @p type in session @p s (its token filled in by the caller). 0 or -errno. */
int sess_send(struct rly_ctl_peers *p, int s, unsigned type, const void *body);
void sess_note_neigh(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_id, const uint8_t mac[6],
		     uint64_t now_ms);

/* overlay.c */
int ov_init(struct rly_ctl_peers *p);
/* The dedup region changed (attach): size the per-chain tables. 0 or -ENOMEM. */
int ov_region(struct rly_ctl_peers *p);
void ov_free(struct rly_ctl_peers *p);
struct ov_stream *ov_find(const struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
			  uint32_t partition);
/* Serve (stream, partition) until now + linger. */
void ov_local(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
	      uint64_t now_ms);
void ov_on_link_msg(struct rly_ctl_peers *p, int s, unsigned type,
		    const struct rly_wire_peer_link *b, uint64_t now_ms);
void ov_on_ihave(struct rly_ctl_peers *p, int s, const struct rly_wire_peer_ihave *b,
		 uint64_t now_ms);
void ov_on_iwant(struct rly_ctl_peers *p, int s, const struct rly_wire_peer_iwant *b,
		 uint64_t now_ms);
void ov_on_duplicate(struct rly_ctl_peers *p, int s, const struct rly_wire_msg_hdr *h,
		     uint64_t now_ms);
void ov_on_peer_data(struct rly_ctl_peers *p, int s, const struct rly_wire_msg_hdr *h,
		     uint64_t now_ms);
void ov_on_session_up(struct rly_ctl_peers *p, int s, uint64_t now_ms);
void ov_on_session_down(struct rly_ctl_peers *p, int s, uint64_t now_ms);
void ov_on_record(void *ctx, const struct rly_disc_record *rec);
void ov_on_dump_peer(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
		     uint32_t partition, const struct rly_endpoint *ep, uint64_t now_ms);
void ov_forget_links(struct rly_ctl_peers *p);
unsigned ov_tick(struct rly_ctl_peers *p, uint64_t now_ms);

#endif
