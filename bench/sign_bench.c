/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign-bench: what publisher signing costs one core, and what batching signatures could save.
 *
 *   taskset -c 1 sign-bench [SECONDS_PER_RUN]        (default 0.5; every figure is best of 3)
 *
 * Measures, for 32 B, 64 B and 1 KiB payloads:
 *   (a) rly_msg_sign per second (Ed25519 over the 96-byte header and the payload);
 *   (b) rly_msg_verify per second, with ttl 0 (in place) and ttl != 0 (through a stack copy);
 *   (c) the whole publisher path, rly_pub_offer + rly_pub_flush every 64 messages, to a UDP sink
 *       on 127.0.0.1 that never reads (the kernel drops at the sink's full buffer, which costs
 *       the sender nothing more), with the datagram size the library picks (1472 bytes);
 *   (d) the pieces of a batched scheme: BLAKE2b-256 of one message (header + payload), of a
 *       64-byte Merkle node, and one Ed25519 signature or verification over a list of N 32-byte
 *       hashes; plus that scheme's inner loop run for real (hash N messages, sign the list), to
 *       check the estimate 1 / (sign + N * hash) against a measurement. That loop is a
 *       micro-benchmark of the arithmetic, not a protocol: nothing here puts it on the wire;
 *   (f) rly_msg_encrypt and rly_msg_decrypt alone (XChaCha20-Poly1305 of the payload, the
 *       96-byte header as associated data), one message at a time;
 *   (g) the encrypting publisher path: (c) with opts.encrypt (encrypt, then sign), including the
 *       key holder's service (one non-blocking recvmmsg at most once a millisecond), run by run
 *       alternately with (c) again: what encryption adds to a signed message.
 *
 * Best of 3 because this VM is shared: the slowest runs measure the neighbours, the fastest the
 * code. Figures are per second of one core's wall time; run it pinned (taskset) on an idle CPU.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "relay/client.h"
#include "security/e2e.h"
#include "security/msgsig.h"

#define RUNS 3
#define HASH_LEN 32u
#define BATCH_MAX 256u

static const unsigned sizes[] = {32, 64, 1024};
static double run_s = 0.5;

typedef uint64_t (*op_fn)(void *arg, uint64_t iters);

/*
 * Operations per second of @p op, best of RUNS: each run calls it in chunks until run_s has
 * passed, so the clock is read once per chunk, not once per operation.
 */
static double best_rate_of(op_fn op, void *arg, uint64_t chunk, int runs)
{
	double best = 0;

	op(arg, chunk); /* warm caches and libsodium's lazy set-up */
	for (int r = 0; r < runs; r++) {
		uint64_t t0 = rly_mono_ns(), done = 0, t;
		do {
			done += op(arg, chunk);
			t = rly_mono_ns();
		} while ((double)(t - t0) < run_s * 1e9);
		double rate = (double)done * 1e9 / (double)(t - t0);
		if (rate > best)
			best = rate;
	}
	return best;
}

static double best_rate(op_fn op, void *arg, uint64_t chunk)
{
	return best_rate_of(op, arg, chunk, RUNS);
}

/* ------------------------------------------------------------------ (a), (b) */

struct msg_arg {
	struct rly_identity id;
	uint8_t buf[RLY_WIRE_MAX_DGRAM];
	unsigned payload;
	volatile int sink;
};

static struct rly_wire_msg_hdr *msg_hdr(struct msg_arg *a)
{
	return (struct rly_wire_msg_hdr *)a->buf;
}

static void msg_init(struct msg_arg *a, unsigned payload, uint8_t ttl)
{
	struct rly_wire_msg_hdr *h = msg_hdr(a);

	memset(a->buf, 0, sizeof(a->buf));
	a->payload = payload;
	randombytes_buf(h->stream_key, sizeof(h->stream_key));
	rly_be32_store(&h->chain, 7);
	memcpy(h->publisher, a->id.pk, RLY_ID_LEN);
	rly_be64_store(&h->seq, 1);
	rly_be16_store(&h->payload_len, (uint16_t)payload);
	randombytes_buf(a->buf + sizeof(*h), payload);
	rly_msg_sign(&a->id, h);
	h->ttl = ttl;
}

