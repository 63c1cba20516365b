/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Creating the shared-memory object and its rings. rte_ring_init() on memory we mapped ourselves
 * needs no EAL: the ring header holds indices and sizes, no pointers, so each process can map the
 * object anywhere (../shared/notes/dpdk-on-debian12.md, section 5).
 */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_version.h>

#include "clock.h"
#include "err.h"

#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

static int ring_size(uint32_t esize, uint32_t slots, uint64_t *out, const char *what)
{
	ssize_t sz;

	if (slots == 0 || (slots & (slots - 1)) != 0)
		return rly_err_set(EINVAL, "%s ring: %u slots is not a power of two", what, slots);
	sz = rte_ring_get_memsize_elem(esize, slots);
	if (sz < 0)
		return rly_err_set(EINVAL, "%s ring: cannot size %u slots of %u bytes", what, slots, esize);
	*out = ALIGN_UP((uint64_t)sz, 64);
	return 0;
}

static int init_ring(void *mem, const char *name, uint32_t slots)
{
	int rc = rte_ring_init(mem, name, slots, RING_F_SP_ENQ | RING_F_SC_DEQ);
	return rc < 0 ? rly_err_set(-rc, "rte_ring_init %s: %s", name, strerror(-rc)) : 0;
}

int rly_shm_create(struct rly_shm *s, const char *instance, const struct rly_shm_sizes *z)
{
	struct rly_shm_header *h;
	uint64_t cmd_sz, ev_sz, punt_sz, tx_sz, off, dedup_stride = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (z->n_workers == 0 || z->n_workers > RLY_SHM_MAX_WORKERS)
		return rly_err_set(EINVAL, "%u workers: the shm ABI allows 1-%u", z->n_workers,
				   RLY_SHM_MAX_WORKERS);
	rc = rly_shm_name(s->name, sizeof(s->name), instance);
	if (rc < 0)
		return rc;
	if ((rc = ring_size(sizeof(struct rly_cmd), z->cmd_slots, &cmd_sz, "cmd")) < 0 ||
	    (rc = ring_size(sizeof(struct rly_event), z->event_slots, &ev_sz, "event")) < 0 ||
	    (rc = ring_size(sizeof(struct rly_pkt_rec), z->punt_slots, &punt_sz, "punt")) < 0 ||
	    (rc = ring_size(sizeof(struct rly_pkt_rec), z->tx_slots, &tx_sz, "tx")) < 0)
		return rc;
	if (z->dedup_chains) {
		if ((z->dedup_chains & (z->dedup_chains - 1)) != 0 || z->dedup_window == 0 ||
		    (z->dedup_window & (z->dedup_window - 1)) != 0)
			return rly_err_set(EINVAL, "dedup region: %u chains of %u slots: both must be "
						   "powers of two", z->dedup_chains, z->dedup_window);
		dedup_stride = RLY_DEDUP_STRIDE(z->dedup_window);
	}
	if (z->hist_chains &&
	    ((z->hist_bytes & (z->hist_bytes - 1)) != 0 || z->hist_bytes < 8192 ||
	     z->hist_bytes > (1ull << 36) || z->hist_index < 1024 ||
	     (z->hist_index & (z->hist_index - 1)) != 0 || z->hist_chains > (1u << 20)))
		return rly_err_set(EINVAL,
				   "history: %u slots of %llu bytes and %u index entries: bytes must be "
				   "a power of two from 8 KiB to 64 GiB, entries a power of two from 1024",
				   z->hist_chains, (unsigned long long)z->hist_bytes, z->hist_index);

	/* A live relay keeps its object; a dead one's leftover is replaced. */
	s->fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL, 0660);
	if (s->fd < 0 && errno == EEXIST) {
		struct rly_shm old;
		if (rly_shm_attach(&old, instance, 0) == 0) {
			pid_t pid = rly_shm_hdr(&old)->relay_pid;
			rly_shm_close(&old);
			return rly_err_set(EBUSY,
					   "relay instance '%s' is already running (pid %d): stop it, or choose "
					   "another --instance",
					   instance, pid);
		}
		shm_unlink(s->name);
		s->fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL, 0660);
	}
	if (s->fd < 0)
		return rly_err_set(errno, "shm_open /dev/shm%s: %s", s->name, strerror(errno));
	s->owner = 1;
	s->writable = 1;

	off = sizeof(struct rly_shm_header);
	uint64_t counters_off = off;
	off += (uint64_t)(z->n_workers + 2) * sizeof(struct rly_ctr_block);
	uint64_t cmd_off = ALIGN_UP(off, 64);
	uint64_t ev_off = cmd_off + cmd_sz;
	uint64_t punt_off = ev_off + ev_sz;
	uint64_t tx_off = punt_off + (uint64_t)z->n_workers * punt_sz;
	/* Chains are whole cache lines: workers on different cores claim neighbouring ones. */
	uint64_t dedup_off = ALIGN_UP(tx_off + tx_sz, 64);
	uint64_t hist_off = ALIGN_UP(dedup_off + (uint64_t)z->dedup_chains * dedup_stride, 64);
	uint64_t hist_stride = z->hist_chains ? RLY_HIST_STRIDE(z->hist_index, z->hist_bytes) : 0;
	s->size = (size_t)(hist_off + (uint64_t)z->hist_chains * hist_stride);

	if (ftruncate(s->fd, (off_t)s->size) < 0) {
		rc = rly_err_set(errno, "ftruncate /dev/shm%s to %zu bytes: %s", s->name, s->size,
				 strerror(errno));
		goto fail;
	}
	s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
	if (s->base == MAP_FAILED) {
		s->base = NULL;
		rc = rly_err_set(errno, "mmap /dev/shm%s: %s", s->name, strerror(errno));
		goto fail;
	}

	h = rly_shm_hdr(s);
	h->header_size = sizeof(*h);
	h->total_size = s->size;
	h->ring_impl = RTE_VERSION;
	h->n_workers = z->n_workers;
	h->n_blocks = z->n_workers + 2;
	h->ctr_slots = RLY_CTR_SLOTS;
	h->counters_off = counters_off;
	h->cmd_ring_off = cmd_off;
	h->event_ring_off = ev_off;
	h->punt_ring_off = punt_off;
	h->punt_ring_stride = punt_sz;
	h->tx_ring_off = tx_off;
	h->cmd_ring_slots = z->cmd_slots;
	h->event_ring_slots = z->event_slots;
	h->punt_ring_slots = z->punt_slots;
	h->tx_ring_slots = z->tx_slots;
	h->cmd_rec_size = sizeof(struct rly_cmd);
	h->event_rec_size = sizeof(struct rly_event);
	h->pkt_rec_size = sizeof(struct rly_pkt_rec);
	h->dedup_off = dedup_off;
	h->dedup_stride = dedup_stride;
	h->dedup_chains = z->dedup_chains;
	h->dedup_window = z->dedup_window;
	h->hist_off = hist_off;
	h->hist_chains = z->hist_chains;
	h->hist_index = z->hist_chains ? z->hist_index : 0;
	h->hist_bytes = z->hist_chains ? z->hist_bytes : 0;
	h->hist_stride = hist_stride;
	h->relay_pid = getpid();
	h->start_realtime_ns = rly_real_ns();
	snprintf(h->instance, sizeof(h->instance), "%s", instance);

	if ((rc = init_ring(rly_shm_cmd_ring(s), "rly_cmd", z->cmd_slots)) < 0 ||
	    (rc = init_ring(rly_shm_event_ring(s), "rly_event", z->event_slots)) < 0 ||
	    (rc = init_ring(rly_shm_tx_ring(s), "rly_tx", z->tx_slots)) < 0)
		goto fail;
	for (uint32_t w = 0; w < z->n_workers; w++) {
		char name[32];
		snprintf(name, sizeof(name), "rly_punt%u", w);
		if ((rc = init_ring(rly_shm_punt_ring(s, w), name, z->punt_slots)) < 0)
			goto fail;
	}
	__atomic_store_n(&h->state, RLY_SHM_STATE_STARTING, __ATOMIC_RELAXED);
	h->abi_version = RLY_SHM_ABI_VERSION;
	/* Attachers test the magic first: publish it last, after everything it vouches for. */
	__atomic_store_n(&h->magic, RLY_SHM_MAGIC, __ATOMIC_RELEASE);
	return 0;
