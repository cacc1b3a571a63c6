/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_sampler.c - exponential sampling intervals from a per-thread
 * generator, and the weight of a sample.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zm_sampler.h"
#include "zmalloc.h"

#define ZM_API __attribute__((visibility("default")))

__attribute__((visibility(
	"default"))) struct zmalloc_sample_control zm_sample_control = {
	.magic = ZMALLOC_SAMPLE_MAGIC,
	.mean_bytes = ZMALLOC_SAMPLE_DEFAULT_BYTES,
};

__thread struct zm_sampler zm_thread_sampler
	__attribute__((tls_model("initial-exec")));

static bool seed_fixed;
static uint64_t seed_base;
static uint64_t threads_armed;

/* Read at load time, so that a later zmalloc_set_sample_bytes() wins. */
__attribute__((constructor)) static void read_environment(void)
{
	const char *bytes = getenv("ZMALLOC_SAMPLE_BYTES");
	const char *seed = getenv("ZMALLOC_SAMPLE_SEED");
	char *end;

	if (bytes) {
		unsigned long long v = strtoull(bytes, &end, 10);

		if (*bytes && !*end && v > 0)
			zmalloc_set_sample_bytes(v);
	}
	if (seed) {
		unsigned long long v = strtoull(seed, &end, 10);

		if (*seed && !*end) {
			seed_base = v;
			seed_fixed = true;
		}
	}
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t xorshift64star(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t thread_seed(struct zm_sampler *s)
{
	uint64_t order =
		__atomic_fetch_add(&threads_armed, 1, __ATOMIC_RELAXED);
	struct timespec ts;

	if (seed_fixed)
		return splitmix64(seed_base + order);
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no kernel entry */
	return splitmix64(((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
			  (uintptr_t)s ^ (order << 48));
}

/*
 * ln(x) for a normal x > 0 (the draw's are in [2^-53, 1]), within 3e-9
 * of libm's, relative: x = 2^e * m, m in
 * [sqrt(1/2), sqrt(2)), and ln(m) = 2 atanh(t), t = (m - 1) / (m + 1),
 * |t| < 0.172, by the series of atanh to t^9. A sample runs it once, with
 * the caches cold, where libm's log and expm1 (code and tables) cost 15-50
 * ns of the 170-230 the library spends on a sample here; Go's and
 * tcmalloc's samplers have a fast logarithm for the same reason.
 */
double zm_sample_ln(double x)
{
	uint64_t bits;
	double m, t, t2, series;
	int e;

	memcpy(&bits, &x, sizeof(bits));
	e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & ((1ULL << 52) - 1)) | (1023ULL << 52); /* m in [1, 2) */
	memcpy(&m, &bits, sizeof(m));
	if (m > M_SQRT2) {
		m *= 0.5;
		e++;
	}
	t = (m - 1) / (m + 1);
	t2 = t * t;
	series = 1 + t2 * (1. / 3 + t2 * (1. / 5 + t2 * (1. / 7 + t2 / 9)));
	return e * M_LN2 + 2 * t * series;
}

/* An exponential interval: -mean * ln(U), U uniform in (0, 1]. */
static int64_t draw_interval(struct zm_sampler *s)
{
	double u = (double)((xorshift64star(&s->rng) >> 11) + 1) * 0x1p-53;
	double v = -zm_sample_ln(u) * (double)s->mean;

	if (v < 1)
		return 1;
	return v > (double)ZM_SAMPLE_MEAN_MAX ? (int64_t)ZM_SAMPLE_MEAN_MAX :
						(int64_t)v;
}

/*
 * s / P(sampled), with P = 1 - exp(-s / mean): mean * x / (1 - e^-x) for
 * x = s / mean. For the usual x (a block far smaller than the mean) its
 * series, 1 + x/2 + x^2/12 - x^4/720, is exact to 1e-12 and needs no libm.
 */
static uint64_t sample_weight(size_t n, uint64_t mean)
{
	double s = n ? (double)n : 1, x = s / (double)mean, ratio;

	if (x < 1. / 64) {
		ratio = 1 + x * (0.5 + x * (1. / 12 - x * x / 720));
		return (uint64_t)((double)mean * ratio + 0.5);
	}
	return (uint64_t)llround(s / -expm1(-x));
}

bool zm_sample_cross(struct zm_sampler *s, size_t n, uint64_t *weight)
{
	bool armed = s->mean != 0;
	uint64_t mean;

	if (armed)
		*weight = sample_weight(n, s->mean);
	else
		s->rng = thread_seed(s) | 1;
	mean = __atomic_load_n(&zm_sample_control.mean_bytes, __ATOMIC_RELAXED);
	/*
	 * Whatever a tracer stored: 0 would leave the thread unarmed, to be
	 * seeded again at every allocation; past 2^62 a weight overflows.
	 */
	if (!mean)
		mean = ZMALLOC_SAMPLE_DEFAULT_BYTES;
	s->mean = mean < ZM_SAMPLE_MEAN_MAX ? mean : ZM_SAMPLE_MEAN_MAX;
	s->left = draw_interval(s);
	return armed;
}

ZM_API void zmalloc_set_sample_bytes(size_t bytes)
{
	__atomic_store_n(&zm_sample_control.mean_bytes,
			 bytes ? bytes : ZMALLOC_SAMPLE_DEFAULT_BYTES,
			 __ATOMIC_RELAXED);
}

ZM_API size_t zmalloc_get_sample_bytes(void)
{
	return __atomic_load_n(&zm_sample_control.mean_bytes, __ATOMIC_RELAXED);
}
