/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's loop turn: receive, validate, classify, hand data to the fan-out, punt control
 * datagrams, answer ARP, send relay-control's replies, drain tx buffers.
 *
 * Hot path: no syscalls, locks, allocation (other than mbufs from the pool), stdio or crypto in
 * this file; tools/check-hotpath.sh enforces it. A frame that fails any check is freed and counted
 * by reason; nothing here returns an error per packet.
 */
#include "dataplane/worker.h"

#include <string.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_ring_elem.h>

#include "relay/wire.h"

enum disposition {
	FRAME_FREE,  /* done with it: free at the end of the burst */
	FRAME_DATA,  /* in the fan-out; freed (or reused) when it flushes */
	FRAME_SENT,  /* went back out (ARP reply): not ours any more */
};

static void on_tx_unsent(struct rte_mbuf **pkts, uint16_t n, void *userdata)
{
	struct rly_worker *w = userdata;
	uint64_t bytes = 0;

	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
	RLY_CTR_ADD(w, TX_DROP, n);
	RLY_CTR_ADD(w, TX_BYTES, -bytes);
	rte_pktmbuf_free_bulk(pkts, n);
}

int rly_worker_init(struct rly_worker *w, uint16_t id, const struct rly_dp_config *cfg,
		    const struct rly_subtable *table, struct rte_mempool *pool,
		    struct rly_ctr_block *ctr, struct rte_ring *punt, struct rte_ring *ctl_tx,
		    int socket)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->cfg = cfg;
	w->table = table;
	w->pool = pool;
	w->ctr = ctr;
	w->punt = punt;
	w->punt_open_max = punt ? rte_ring_get_capacity(punt) / 2 : 0;
	w->ctl_tx = ctl_tx;
	w->tx_queue = id;
	w->n_rx = cfg->n_ports;
	rly_punt_limit_init(&w->punt_limit, cfg->punt_rate, cfg->punt_burst, rte_get_tsc_hz(),
			    (uint32_t)rte_rdtsc());
	w->pub_every = rte_get_tsc_hz();
	rly_repair_init(&w->repair, cfg->repair_bytes_s, cfg->repair_burst, rte_get_tsc_hz(),
			(uint32_t)rte_rdtsc() ^ 0x5bd1e995u);
	w->dup_every = rte_get_tsc_hz() / 1000u * RLY_DUP_REPORT_MS;
	for (uint16_t p = 0; p < cfg->n_ports; p++) {
		w->rx_port[p] = p;
		w->rx_queue[p] = id;
		w->txb[p] = rte_zmalloc_socket("rly_txb", RTE_ETH_TX_BUFFER_SIZE(RLY_TX_BUFFER), 0,
					       socket);
		if (w->txb[p] == NULL) {
			rly_worker_close(w);
			return -ENOMEM;
		}
		rte_eth_tx_buffer_init(w->txb[p], RLY_TX_BUFFER);
		rte_eth_tx_buffer_set_err_callback(w->txb[p], on_tx_unsent, w);
	}
	return 0;
}

void rly_worker_close(struct rly_worker *w)
{
	rly_fanout_close(w);
	for (uint16_t p = 0; p < RLY_SHM_MAX_PORTS; p++) {
		rte_free(w->txb[p]);
		w->txb[p] = NULL;
	}
}

void rly_worker_tx(struct rly_worker *w, uint16_t port, struct rte_mbuf *m)
{
	RLY_CTR_ADD(w, TX_BYTES, rte_pktmbuf_pkt_len(m));
	RLY_CTR_ADD(w, TX_PKTS, rte_eth_tx_buffer(port, w->tx_queue, w->txb[port], m));
	w->pending_tx = 1;
}

void rly_worker_flush(struct rly_worker *w)
{
	for (uint16_t p = 0; p < w->cfg->n_ports; p++)
		if (w->txb[p]->length)
			RLY_CTR_ADD(w, TX_PKTS, rte_eth_tx_buffer_flush(p, w->tx_queue, w->txb[p]));
	w->pending_tx = 0;
	w->last_drain_tsc = rte_rdtsc();
}

int rly_worker_punt(struct rly_worker *w, int reserve)
{
	if (!reserve && rte_ring_count(w->punt) >= w->punt_open_max) {
		RLY_CTR_ADD(w, DROP_PUNT_OPEN, 1);
		return 0;
	}
	if (rte_ring_sp_enqueue_elem(w->punt, &w->punt_rec, sizeof(w->punt_rec)) != 0) {
		RLY_CTR_ADD(w, DROP_PUNT_FULL, 1);
		return 0;
	}
	return 1;
}

