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

/* The non-empty buckets of a histogram, and its largest values. */
struct hist_span {
	int first, last; /* -1 when every bucket is empty */
	__u64 max_count, max_bytes;
};

/*
 * Over ZT_HIST_BUCKETS slots of any layout: USED, COUNT and BYTES point at
 * the fields of bucket 0, and each next bucket's are STRIDE words further.
 */
struct hist_span hist_span_of(const __u64 *used, const __u64 *count,
			      const __u64 *bytes, size_t stride);
#define HIST_SPAN(h, used, count, bytes)                         \
	hist_span_of(&(h)[0].used, &(h)[0].count, &(h)[0].bytes, \
		     sizeof((h)[0]) / sizeof(__u64))

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
