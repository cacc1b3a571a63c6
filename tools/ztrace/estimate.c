/* SPDX-License-Identifier: BSD-3-Clause */
/* estimate.c - the estimates of sampled mode (see estimate.h). */
#include <string.h>

#include "collect.h"
#include "estimate.h"

/*
 * Samples the live table could not hold are in the ALLOC histogram but
 * never leave it: their weights (drop_live_usable) are taken out of the
 * live figures, as exact mode takes out their bytes.
 */
void estimate_totals(const struct zt_snapshot *s, struct zt_estimates *e)
{
	const struct zt_counters *c = &s->c;
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
	e->live_samples = e->alloc_samples - e->free_samples -
			  c->drop_live_full - c->drop_live_error;
	e->live_bytes = e->alloc_bytes - e->free_bytes - c->drop_live_usable;
	e->allocs = est_count(in_milli);
	e->frees = est_count(out_milli);
	e->live_blocks = est_count((__s64)(in_milli - out_milli));
}