/*
 * Tell relay-control that @p ip_be is at @p mac on @p port (the sender of an ARP request for our
 * address, or of a reply to us): it learns peer relays' MACs before its first datagram to them.
 * The sender's address pays from its punt bucket like any control datagram.
 */
static void punt_neigh(struct rly_worker *w, uint16_t port, uint32_t ip_be,
		       const struct rte_ether_addr *mac)
{
	struct rly_pkt_rec *r = &w->punt_rec;

	if (!rly_punt_allow(&w->punt_limit, ip_be, w->now)) {
		RLY_CTR_ADD(w, DROP_PUNT_RATE, 1);
		return;
	}
	r->port_id = port;
	r->len = 0;
	r->ip_be = ip_be;
	r->udp_port_be = 0;
	memcpy(r->mac, mac, sizeof(r->mac));
	r->worker = w->id;
	r->flags = RLY_PKT_F_NEIGH;
	r->reserved2 = 0;
	r->rx_tsc = w->now;
	if (rly_worker_punt(w, 0))
		RLY_CTR_ADD(w, NEIGH_LEARNT, 1);
}

/*
 * Answer "who has <our address>" in place: the request frame becomes the reply. Both that request
 * and a reply to us tell relay-control where their sender is.
 */
static enum disposition on_arp(struct rly_worker *w, uint16_t port, struct rte_mbuf *m,
			       struct rte_ether_hdr *eth, uint16_t len)
{
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	const struct rte_ether_addr *mac = &w->cfg->port_mac[port];

	if (len < RLY_L2_LEN + sizeof(*arp)) {
		RLY_CTR_ADD(w, DROP_RUNT, 1);
		return FRAME_FREE;
	}
	if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4 ||
	    arp->arp_data.arp_tip != w->cfg->ip_be ||
	    (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
	     arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REPLY))) {
		RLY_CTR_ADD(w, DROP_ARP, 1);
		return FRAME_FREE;
	}
	/* No neighbour is 0.0.0.0 (an address probe), a broadcast or a multicast MAC. */
	if (arp->arp_data.arp_sip != 0 && rte_is_unicast_ether_addr(&arp->arp_data.arp_sha))
		punt_neigh(w, port, arp->arp_data.arp_sip, &arp->arp_data.arp_sha);
	if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY))
		return FRAME_FREE;
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(mac, &eth->src_addr);
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	arp->arp_data.arp_tha = arp->arp_data.arp_sha;
	arp->arp_data.arp_tip = arp->arp_data.arp_sip;
	rte_ether_addr_copy(mac, &arp->arp_data.arp_sha);
	arp->arp_data.arp_sip = w->cfg->ip_be;
	RLY_CTR_ADD(w, ARP_REPLIES, 1);
	rly_worker_tx(w, port, m);
	return FRAME_SENT;
}

/*
 * Types a relay receives and relay-control handles: subscriber requests, group-key requests and
 * answers, which relay-control routes between subscribers and key holders, and everything
 * between relays (sessions, overlay links, repair, discovery).
 */
static int is_punted(unsigned type)
{
	return type == RLY_MSG_SUBSCRIBE || type == RLY_MSG_SUBSCRIBE_SIGNED ||
	       type == RLY_MSG_UNSUBSCRIBE || type == RLY_MSG_HEARTBEAT ||
	       type == RLY_MSG_KEY_REQUEST || type == RLY_MSG_KEY_RESPONSE ||
	       (type >= RLY_MSG_PEER_HELLO && type <= RLY_MSG_PEER_DISCOVER);
}

/*
 * 1 if a control datagram comes from an existing subscription: a HEARTBEAT, UNSUBSCRIBE or
 * KEY_REQUEST from an address and port in its stream's subscriber set, or a PEER_JOIN, PRUNE,
 * IHAVE or IWANT from a peer endpoint of its stream's set (an overlay link that exists). The
 * token it carries is relay-control's to check (the dataplane does not have the secret); the
 * address is what a spoofer cannot pick without being in the set already.
 */
