/* SPDX-License-Identifier: Apache-2.0 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

int rly_shm_name(char *out, size_t cap, const char *instance)
{
	size_t n = instance ? strlen(instance) : 0;

	if (n == 0 || n > RLY_INSTANCE_MAX ||
	    strspn(instance, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return rly_err_set(EINVAL,
				   "instance name '%s' is invalid: use 1-%u characters of A-Z a-z 0-9 _ -",
				   instance ? instance : "", RLY_INSTANCE_MAX);
	if ((size_t)snprintf(out, cap, "%s%s", RLY_SHM_NAME_PREFIX, instance) >= cap)
		return rly_err_set(ENAMETOOLONG, "instance name '%s' is too long", instance);
	return 0;
}

int rly_pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static int validate(const struct rly_shm *s, const char *instance)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);

	if (s->size < sizeof(*h))
		return rly_err_set(EPROTO, "/dev/shm%s is %zu bytes, too small for a relay header",
				   s->name, s->size);
	if (h->magic != RLY_SHM_MAGIC)
		return rly_err_set(EPROTO, "/dev/shm%s is not a relay shared-memory object (bad magic)",
				   s->name);
	if (h->abi_version != RLY_SHM_ABI_VERSION)
		return rly_err_set(EPROTO,
				   "relay instance '%s' uses shm ABI version %u but this program speaks version %u: "
				   "run tools built from the same source as the relay",
				   instance, h->abi_version, RLY_SHM_ABI_VERSION);
	/*
	 * Every offset is checked against the object with subtractions only, so a hostile or corrupt
	 * header cannot wrap an addition and send a reader outside the mapping (found by fuzz_shm).
	 */
	if (h->header_size != sizeof(*h) || h->total_size != s->size ||
	    h->ctr_slots != RLY_CTR_SLOTS || h->n_workers == 0 ||
	    h->n_workers > RLY_SHM_MAX_WORKERS || h->n_blocks != h->n_workers + 2 ||
	    h->cmd_rec_size != sizeof(struct rly_cmd) || h->event_rec_size != sizeof(struct rly_event) ||
	    h->pkt_rec_size != sizeof(struct rly_pkt_rec) || h->counters_off < sizeof(*h) ||
	    h->counters_off > s->size || h->counters_off % 64 != 0 ||
	    (s->size - h->counters_off) / sizeof(struct rly_ctr_block) < h->n_blocks ||
	    h->cmd_ring_off < h->counters_off + (uint64_t)h->n_blocks * sizeof(struct rly_ctr_block) ||
	    h->event_ring_off <= h->cmd_ring_off || h->punt_ring_off <= h->event_ring_off ||
	    h->punt_ring_stride == 0 || h->tx_ring_off <= h->punt_ring_off ||
	    (h->tx_ring_off - h->punt_ring_off) / h->punt_ring_stride < h->n_workers ||
	    h->tx_ring_off >= s->size || h->n_ports > RLY_SHM_MAX_PORTS)
		return rly_err_set(EPROTO, "relay instance '%s': shm header is inconsistent", instance);
	if (!rly_pid_alive(h->relay_pid))
		return rly_err_set(ESRCH,
				   "relay instance '%s' (pid %d) is not running; /dev/shm%s is left over: "
				   "start the relay (it replaces stale objects)",
				   instance, h->relay_pid, s->name);
	return 0;
}

int rly_shm_attach(struct rly_shm *s, const char *instance, int writable)
{
	struct stat st;
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	rc = rly_shm_name(s->name, sizeof(s->name), instance);
	if (rc < 0)
		return rc;
	s->fd = shm_open(s->name, writable ? O_RDWR : O_RDONLY, 0);
	if (s->fd < 0) {
		if (errno == ENOENT)
			return rly_err_set(ENOENT,
					   "no relay running as instance '%s' (/dev/shm%s not found): "
					   "start relay first, or pass the relay's --instance",
					   instance, s->name);
		return rly_err_set(errno, "shm_open /dev/shm%s: %s", s->name, strerror(errno));
	}
	if (fstat(s->fd, &st) < 0) {
		rc = rly_err_set(errno, "fstat /dev/shm%s: %s", s->name, strerror(errno));
		goto fail;
	}
	s->size = (size_t)st.st_size;
	if (s->size == 0) {
		rc = rly_err_set(EAGAIN, "relay instance '%s' is still starting; retry", instance);
		goto fail;
	}
	s->base = mmap(NULL, s->size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		rc = rly_err_set(errno, "mmap /dev/shm%s: %s", s->name, strerror(errno));
		goto fail;
	}
	s->writable = writable;
	rc = validate(s, instance);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	rly_shm_close(s);
	return rc;
}

void rly_shm_close(struct rly_shm *s)
{
	if (s->base)
		munmap(s->base, s->size);
	if (s->fd >= 0)
		close(s->fd);
	if (s->owner)
		shm_unlink(s->name);
	s->base = NULL;
	s->fd = -1;
	s->owner = 0;
}

struct rly_ctr_block *rly_shm_ctr(const struct rly_shm *s, unsigned i)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	return (struct rly_ctr_block *)((uint8_t *)s->base + h->counters_off) + i;
}

uint64_t rly_shm_ctr_sum(const struct rly_shm *s, unsigned slot)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	uint64_t sum = 0;

	for (unsigned i = 0; i < h->n_blocks; i++)
		sum += __atomic_load_n(&rly_shm_ctr(s, i)->v[slot], __ATOMIC_RELAXED);
	return sum;
}
