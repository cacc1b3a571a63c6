/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * estimate.h - what the samples of --sample stand for. A sample of s
 * requested bytes with weight w (include/zmalloc_sampling.h) stands for w
 * bytes and w / s blocks; the BPF side sums w, and w / s in thousandths
 * (ZT_MILLI), so that both estimates are plain sums. This is the one
 * place user space turns those sums into figures.
 */
#ifndef ZT_ESTIMATE_H
#define ZT_ESTIMATE_H

#include <linux/types.h>

#include "ztrace_types.h"

/* The blocks a sample stands for, in thousandths, as the BPF side adds. */
static inline __u64 est_milli(__u64 requested, __u64 weight)
{
	return weight * ZT_MILLI / (requested ? requested : 1);
}

/* A count in thousandths, rounded to the nearest whole block. */
static inline __u64 est_count(__s64 milli)
{
	if (milli <= 0)
		return 0;
	return ((__u64)milli + ZT_MILLI / 2) / ZT_MILLI;
}

struct zt_snapshot;

/* Totals of a snapshot's sampled histograms: samples, and estimates. */
struct zt_estimates {
	__u64 alloc_samples; /* sample_alloc hits that reached the maps */
	__u64 free_samples; /* samples no longer live (or never tracked) */
	__s64 live_samples; /* samples the live check found live */
	__u64 alloc_bytes; /* estimated bytes allocated since attach */
	__u64 free_bytes;
	__s64 live_bytes;
	__u64 allocs; /* estimated blocks, rounded */
	__u64 frees;
	__u64 live_blocks;
};

void estimate_totals(const struct zt_snapshot *s, struct zt_estimates *e);

#endif /* ZT_ESTIMATE_H */