static int from_subscriber(const struct rly_worker *w, const struct rly_wire_view *v,
			   const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp)
{
	const struct rly_sub_set *set;
	const uint8_t *key = v->body; /* every one of these bodies starts with key, partition */
	uint32_t partition;
	int peer;

	switch (v->type) {
	case RLY_MSG_HEARTBEAT:
	case RLY_MSG_UNSUBSCRIBE:
	case RLY_MSG_KEY_REQUEST:
		peer = 0;
		break;
	case RLY_MSG_PEER_JOIN:
	case RLY_MSG_PEER_PRUNE:
	case RLY_MSG_PEER_IHAVE:
	case RLY_MSG_PEER_IWANT:
		peer = 1;
		break;
	default:
		return 0;
	}
	partition = rly_be32_load(key + RLY_STREAM_KEY_LEN);
	set = rly_subtable_lookup(w->table, key, partition);
	if (set == NULL)
		return 0;
	return peer ? rly_sub_set_peer(set, ip->src_addr, udp->src_port) >= 0
		    : rly_sub_set_has(set, ip->src_addr, udp->src_port);
}

/*
 * Hand a control datagram to relay-control. Two limits keep a flood from crowding out the control
 * traffic of existing subscriptions: a rate per source address, and a reserve: what does not
 * come from an existing subscriber (SUBSCRIBEs, which anyone can send from any spoofed address,
 * key holders' traffic, heartbeats from addresses that subscribe to nothing) may fill only half
 * of the ring, so subscribers' heartbeats, unsubscribes and key requests always find room while
 * relay-control keeps up with them.
 */
static void punt(struct rly_worker *w, uint16_t port, const struct rte_ether_hdr *eth,
		 const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp, const uint8_t *payload,
		 uint16_t len, int subscriber)
{
	struct rly_pkt_rec *r = &w->punt_rec;
	const uint64_t now = w->now;
	/*
	 * A subscriber's own traffic has a bucket of its own, keyed by its address and port: a
	 * flood from its address on other ports (spoofed, or a neighbour behind the same NAT) uses
	 * the address's bucket and cannot spend its heartbeats' tokens.
	 */
	uint32_t source = subscriber
			      ? ip->src_addr ^ (0x85ebca6bu * ((uint32_t)udp->src_port | 0x10000u))
			      : ip->src_addr;

	if (!rly_punt_allow(&w->punt_limit, source, now)) {
		RLY_CTR_ADD(w, DROP_PUNT_RATE, 1);
		return;
	}
	if (!subscriber && rte_ring_count(w->punt) >= w->punt_open_max) {
		RLY_CTR_ADD(w, DROP_PUNT_OPEN, 1);
		return;
	}
	r->port_id = port;
	r->len = len;
	r->ip_be = ip->src_addr;
	r->udp_port_be = udp->src_port;
	memcpy(r->mac, &eth->src_addr, sizeof(r->mac));
	r->worker = w->id;
	r->flags = 0;
	r->reserved2 = 0;
	r->rx_tsc = now;
	memcpy(r->data, payload, len);
	if (rly_worker_punt(w, subscriber))
		RLY_CTR_ADD(w, PUNTED, 1);
}