fail:
	rly_shm_close(s);
	return rc;
}

/* A ring of @p slots elements at @p off must end by @p end. */
static int ring_fits(uint64_t off, uint32_t esize, uint32_t slots, uint64_t end)
{
	ssize_t sz;

	if (slots == 0 || (slots & (slots - 1)) != 0)
		return 0;
	sz = rte_ring_get_memsize_elem(esize, slots);
	return sz > 0 && off <= end && (uint64_t)sz <= end - off;
}

/*
 * The dedup region: whole chains of the advertised stride, after the tx ring, inside the object.
 * No region at all is dedup_chains 0. Checked with divisions, never a product that could wrap.
 */
static int dedup_fits(const struct rly_shm_header *h, uint64_t size)
{
	uint64_t tx_end = h->tx_ring_off + (uint64_t)rte_ring_get_memsize_elem(h->pkt_rec_size,
										h->tx_ring_slots);

	if (h->dedup_chains == 0)
		return h->dedup_off <= size;
	if ((h->dedup_chains & (h->dedup_chains - 1)) != 0 || h->dedup_window == 0 ||
	    (h->dedup_window & (h->dedup_window - 1)) != 0 ||
	    h->dedup_stride != RLY_DEDUP_STRIDE(h->dedup_window) ||
	    h->dedup_off % 64 != 0 || h->dedup_off < tx_end || h->dedup_off > size)
		return 0;
	return (size - h->dedup_off) / h->dedup_stride >= h->dedup_chains;
}

