/* SPDX-License-Identifier: Apache-2.0 */
#include "relay/ports.h"

#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>

#include "common/err.h"

/*
 * net_memif in zero-copy mode corrupts traffic when one payload mbuf is chained under several
 * frames (measured: the peer's frames arrive as runts within a second); its copy mode and the
 * physical NIC drivers handle shared segments, as DPDK's ipv4_multicast example relies on.
 */
static int chain_unsafe(const struct rte_eth_dev_info *info)
{
	const struct rte_devargs *da;

	if (strcmp(info->driver_name, "net_memif") != 0)
		return 0;
	da = rte_dev_devargs(info->device);
	return da && da->args && strstr(da->args, "zero-copy=yes") != NULL;
}

static int port_start(uint16_t port, uint16_t n_queues, const struct rly_relay_opts *o,
		      struct rte_mempool *pool, struct rte_ether_addr *mac, uint8_t *chain)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = (uint16_t)o->rx_desc, nb_txd = (uint16_t)o->tx_desc;
	int socket = rte_eth_dev_socket_id(port);
	int rc;

	if (socket < 0)
		socket = 0;
	rc = rte_eth_dev_info_get(port, &info);
	if (rc < 0)
		return rly_err_set(-rc, "port %u: cannot read device info: %s", port, strerror(-rc));
	if (n_queues > info.max_rx_queues || n_queues > info.max_tx_queues)
		return rly_err_set(EINVAL,
				   "port %u (%s) has at most %u rx / %u tx queues but the relay runs %u "
				   "workers: use fewer worker lcores (-l), or give the device more "
				   "queues (net_af_xdp: queue_count=N; net_af_packet: qpairs=N; "
				   "net_memif and net_null: one worker)",
				   port, info.driver_name, info.max_rx_queues, info.max_tx_queues, n_queues);

	memset(&conf, 0, sizeof(conf));
	if (n_queues > 1) {
		uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		if (hf) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
		} else {
			fprintf(stderr,
				"relay: warning: port %u (%s) has no RSS: the device alone decides which "
				"of its %u queues a frame lands on\n",
				port, info.driver_name, n_queues);
		}
	}
	if (info.max_mtu >= o->mtu && info.max_mtu != UINT16_MAX)
		conf.rxmode.mtu = o->mtu;
	*chain = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0 && !chain_unsafe(&info);
	if (*chain)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

	rc = rte_eth_dev_configure(port, n_queues, n_queues, &conf);
	if (rc < 0)
		return rly_err_set(-rc, "port %u (%s): configure %u queues: %s", port, info.driver_name,
				   n_queues, strerror(-rc));
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (rc < 0)
		return rly_err_set(-rc, "port %u: descriptor counts: %s", port, strerror(-rc));
	for (uint16_t q = 0; q < n_queues; q++) {
		rc = rte_eth_rx_queue_setup(port, q, nb_rxd, (unsigned)socket, NULL, pool);
		if (rc < 0)
			return rly_err_set(-rc, "port %u: rx queue %u: %s", port, q, strerror(-rc));
		rc = rte_eth_tx_queue_setup(port, q, nb_txd, (unsigned)socket, NULL);
		if (rc < 0)
			return rly_err_set(-rc, "port %u: tx queue %u: %s", port, q, strerror(-rc));
	}
	rc = rte_eth_dev_start(port);
	if (rc < 0)
		return rly_err_set(-rc, "port %u (%s): start: %s", port, info.driver_name, strerror(-rc));
	rc = rte_eth_macaddr_get(port, mac);
	if (rc < 0)
		return rly_err_set(-rc, "port %u: MAC address: %s", port, strerror(-rc));
	char macs[RTE_ETHER_ADDR_FMT_SIZE];
	rte_ether_format_addr(macs, sizeof(macs), mac);
	fprintf(stderr, "relay: port %u: %s %s, %u queue pair%s, rss %s, chained tx %s\n", port,
		info.driver_name, macs, n_queues, n_queues == 1 ? "" : "s",
		conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? "on" : "off",
		*chain ? "yes" : chain_unsafe(&info) ? "off (memif zero-copy mishandles shared segments)"
						     : "no (the driver cannot)");
	return 0;
}

int rly_ports_start(uint16_t n_ports, uint16_t n_queues, const struct rly_relay_opts *o,
		    struct rte_mempool *pool, struct rte_ether_addr *macs, uint8_t *chain)
{
	for (uint16_t p = 0; p < n_ports; p++) {
		if (!rte_eth_dev_is_valid_port(p))
			return rly_err_set(ENODEV, "port ids are not contiguous: port %u is missing", p);
		int rc = port_start(p, n_queues, o, pool, &macs[p], &chain[p]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void rly_ports_stop(uint16_t n_ports)
{
	for (uint16_t p = 0; p < n_ports; p++) {
		rte_eth_dev_stop(p);
		rte_eth_dev_close(p);
	}
}
