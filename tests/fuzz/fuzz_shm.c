/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the parsers in common/shm.c: instance names (rly_shm_name) and the
 * shared-memory header that relay-control and relay-stat trust once rly_shm_attach() accepted it.
 *
 * Input: byte 0 is a name length n, bytes 1..n the instance name, then one mode byte. The rest
 * describes the contents of a real shared-memory object /dev/shm/relay.fz<pid>, attached read-only
 * as a tool would attach it:
 *  - mode even: the rest is the object, byte for byte;
 *  - mode odd: the object is a consistent header (one worker, three counter blocks) and the rest is
 *    a list of 9-byte patches (field selector, 64-bit big-endian value) applied to its numeric
 *    fields or to the object size, so the fuzzer spends its time on the validator's arithmetic
 *    rather than on finding the magic.
 * The header's relay_pid is replaced by ours so the fuzzer gets past the liveness check. Whatever
 * rly_shm_attach() accepts must then be safe to read: every counter block must lie inside the
 * mapping, and every counter slot of every block is summed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char instance[32];
static char shm_path[64];

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static void check_name(const uint8_t *data, size_t n)
{
	char name[256], out[64];
	int want_ok = n >= 1 && n <= RLY_INSTANCE_MAX;
	int rc;

	memcpy(name, data, n);
	name[n] = '\0';
	n = strlen(name); /* the name ends at its first NUL, as a C caller's would */
	want_ok = n >= 1 && n <= RLY_INSTANCE_MAX;
	for (size_t i = 0; i < n; i++)
		want_ok &= name_char_ok(name[i]);
	rc = rly_shm_name(out, sizeof(out), name);
	if ((rc == 0) != want_ok) {
		fprintf(stderr, "fuzz_shm: rly_shm_name('%s') returned %d\n", name, rc);
		abort();
	}
	if (rc == 0 && (strncmp(out, RLY_SHM_NAME_PREFIX, strlen(RLY_SHM_NAME_PREFIX)) != 0 ||
			strcmp(out + strlen(RLY_SHM_NAME_PREFIX), name) != 0)) {
		fprintf(stderr, "fuzz_shm: rly_shm_name('%s') made '%s'\n", name, out);
		abort();
	}
	/* A buffer one byte too small must be refused, not overrun. */
	if (rc == 0) {
		char small[64];
		if (rly_shm_name(small, strlen(out), name) == 0) {
			fprintf(stderr, "fuzz_shm: rly_shm_name('%s') fit in a short buffer\n", name);
			abort();
		}
	}
}

/* Numeric header fields a patch may set: offset and width. */
#define F(field) {offsetof(struct rly_shm_header, field), sizeof(((struct rly_shm_header *)0)->field)}
static const struct {
	size_t off, width;
} fields[] = {
	F(magic),          F(abi_version),      F(header_size),     F(total_size),
	F(ring_impl),      F(n_workers),        F(n_blocks),        F(ctr_slots),
	F(counters_off),   F(cmd_ring_off),     F(event_ring_off),  F(punt_ring_off),
	F(punt_ring_stride), F(tx_ring_off),    F(cmd_ring_slots),  F(event_ring_slots),
	F(punt_ring_slots), F(tx_ring_slots),   F(cmd_rec_size),    F(event_rec_size),
	F(pkt_rec_size),   F(n_ports),          F(dgram_max),
};
#undef F
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))
#define MAX_OBJECT (1u << 20)

/* A header that rly_shm_attach() accepts, then @p patches applied; returns the object size. */
static size_t template_object(uint8_t *obj, const uint8_t *patches, size_t n)
{
	struct rly_shm_header h;
	size_t size = 4096 + 3 * sizeof(struct rly_ctr_block) + 4096;
	int total_patched = 0;

	memset(&h, 0, sizeof(h));
	h.magic = RLY_SHM_MAGIC;
	h.abi_version = RLY_SHM_ABI_VERSION;
	h.header_size = sizeof(h);
	h.n_workers = 1;
	h.n_blocks = 3;
	h.ctr_slots = RLY_CTR_SLOTS;
	h.counters_off = 4096;
	h.tx_ring_off = 4096 + 3 * sizeof(struct rly_ctr_block);
	h.cmd_rec_size = sizeof(struct rly_cmd);
	h.event_rec_size = sizeof(struct rly_event);
	h.pkt_rec_size = sizeof(struct rly_pkt_rec);
	memcpy(obj, &h, sizeof(h));
	for (size_t i = 0; i + 9 <= n; i += 9) {
		uint64_t v = 0;
		for (unsigned b = 1; b < 9; b++)
			v = (v << 8) | patches[i + b];
		unsigned sel = patches[i] % (N_FIELDS + 1);
		total_patched |= sel < N_FIELDS &&
				 fields[sel].off == offsetof(struct rly_shm_header, total_size);
		if (sel == N_FIELDS) {
			size = (size_t)(v % MAX_OBJECT);
			continue;
		}
		/* Little-endian host: the low bytes of v are the field's value. */
		memcpy(obj + fields[sel].off, &v, fields[sel].width);
	}
	/* The header says how big the object is unless a patch said otherwise. */
	if (!total_patched) {
		uint64_t total = size;
		memcpy(obj + offsetof(struct rly_shm_header, total_size), &total, sizeof(total));
	}
	return size;
}

static void check_attach(const uint8_t *data, size_t size)
{
	static uint8_t obj[MAX_OBJECT];
	struct rly_shm s;
	uint64_t sum = 0;
	int fd, rc;

	if (size == 0)
		return;
	if (data[0] & 1) {
		size_t n = template_object(obj, data + 1, size - 1);
		data = obj;
		size = n;
	} else {
		data++;
		size--;
	}

	if (!instance[0]) {
		snprintf(instance, sizeof(instance), "fz%d", (int)getpid());
		snprintf(shm_path, sizeof(shm_path), "%s%s", RLY_SHM_NAME_PREFIX, instance);
	}
	/* Created and removed around each attach, so a crash below leaves nothing in /dev/shm. */
	fd = shm_open(shm_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || (size && pwrite(fd, data, size, 0) < 0)) {
		perror("fuzz_shm: writing the object");
		abort();
	}
	if (size >= sizeof(struct rly_shm_header)) {
		int32_t pid = (int32_t)getpid();
		if (pwrite(fd, &pid, sizeof(pid), offsetof(struct rly_shm_header, relay_pid)) < 0)
			abort();
	}
	rc = rly_shm_attach(&s, instance, 0);
	shm_unlink(shm_path);
	close(fd);
	if (rc != 0)
		return;
	/* What the attacher now trusts: n_blocks counter blocks at counters_off, inside the object. */
	const struct rly_shm_header *h = rly_shm_hdr(&s);
	if (h->counters_off > s.size ||
	    (s.size - h->counters_off) / sizeof(struct rly_ctr_block) < h->n_blocks) {
		fprintf(stderr,
			"fuzz_shm: attach accepted counters outside the object: counters_off %llu, "
			"%u blocks, object %zu bytes\n",
			(unsigned long long)h->counters_off, h->n_blocks, s.size);
		abort();
	}
	for (unsigned slot = 0; slot < RLY_CTR_SLOTS; slot++)
		sum += rly_shm_ctr_sum(&s, slot);
	/* Keep the reads. */
	__asm__ volatile("" : : "r"(sum));
	rly_shm_close(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	if (size == 0)
		return 0;
	n = data[0];
	if (n > size - 1)
		n = size - 1;
	check_name(data + 1, n);
	check_attach(data + 1 + n, size - 1 - n);
	return 0;
}