/* The history: hist_chains slots of the advertised stride, after the dedup region, inside the
 * object; none is 0 slots. */
static int hist_fits(const struct rly_shm_header *h, uint64_t size)
{
	if (h->hist_chains == 0)
		return 1;
	if ((h->hist_bytes & (h->hist_bytes - 1)) != 0 || h->hist_bytes < 8192 ||
	    h->hist_bytes > (1ull << 36) || h->hist_index < 1024 ||
	    (h->hist_index & (h->hist_index - 1)) != 0 || h->hist_index > (1u << 30) ||
	    h->hist_stride != RLY_HIST_STRIDE(h->hist_index, h->hist_bytes) ||
	    h->hist_off % 64 != 0 || h->hist_off < h->dedup_off || h->hist_off > size)
		return 0;
	return (size - h->hist_off) / h->hist_stride >= h->hist_chains;
}

int rly_shm_check_rings(const struct rly_shm *s)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);

	if (!ring_fits(h->cmd_ring_off, h->cmd_rec_size, h->cmd_ring_slots, h->event_ring_off) ||
	    !ring_fits(h->event_ring_off, h->event_rec_size, h->event_ring_slots, h->punt_ring_off) ||
	    !ring_fits(h->punt_ring_off, h->pkt_rec_size, h->punt_ring_slots,
		       h->punt_ring_off + h->punt_ring_stride) ||
	    !ring_fits(h->tx_ring_off, h->pkt_rec_size, h->tx_ring_slots, s->size))
		return rly_err_set(EPROTO, "relay instance '%s': shm ring sizes are inconsistent",
				   h->instance);
	if (!dedup_fits(h, s->size))
		return rly_err_set(EPROTO,
				   "relay instance '%s': shm dedup region (%u chains of %u slots at offset "
				   "%llu) does not fit the object",
				   h->instance, h->dedup_chains, h->dedup_window,
				   (unsigned long long)h->dedup_off);
	if (!hist_fits(h, s->size))
		return rly_err_set(EPROTO,
				   "relay instance '%s': shm history (%u slots of %llu bytes at offset "
				   "%llu) does not fit the object",
				   h->instance, h->hist_chains, (unsigned long long)h->hist_stride,
				   (unsigned long long)h->hist_off);
	if (h->ring_impl != RTE_VERSION)
		return rly_err_set(EPROTO,
				   "relay instance '%s' laid out its rings with DPDK %u.%u but this program "
				   "uses DPDK %u.%u: rebuild both from the same tree",
				   h->instance, h->ring_impl >> 24, (h->ring_impl >> 16) & 0xff,
				   RTE_VERSION >> 24, (RTE_VERSION >> 16) & 0xff);
	return 0;
}

static struct rte_ring *at(const struct rly_shm *s, uint64_t off)
{
	return (struct rte_ring *)((uint8_t *)s->base + off);
}

struct rte_ring *rly_shm_cmd_ring(const struct rly_shm *s)
{
	return at(s, rly_shm_hdr(s)->cmd_ring_off);
}

struct rte_ring *rly_shm_event_ring(const struct rly_shm *s)
{
	return at(s, rly_shm_hdr(s)->event_ring_off);
}

struct rte_ring *rly_shm_punt_ring(const struct rly_shm *s, unsigned worker)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	return at(s, h->punt_ring_off + (uint64_t)worker * h->punt_ring_stride);
}

struct rte_ring *rly_shm_tx_ring(const struct rly_shm *s)
{
	return at(s, rly_shm_hdr(s)->tx_ring_off);
}

struct rly_dedup_chain *rly_shm_dedup_chain(const struct rly_shm *s, uint32_t i)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	return (struct rly_dedup_chain *)((uint8_t *)s->base + h->dedup_off + i * h->dedup_stride);
}

struct rly_hist_chain *rly_shm_hist_base(const struct rly_shm *s)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	return h->hist_chains ? (struct rly_hist_chain *)((uint8_t *)s->base + h->hist_off) : NULL;
}