/* Everything between "a frame arrived" and "it is data, control, ARP, or dropped". */
static enum disposition classify(struct rly_worker *w, uint16_t port, struct rte_mbuf *m,
				 uint8_t idx)
{
	const struct rly_dp_config *cfg = w->cfg;
	uint16_t len = rte_pktmbuf_data_len(m);
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;
	struct rly_wire_view v;
	enum rly_wire_err err;
	uint16_t hlen, ip_len, udp_len, payload_sum;
	const uint8_t *payload;
	uint64_t csum_flags;

	if (m->nb_segs != 1) {
		RLY_CTR_ADD(w, DROP_MULTISEG, 1);
		return FRAME_FREE;
	}
	if (len < RLY_L2_LEN) {
		RLY_CTR_ADD(w, DROP_RUNT, 1);
		return FRAME_FREE;
	}
	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
			return on_arp(w, port, m, eth, len);
		RLY_CTR_ADD(w, DROP_NOT_IP, 1);
		return FRAME_FREE;
	}
	if (len < RLY_HDRS_LEN) {
		RLY_CTR_ADD(w, DROP_RUNT, 1);
		return FRAME_FREE;
	}
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	hlen = (uint16_t)((ip->version_ihl & 0x0f) * 4u);
	ip_len = rte_be_to_cpu_16(ip->total_length);
	/* Frames may carry Ethernet padding after the IP packet, never less than it claims. */
	if ((ip->version_ihl >> 4) != 4 || hlen < RLY_L3_LEN || ip_len < hlen + RLY_L4_LEN ||
	    RLY_L2_LEN + ip_len > len) {
		RLY_CTR_ADD(w, DROP_IP_HDR, 1);
		return FRAME_FREE;
	}
	csum_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (csum_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
	    (csum_flags != RTE_MBUF_F_RX_IP_CKSUM_GOOD && !rly_ipv4_csum_ok(ip, hlen))) {
		RLY_CTR_ADD(w, DROP_IP_CSUM, 1);
		return FRAME_FREE;
	}
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		RLY_CTR_ADD(w, DROP_IP_FRAG, 1);
		return FRAME_FREE;
	}
	if (ip->next_proto_id != IPPROTO_UDP) {
		RLY_CTR_ADD(w, DROP_NOT_UDP, 1);
		return FRAME_FREE;
	}
	udp = (struct rte_udp_hdr *)((uint8_t *)ip + hlen);
	if (ip->dst_addr != cfg->ip_be || udp->dst_port != cfg->udp_port_be) {
		RLY_CTR_ADD(w, DROP_NOT_FOR_US, 1);
		return FRAME_FREE;
	}
	udp_len = rte_be_to_cpu_16(udp->dgram_len);
	if (udp_len != ip_len - hlen) {
		RLY_CTR_ADD(w, DROP_UDP_LEN, 1);
		return FRAME_FREE;
	}
	/*
	 * One pass over the payload serves twice: it verifies the sender's checksum, and the fan-out
	 * derives every output datagram's checksum from it without reading the payload again.
	 */
	payload = (const uint8_t *)(udp + 1);
	payload_sum = rly_sum_bytes(payload, udp_len - RLY_L4_LEN);
	csum_flags = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (csum_flags == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
	    (csum_flags != RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
	     !rly_udp_csum_ok(ip, udp, udp_len, payload_sum))) {
		RLY_CTR_ADD(w, DROP_UDP_CSUM, 1);
		return FRAME_FREE;
	}

	err = rly_wire_parse(payload, udp_len - RLY_L4_LEN, cfg->dgram_max, &v);
	if (unlikely(err != RLY_WIRE_ERR_OK)) {
		RLY_CTR_ADD(w, DROP_WIRE, 1);
		w->ctr->v[RLY_CTR_WIRE_BASE + err]++;
		return FRAME_FREE;
	}
	RLY_CTR_ADD(w, RX_DGRAMS, 1);
	if (likely(v.type == RLY_MSG_DATA)) {
		RLY_CTR_ADD(w, RX_MSGS, v.count);
		/* Only plain 20-byte IPv4 headers put the payload where a reply frame wants it. */
		rly_fanout_add_dgram(w, idx, hlen == RLY_L3_LEN, &v, payload_sum, ip->src_addr,
				     udp->src_port);
		return FRAME_DATA;
	}
	if (v.type == RLY_MSG_NAK) {
		/* Answered here, from the history: relay-control is not involved. */
		rly_repair_on_nak(w, port, ip, udp, &v);
		return FRAME_FREE;
	}
	if (!is_punted(v.type)) {
		RLY_CTR_ADD(w, DROP_WRONG_WAY, 1);
		return FRAME_FREE;
	}
	punt(w, port, eth, ip, udp, payload, udp_len - RLY_L4_LEN, from_subscriber(w, &v, ip, udp));
	return FRAME_FREE;
}

static void process_burst(struct rly_worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *done[RLY_BURST];
	uint32_t sent = 0;
	uint64_t bytes = 0;
	uint16_t n_done = 0;

	w->now = rly_worker_tsc(w);
	rly_fanout_begin(w, pkts, port);
	for (uint16_t i = 0; i < n; i++) {
		/* The next frame's headers are read a few hundred cycles from now. */
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		bytes += rte_pktmbuf_pkt_len(pkts[i]);
		if (classify(w, port, pkts[i], (uint8_t)i) == FRAME_SENT)
			sent |= 1u << i;
	}
	rly_fanout_flush(w);
	RLY_CTR_ADD(w, RX_BURSTS, 1);
	RLY_CTR_ADD(w, RX_PKTS, n);
	RLY_CTR_ADD(w, RX_BYTES, bytes);

	sent |= w->fo.reused_mask;
	for (uint16_t i = 0; i < n; i++)
		if (!(sent & (1u << i)))
			done[n_done++] = pkts[i];
	if (n_done)
		rte_pktmbuf_free_bulk(done, n_done);
}

/* Shortest Ethernet frame without its FCS: ARP requests are padded to it. */
#define ETH_MIN_FRAME 60u