static uint64_t op_sign(void *arg, uint64_t n)
{
	struct msg_arg *a = arg;
	struct rly_wire_msg_hdr *h = msg_hdr(a);

	for (uint64_t i = 0; i < n; i++) {
		/* A new sequence number each time, as a publisher signs. */
		rly_be64_store(&h->seq, i + 1);
		rly_msg_sign(&a->id, h);
	}
	return n;
}

static uint64_t op_verify(void *arg, uint64_t n)
{
	struct msg_arg *a = arg;
	int ok = 0;

	for (uint64_t i = 0; i < n; i++)
		ok += rly_msg_verify(msg_hdr(a));
	a->sink = ok;
	return n;
}

/* ------------------------------------------------------------------ (c) */

struct path_arg {
	rly_pub_t *p;
	uint8_t payload[1024];
	unsigned size;
	uint64_t failures;
};

static uint64_t op_path(void *arg, uint64_t n)
{
	struct path_arg *a = arg;

	for (uint64_t i = 0; i < n; i++) {
		if (rly_pub_offer(a->p, a->payload, a->size) < 0)
			a->failures++;
		if ((i & 63) == 63 && rly_pub_flush(a->p) < 0)
			a->failures++;
	}
	if (rly_pub_flush(a->p) < 0)
		a->failures++;
	return n;
}

/* ------------------------------------------------------------------ (f) */

struct aead_arg {
	uint8_t buf[RLY_WIRE_MAX_DGRAM];
	uint8_t out[RLY_WIRE_MAX_DGRAM];
	uint8_t key[RLY_GROUP_KEY_LEN];
	unsigned payload;
	volatile int sink;
};

/* A header as an encrypting publisher writes it, and @p payload bytes of plaintext. */
static void aead_init(struct aead_arg *a, unsigned payload)
{
	struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)a->buf;

	memset(a->buf, 0, sizeof(a->buf));
	a->payload = payload;
	randombytes_buf(a->key, sizeof(a->key));
	randombytes_buf(h->stream_key, sizeof(h->stream_key));
	rly_be32_store(&h->chain, 7);
	rly_be64_store(&h->seq, 1);
	rly_be32_store(&h->key_id, RLY_KEY_ID(1, 0));
	rly_be16_store(&h->flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
	rly_be16_store(&h->payload_len, (uint16_t)(payload + RLY_MSG_TAG_LEN));
	rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
	randombytes_buf(a->buf + sizeof(*h), payload);
	rly_msg_encrypt(h, a->key);
}

static uint64_t op_encrypt(void *arg, uint64_t n)
{
	struct aead_arg *a = arg;
	struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)a->buf;

	for (uint64_t i = 0; i < n; i++) {
		/* A new sequence number (so a new nonce) each time, as a publisher encrypts. */
		rly_be64_store(&h->seq, i + 2);
		rly_msg_encrypt(h, a->key);
	}
	return n;
}

static uint64_t op_decrypt(void *arg, uint64_t n)
{
	struct aead_arg *a = arg;
	int ok = 0;

	for (uint64_t i = 0; i < n; i++)
		ok += rly_msg_decrypt((const struct rly_wire_msg_hdr *)a->buf, a->key, a->out) ==
		      (int)a->payload;
	a->sink = ok;
	return n;
}

/* ------------------------------------------------------------------ (d) */

struct hash_arg {
	uint8_t in[2048];
	size_t len;
	uint8_t out[HASH_LEN];
};

static uint64_t op_hash(void *arg, uint64_t n)
{
	struct hash_arg *a = arg;

	for (uint64_t i = 0; i < n; i++) {
		a->in[0] = (uint8_t)i;
		crypto_generichash(a->out, HASH_LEN, a->in, a->len, NULL, 0);
	}
	return n;
}

struct list_arg {
	struct rly_identity id;
	uint8_t list[BATCH_MAX * HASH_LEN];
	uint8_t sig[RLY_WIRE_SIG_LEN];
	unsigned n;
	volatile int sink;
};

static uint64_t op_list_sign(void *arg, uint64_t n)
{
	struct list_arg *a = arg;

	for (uint64_t i = 0; i < n; i++) {
		a->list[0] = (uint8_t)i;
		crypto_sign_detached(a->sig, NULL, a->list, (size_t)a->n * HASH_LEN, a->id.sk);
	}
	return n;
}

