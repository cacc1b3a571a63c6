/* SPDX-License-Identifier: BSD-3-Clause */
/* estimate.c - the estimates of sampled mode (see estimate.h). */
#include <string.h>

#include "collect.h"
#include "estimate.h"

/*
 * The FREE histogram is every sample not found live (collect.c), so the
 * samples the live table could not hold are in it already: live is ALLOC
 * less FREE, and "frees" counts those as freed too (report.c shows the
 * drops apart).
 */
void estimate_totals(const struct zt_snapshot *s, struct zt_estimates *e)
{
	__u64 in_milli = 0, out_milli = 0;
	int b;

	memset(e, 0, sizeof(*e));
	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		const struct zt_sample_slot *in = &s->shist[ZT_SHIST_ALLOC][b];
		const struct zt_sample_slot *out = &s->shist[ZT_SHIST_FREE][b];

		e->alloc_samples += in->samples;
		e->alloc_bytes += in->weight;
		in_milli += in->count_milli;
		e->free_samples += out->samples;
		e->free_bytes += out->weight;
		out_milli += out->count_milli;
	}
	e->live_samples = e->alloc_samples - e->free_samples;
	e->live_bytes = e->alloc_bytes - e->free_bytes;
	e->allocs = est_count(in_milli);
	e->frees = est_count(out_milli);
	e->live_blocks = est_count((__s64)(in_milli - out_milli));
}