/* "Who has ip_be? Tell <our address>", broadcast on @p port: relay-control wants a MAC. */
static void arp_request(struct rly_worker *w, uint16_t port, uint32_t ip_be)
{
	const struct rte_ether_addr *mac = &w->cfg->port_mac[port];
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	if (m == NULL) {
		RLY_CTR_ADD(w, DROP_NOMBUF, 1);
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, ETH_MIN_FRAME);
	if (eth == NULL) { /* cannot happen: a fresh mbuf holds 2 KiB */
		rte_pktmbuf_free(m);
		return;
	}
	memset(eth, 0, ETH_MIN_FRAME);
	memset(&eth->dst_addr, 0xff, sizeof(eth->dst_addr));
	rte_ether_addr_copy(mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp = (struct rte_arp_hdr *)(eth + 1);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	rte_ether_addr_copy(mac, &arp->arp_data.arp_sha);
	arp->arp_data.arp_sip = w->cfg->ip_be;
	arp->arp_data.arp_tip = ip_be;
	rly_worker_tx(w, port, m);
	RLY_CTR_ADD(w, ARP_REQUESTS, 1);
}

/*
 * Records from relay-control: wrap each UDP payload in our headers and send it, or (flagged
 * RLY_PKT_F_ARP_RESOLVE) ask the network for a neighbour's MAC.
 */
static unsigned ctl_tx(struct rly_worker *w)
{
	unsigned n = rte_ring_sc_dequeue_burst_elem(w->ctl_tx, w->ctl_rec, sizeof(w->ctl_rec[0]),
						    RLY_CTL_TX_BURST, NULL);

	for (unsigned i = 0; i < n; i++) {
		const struct rly_pkt_rec *r = &w->ctl_rec[i];
		struct rly_endpoint ep;
		struct rte_mbuf *m;
		uint8_t *frame;

		if (r->flags == RLY_PKT_F_ARP_RESOLVE && r->port_id < w->cfg->n_ports &&
		    r->ip_be != 0 && r->ip_be != 0xffffffffu) {
			arp_request(w, r->port_id, r->ip_be);
			continue;
		}
		if (r->flags != 0 || r->port_id >= w->cfg->n_ports ||
		    r->len < sizeof(struct rly_wire_dgram_hdr) || r->len > w->cfg->dgram_max) {
			RLY_CTR_ADD(w, DROP_CTL_TX_BAD, 1);
			continue;
		}
		m = rte_pktmbuf_alloc(w->pool);
		if (m == NULL) {
			RLY_CTR_ADD(w, DROP_NOMBUF, 1);
			continue;
		}
		frame = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(RLY_HDRS_LEN + r->len));
		ep.ip_be = r->ip_be;
		ep.udp_port_be = r->udp_port_be;
		ep.port_id = r->port_id;
		memcpy(ep.mac, r->mac, sizeof(ep.mac));
		memcpy(frame + RLY_HDRS_LEN, r->data, r->len);
		rly_hdr_write(frame, &w->cfg->tmpl[r->port_id], &ep, r->len,
			      rly_sum_bytes(r->data, r->len));
		rly_worker_tx(w, r->port_id, m);
		RLY_CTR_ADD(w, CTL_TX, 1);
	}
	return n;
}

unsigned rly_worker_poll_once(struct rly_worker *w)
{
	struct rte_mbuf *pkts[RLY_BURST];
	unsigned work = 0;
	int caught_up = 1;
	uint64_t now;

	for (uint16_t q = 0; q < w->n_rx; q++) {
		uint16_t port = w->rx_port[q];
		uint16_t n = rte_eth_rx_burst(port, w->rx_queue[q], pkts, RLY_BURST);

		if (n == 0)
			continue;
		if (n == RLY_BURST)
			caught_up = 0;
		process_burst(w, port, pkts, n);
		work += n;
	}
	if (w->ctl_tx)
		work += ctl_tx(w);

	/*
	 * Send as soon as nothing more is waiting (a short burst means the queues are drained), so a
	 * lightly loaded relay adds no buffering delay; under full load the buffers go out when they
	 * fill, and the drain interval bounds the wait in between.
	 */
	if (w->pending_tx) {
		if (caught_up) {
			rly_worker_flush(w);
		} else {
			now = rte_rdtsc();
			if (now - w->last_drain_tsc > w->cfg->drain_tsc)
				rly_worker_flush(w);
		}
	}
	return work;
}
