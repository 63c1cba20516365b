/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The relay's own options (everything after "--"), from the command line and an optional config
 * file of the same keys. One table describes every option: parsing, range checks, the config file
 * and --help all come from it, so they cannot disagree.
 */
#ifndef RLY_RELAY_OPTIONS_H
#define RLY_RELAY_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "relay/shm.h"

struct rly_relay_opts {
	char instance[RLY_INSTANCE_MAX + 1];
	char ip[16];          /* dotted quad as given */
	uint32_t ip_be;
	uint32_t udp_port;
	uint32_t mtu;
	uint32_t batch;       /* 0/1 */
	uint32_t chain_min;   /* 0: never chain */
	uint32_t idle;        /* enum rly_idle_mode */
	uint32_t idle_max_us;
	uint32_t tx_drain_us;
	uint32_t rx_desc;
	uint32_t tx_desc;
	uint32_t mbufs;
	uint32_t max_streams;
	uint32_t max_subs;
	uint32_t punt_ring;
	uint32_t punt_rate;
	uint32_t punt_burst;
	uint32_t cmd_ring;
	uint32_t dedup_chains;
	uint32_t dedup_window;
	uint32_t dedup_idle_s;
	uint32_t history_chains;
	uint32_t history_chain_mb;
	uint32_t history_msgs;
	uint32_t repair_kbs;
	uint32_t repair_burst_kb;
	uint32_t slow_cut_ms;
	uint32_t nak_holdoff_us;
	char config[256];
};

/** Results of parsing that did not fail: go on; --help was printed; --version was asked for. */
#define RLY_OPTS_RUN 0
#define RLY_OPTS_EXIT 1
#define RLY_OPTS_VERSION 2

/**
 * Parse the relay's arguments (argv[0] is the program name; no EAL arguments). Reads --config
 * first, then lets the command line override it. Returns RLY_OPTS_RUN, RLY_OPTS_EXIT (--help was
 * printed to @p out), RLY_OPTS_VERSION (the caller prints rly_relay_version), or a negative errno (-EINVAL, or the config file's open
 * error) with a message that names the fix (rly_err_msg()).
 */
int rly_relay_opts_parse(struct rly_relay_opts *o, int argc, char **argv, FILE *out);

/**
 * Index entries per history slot: the power of two from 1024 up that reaches --history-msgs or
 * the most records --history-chain-mb holds, whichever comes first.
 */
uint32_t rly_relay_hist_index(const struct rly_relay_opts *o);

/** Print the full --help text. */
void rly_relay_usage(FILE *f);

/** Print the one-line version, including the allocator actually in use (relay/version.c). */
void rly_relay_version(FILE *f);

#endif
