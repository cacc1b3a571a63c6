/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sampler.h - which allocations are sampled, and what each stands for
 * (the method: zmalloc_sampling.h).
 *
 * zm_sample_tick(n) runs only while a tracer holds sample_alloc's
 * semaphore. It subtracts n from the calling thread's countdown; crossing
 * zero means this block is sampled, and the next interval is drawn.
 */
#ifndef ZM_SAMPLER_H
#define ZM_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zmalloc_sampling.h"

/* The largest mean (and interval) taken from zm_sample_control. */
#define ZM_SAMPLE_MEAN_MAX ((uint64_t)1 << 62)

struct zm_sampler {
	int64_t left; /* bytes to the next sample */
	uint64_t mean; /* mean of the current interval; 0 until armed */
	uint64_t rng; /* xorshift64* state, never 0 once armed */
};

extern __thread struct zm_sampler zm_thread_sampler
	__attribute__((tls_model("initial-exec"), visibility("hidden")));

extern struct zmalloc_sample_control zm_sample_control
	__attribute__((visibility("default")));

/*
 * Arms the thread, or ends its interval and starts the next. Returns true
 * when the n bytes that crossed zero are a sample, with the bytes the sample
 * stands for in *weight (at the mean of the interval that ended).
 */
bool zm_sample_cross(struct zm_sampler *s, size_t n, uint64_t *weight)
	__attribute__((visibility("hidden")));

/* ln(x), normal x > 0, to 3e-9 relative: the draw's, not libm's (tested). */
double zm_sample_ln(double x) __attribute__((visibility("hidden")));

static inline bool zm_sample_tick(size_t n, uint64_t *weight)
{
	struct zm_sampler *s = &zm_thread_sampler;

	s->left -= (int64_t)n;
	if (__builtin_expect(s->left > 0, 1))
		return false;
	return zm_sample_cross(s, n, weight);
}

#endif /* ZM_SAMPLER_H */
