/* SPDX-License-Identifier: Apache-2.0 */
/*
 * c2c: round-trip latency of one cache line bounced between two CPUs (default 0 and 1).
 *
 * On this kind of VM the hypervisor places the two vCPUs sometimes on sibling hyperthreads or
 * one core complex, sometimes far apart, and every cross-core rate (memif, the shm rings) moves
 * by 3x with it. run-fanout.sh prints this figure next to each run so that runs can be compared
 * within the same placement.
 *
 *   c2c [CPU_A CPU_B [ROUNDS]]      prints: c2c_ns=<median round trip in ns>
 */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) _Atomic uint64_t ping;
static _Alignas(64) _Atomic uint64_t pong;
static unsigned rounds = 200000;

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static void *responder(void *arg)
{
	pin(*(int *)arg);
	for (uint64_t i = 1; i <= rounds; i++) {
		while (atomic_load_explicit(&ping, memory_order_acquire) != i)
			;
		atomic_store_explicit(&pong, i, memory_order_release);
	}
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
	double batch[20];
	pthread_t t;

	if (argc > 3)
		rounds = (unsigned)atoi(argv[3]);
	if (rounds < 20)
		rounds = 20;
	pthread_create(&t, NULL, responder, &b);
	pin(a);
	/* Twenty batches; the median batch hides a batch that lost the CPU. */
	for (unsigned k = 0; k < 20; k++) {
		uint64_t from = (uint64_t)k * (rounds / 20), t0 = now_ns();
		for (uint64_t i = from + 1; i <= from + rounds / 20; i++) {
			atomic_store_explicit(&ping, i, memory_order_release);
			while (atomic_load_explicit(&pong, memory_order_acquire) != i)
				;
		}
		batch[k] = (double)(now_ns() - t0) / (double)(rounds / 20);
	}
	pthread_join(t, NULL);
	qsort(batch, 20, sizeof(batch[0]), cmp);
	printf("c2c_ns=%.0f\n", batch[10]);
	return 0;
}