static uint64_t op_list_verify(void *arg, uint64_t n)
{
	struct list_arg *a = arg;
	int ok = 0;

	for (uint64_t i = 0; i < n; i++)
		ok += crypto_sign_verify_detached(a->sig, a->list, (size_t)a->n * HASH_LEN,
						  a->id.pk) == 0;
	a->sink = ok;
	return n;
}

/* The batched scheme's inner loop for real: hash N messages, sign the list of hashes. Returns
 * messages, so the rate is messages per second. */
struct batch_arg {
	struct list_arg l;
	struct msg_arg m;
};

static uint64_t op_batch(void *arg, uint64_t n)
{
	struct batch_arg *a = arg;
	size_t len = sizeof(struct rly_wire_msg_hdr) + a->m.payload;

	for (uint64_t i = 0; i < n; i++) {
		for (unsigned k = 0; k < a->l.n; k++) {
			rly_be64_store(&msg_hdr(&a->m)->seq, i * a->l.n + k + 1);
			crypto_generichash(a->l.list + (size_t)k * HASH_LEN, HASH_LEN, a->m.buf, len,
					   NULL, 0);
		}
		crypto_sign_detached(a->l.sig, NULL, a->l.list, (size_t)a->l.n * HASH_LEN,
				     a->l.id.sk);
	}
	return n * a->l.n;
}

/* ------------------------------------------------------------------ setup and report */

static void print_setup(void)
{
	cpu_set_t set;
	char model[600] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');
				snprintf(model, sizeof(model), "%s", c ? c + 2 : line);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		fclose(f);
	}
	printf("sign-bench: %s\n", model);
	printf("  affinity:");
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				printf(" %d", c);
	printf("  (run under taskset -c N for one core)\n");
	printf("  libsodium %s, Ed25519 (crypto_sign_detached), BLAKE2b-256 "
	       "(crypto_generichash); %.2f s per run, best of %d runs\n",
	       sodium_version_string(), run_s, RUNS);
}

/* One UDP socket on 127.0.0.1 that receives and never reads. */
static int open_sink(char addr[32])
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		close(fd);
		return -1;
	}
	snprintf(addr, 32, "127.0.0.1:%u", ntohs(a.sin_port));
	return fd;
}

