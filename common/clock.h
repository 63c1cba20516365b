/* SPDX-License-Identifier: Apache-2.0 */
#ifndef RLY_COMMON_CLOCK_H
#define RLY_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* clock_gettime is a vDSO call here (no syscall), cheap enough for control paths and clients. */
static inline uint64_t rly_clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/** Monotonic nanoseconds, comparable across processes on this machine. */
static inline uint64_t rly_mono_ns(void)
{
	return rly_clock_ns(CLOCK_MONOTONIC);
}

/** Wall-clock nanoseconds since the Unix epoch (what publishers stamp messages with). */
static inline uint64_t rly_real_ns(void)
{
	return rly_clock_ns(CLOCK_REALTIME);
}

#endif
