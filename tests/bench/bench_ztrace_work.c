/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_ztrace_work.c - the work every tracer in bench_ztrace.sh is timed
 * on: ROUNDS rounds of BATCH zmalloc() calls then BATCH zfree() calls, with
 * a fixed mix of sizes (mostly small, some pages). Prints the time per
 * allocation and per free, measured inside the process.
 *
 * Usage: bench_ztrace_work [ROUNDS [BATCH]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "zmalloc.h"

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* A fixed, repeatable mix: 16-256 bytes mostly, 1 in 16 up to 4 KiB. */
static size_t next_size(unsigned int *seed)
{
	*seed = *seed * 1103515245U + 12345U;
	if (((*seed >> 16) & 15) == 0)
		return 512 + (*seed >> 8) % 3584;
	return 16 + (*seed >> 8) % 241;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 500;
	long batch = argc > 2 ? atol(argv[2]) : 1000;
	unsigned long long t0, alloc_ns = 0, free_ns = 0;
	unsigned int seed = 42;
	void **v;
	long r, i;

	v = calloc(batch, sizeof(*v));
	if (!v || rounds <= 0 || batch <= 0)
		return 1;
	for (r = 0; r < rounds; r++) {
		t0 = now_ns();
		for (i = 0; i < batch; i++)
			v[i] = zmalloc(next_size(&seed));
		alloc_ns += now_ns() - t0;
		t0 = now_ns();
		for (i = 0; i < batch; i++)
			zfree(v[i]);
		free_ns += now_ns() - t0;
	}
	free(v);
	printf("allocs=%ld frees=%ld alloc_ns=%.1f free_ns=%.1f\n",
	       rounds * batch, rounds * batch,
	       (double)alloc_ns / (rounds * batch),
	       (double)free_ns / (rounds * batch));
	return 0;
}
