/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the relay's option parser (relay/options.c): the input is tried once as the
 * contents of a --config file and once as command-line tokens (split at NUL bytes). Whatever it is,
 * the parser must either refuse it with a message or accept values inside every documented range.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "relay/options.h"

#define MAX_TOKENS 64

static FILE *devnull;

static void check(const struct rly_relay_opts *o, int rc)
{
	assert(rc == RLY_OPTS_RUN || rc == RLY_OPTS_EXIT || rc == RLY_OPTS_VERSION || rc < 0);
	if (rc != RLY_OPTS_RUN)
		return;
	assert(o->ip_be != 0);
	assert(o->udp_port >= 1 && o->udp_port <= 65535);
	assert(o->mtu >= 576 && o->mtu <= 2000);
	assert(o->batch <= 1 && o->idle <= 1);
	assert(o->punt_ring >= 64 && (o->punt_ring & (o->punt_ring - 1)) == 0);
	assert(o->cmd_ring >= 64 && (o->cmd_ring & (o->cmd_ring - 1)) == 0);
	assert(o->instance[sizeof(o->instance) - 1] == '\0');
	assert(memchr(o->ip, '\0', sizeof(o->ip)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rly_relay_opts o;
	char path[64], *argv[MAX_TOKENS + 2], tokens[4096];
	int fd, argc = 1, rc;

	if (devnull == NULL)
		devnull = fopen("/dev/null", "w");

	/* As a config file. */
	fd = memfd_create("fuzz-config", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	{
		char *cargv[] = {"relay", "--config", path, NULL};
		rc = rly_relay_opts_parse(&o, 3, cargv, devnull);
		check(&o, rc);
	}
	close(fd);

	/* As command-line tokens. */
	if (size >= sizeof(tokens))
		size = sizeof(tokens) - 1;
	memcpy(tokens, data, size);
	tokens[size] = '\0';
	argv[0] = "relay";
	for (size_t i = 0; i < size && argc <= MAX_TOKENS; i++) {
		if (i == 0 || tokens[i - 1] == '\0')
			argv[argc++] = &tokens[i];
	}
	argv[argc] = NULL;
	rc = rly_relay_opts_parse(&o, argc, argv, devnull);
	check(&o, rc);
	return 0;
}