int main(int argc, char **argv)
{
	static struct msg_arg m;
	static struct path_arg pa;
	static struct hash_arg ha;
	static struct batch_arg ba;
	double sign_rate[3], verify_rate[3], hash_ns[3], node_ns, list_sign_ns[BATCH_MAX + 1],
	    list_verify_ns[BATCH_MAX + 1];
	static const unsigned batches[] = {1, 8, 16, 32, 64, 128, 256};
	char sink_addr[32];
	int sink;
	static struct aead_arg ea;

	if (argc > 1)
		run_s = atof(argv[1]);
	if (run_s <= 0 || sodium_init() < 0) {
		fprintf(stderr, "usage: sign-bench [SECONDS_PER_RUN > 0]\n");
		return 2;
	}
	print_setup();
	rly_identity_generate(&m.id);

	printf("\n(a) rly_msg_sign and (b) rly_msg_verify, one message at a time\n");
	printf("  %-8s %14s %10s %16s %16s %10s\n", "payload", "sign/s", "us/sign", "verify/s",
	       "verify/s ttl!=0", "us/verify");
	for (unsigned i = 0; i < 3; i++) {
		double v_ttl;
		msg_init(&m, sizes[i], 0);
		sign_rate[i] = best_rate(op_sign, &m, 256);
		msg_init(&m, sizes[i], 0);
		verify_rate[i] = best_rate(op_verify, &m, 128);
		if (m.sink != 128)
			fprintf(stderr, "sign-bench: verification failed: the figures are void\n");
		msg_init(&m, sizes[i], 5);
		v_ttl = best_rate(op_verify, &m, 128);
		printf("  %-8u %14.0f %10.2f %16.0f %16.0f %10.2f\n", sizes[i], sign_rate[i],
		       1e6 / sign_rate[i], verify_rate[i], v_ttl, 1e6 / verify_rate[i]);
	}

	printf("\n(c) publisher path: rly_pub_offer (signs) + rly_pub_flush every 64, to a UDP sink "
	       "on 127.0.0.1\n");
	sink = open_sink(sink_addr);
	if (sink < 0) {
		perror("sign-bench: sink socket");
		return 1;
	}
	printf("  %-8s %10s %14s %12s %14s\n", "payload", "msgs/dgram", "msgs/s", "us/msg",
	       "us/sign (a)");
	for (unsigned i = 0; i < 3; i++) {
		struct rly_pub_opts o;
		struct rly_pub_stats st;
		double rate;

		memset(&o, 0, sizeof(o));
		o.relay = sink_addr;
		rly_stream_key_from_name("bench/sign", o.stream_key);
		o.identity = &m.id;
		if (rly_pub_create(&pa.p, &o) < 0) {
			fprintf(stderr, "sign-bench: %s\n", rly_client_errmsg());
			return 1;
		}
		pa.size = sizes[i];
		randombytes_buf(pa.payload, sizeof(pa.payload));
		rate = best_rate(op_path, &pa, 1024);
		rly_pub_stats(pa.p, &st);
		printf("  %-8u %10.1f %14.0f %12.2f %14.2f\n", sizes[i],
		       (double)st.msgs / (double)(st.dgrams ? st.dgrams : 1), rate, 1e6 / rate,
		       1e6 / sign_rate[i]);
		if (pa.failures || st.send_errors)
			printf("  (%lu offer/flush failures, %lu send errors: figures are void)\n",
			       (unsigned long)pa.failures, (unsigned long)st.send_errors);
		rly_pub_free(pa.p);
	}
	close(sink);

	printf("\n(d) pieces of a batched signature\n");
	memset(&ha, 0, sizeof(ha));
	for (unsigned i = 0; i < 3; i++) {
		ha.len = sizeof(struct rly_wire_msg_hdr) + sizes[i];
		hash_ns[i] = 1e9 / best_rate(op_hash, &ha, 1024);
		printf("  BLAKE2b-256 of one %u-byte message (96 + %u): %.0f ns\n",
		       (unsigned)ha.len, sizes[i], hash_ns[i]);
	}
	ha.len = 2 * HASH_LEN;
	node_ns = 1e9 / best_rate(op_hash, &ha, 1024);
	printf("  BLAKE2b-256 of a 64-byte Merkle node: %.0f ns\n", node_ns);
	ba.l.id = m.id;
	randombytes_buf(ba.l.list, sizeof(ba.l.list));
	printf("  %-6s %16s %18s\n", "N", "sign list us", "verify list us");
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		unsigned n = batches[b];
		ba.l.n = n;
		list_sign_ns[n] = 1e9 / best_rate(op_list_sign, &ba.l, 64);
		list_verify_ns[n] = 1e9 / best_rate(op_list_verify, &ba.l, 64);
		printf("  %-6u %16.2f %18.2f\n", n, list_sign_ns[n] / 1e3, list_verify_ns[n] / 1e3);
	}

	printf("\n(e) batched signing, estimated as N / (sign(N hashes) + N * hash) and measured "
	       "(hash N messages + sign the list), msgs/s\n");
	printf("  %-6s", "N");
	for (unsigned i = 0; i < 3; i++)
		printf(" %11u B est %10s", sizes[i], "measured");
	printf("\n");
	ba.m.id = m.id;
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		unsigned n = batches[b];
		printf("  %-6u", n);
		for (unsigned i = 0; i < 3; i++) {
			double est = (double)n * 1e9 / (list_sign_ns[n] + n * hash_ns[i]);
			msg_init(&ba.m, sizes[i], 0);
			ba.l.n = n;
			/* About 64 messages between clock reads, as everywhere else. */
			printf(" %15.0f %10.0f", est, best_rate(op_batch, &ba, n < 64 ? 64 / n : 1));
		}
		printf("\n");
	}
	printf("\n  Subscriber side, estimated: N / (verify(N hashes) + N * hash) msgs/s\n");
	printf("  %-6s %12s %12s %12s\n", "N", "32 B", "64 B", "1024 B");
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		unsigned n = batches[b];
		printf("  %-6u", n);
		for (unsigned i = 0; i < 3; i++)
			printf(" %12.0f", (double)n * 1e9 / (list_verify_ns[n] + n * hash_ns[i]));
		printf("\n");
	}
	printf("\n  Merkle root per batch, estimated (N leaves + N-1 nodes + one signature of the "
	       "32-byte root), msgs/s:\n");
	printf("  %-6s %12s %12s %12s\n", "N", "32 B", "64 B", "1024 B");
	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		unsigned n = batches[b];
		printf("  %-6u", n);
		for (unsigned i = 0; i < 3; i++)
			printf(" %12.0f",
			       (double)n * 1e9 /
				   (list_sign_ns[1] + n * hash_ns[i] + (n - 1) * node_ns));
		printf("\n");
	}

	printf("\n(f) rly_msg_encrypt and rly_msg_decrypt (XChaCha20-Poly1305), one message at a "
	       "time\n");
	printf("  %-8s %14s %10s %14s %10s\n", "payload", "encrypt/s", "us/enc", "decrypt/s",
	       "us/dec");
	{
		double enc_rate[3], dec_rate[3];
		for (unsigned i = 0; i < 3; i++) {
			aead_init(&ea, sizes[i]);
			enc_rate[i] = best_rate(op_encrypt, &ea, 1024);
			aead_init(&ea, sizes[i]);
			dec_rate[i] = best_rate(op_decrypt, &ea, 1024);
			if (ea.sink != 1024)
				fprintf(stderr, "sign-bench: decryption failed: the figures are void\n");
			printf("  %-8u %14.0f %10.2f %14.0f %10.2f\n", sizes[i], enc_rate[i],
			       1e6 / enc_rate[i], dec_rate[i], 1e6 / dec_rate[i]);
		}

		char reg[] = "/tmp/sign-bench-registry-XXXXXX";
		printf("\n(g) encrypting publisher path: (c) with opts.encrypt (encrypt, then sign; "
		       "key holder serviced)\n");
		if (mkdtemp(reg) == NULL || (sink = open_sink(sink_addr)) < 0) {
			perror("sign-bench: registry directory or sink socket");
			return 1;
		}
		printf("  %-8s %10s %14s %12s %16s %14s\n", "payload", "msgs/dgram", "msgs/s",
		       "us/msg", "us/msg signed", "added us/msg");
		for (unsigned i = 0; i < 3; i++) {
			/* The signed-only publisher runs again here, alternating with the
			 * encrypting one run by run, so that a neighbour busy for a while on this
			 * CPU cannot make the difference. */
			static struct path_arg pp;
			struct rly_pub_opts o;
			struct rly_pub_stats st;
			double rate = 0, plain = 0;

			memset(&o, 0, sizeof(o));
			o.relay = sink_addr;
			rly_stream_key_from_name("bench/sign", o.stream_key);
			o.identity = &m.id;
			if (rly_pub_create(&pp.p, &o) < 0) {
				fprintf(stderr, "sign-bench: %s\n", rly_client_errmsg());
				return 1;
			}
			o.encrypt = 1;
			o.registry_dir = reg;
			if (rly_pub_create(&pa.p, &o) < 0) {
				fprintf(stderr, "sign-bench: %s\n", rly_client_errmsg());
				return 1;
			}
			pa.size = pp.size = sizes[i];
			pa.failures = pp.failures = 0;
			memcpy(pp.payload, pa.payload, sizeof(pp.payload));
			for (int r = 0; r < RUNS; r++) {
				double x = best_rate_of(op_path, &pp, 1024, 1);
				double y = best_rate_of(op_path, &pa, 1024, 1);
				plain = x > plain ? x : plain;
				rate = y > rate ? y : rate;
			}
			rly_pub_stats(pa.p, &st);
			printf("  %-8u %10.1f %14.0f %12.2f %16.2f %14.2f\n", sizes[i],
			       (double)st.msgs / (double)(st.dgrams ? st.dgrams : 1), rate, 1e6 / rate,
			       1e6 / plain, 1e6 / rate - 1e6 / plain);
			if (pa.failures || pp.failures || st.send_errors)
				printf("  (%lu offer/flush failures, %lu send errors: figures are "
				       "void)\n",
				       (unsigned long)(pa.failures + pp.failures),
				       (unsigned long)st.send_errors);
			rly_pub_free(pa.p);
			rly_pub_free(pp.p);
		}
		close(sink);
		rmdir(reg);
	}
	return 0;
}
