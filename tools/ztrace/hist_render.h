/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hist_render.h - draw one log2 histogram of count, bytes and
 * fragmentation per bucket: bpftrace-style bars in text, or a JSON object.
 */
#ifndef ZT_HIST_RENDER_H
#define ZT_HIST_RENDER_H

#include <stdio.h>

#include "ztrace_types.h"

struct jw;

struct zt_hist_slot hist_total(const struct zt_hist_slot *h);
void hist_bucket_range(int b, __u64 *lo, __u64 *hi);
void hist_print_text(FILE *f, const char *title, const struct zt_hist_slot *h);
void hist_print_json(struct jw *w, const char *key,
		     const struct zt_hist_slot *h);

/* Sampled mode: estimated blocks and bytes per bucket, with the samples. */
struct zt_sample_slot sample_hist_total(const struct zt_sample_slot *h);
void sample_hist_print_text(FILE *f, const char *title,
			    const struct zt_sample_slot *h);
void sample_hist_print_json(struct jw *w, const char *key,
			    const struct zt_sample_slot *h);

#endif /* ZT_HIST_RENDER_H */
