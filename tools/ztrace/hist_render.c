/* SPDX-License-Identifier: BSD-3-Clause */
/* hist_render.c - log2 histograms in text and JSON (see hist_render.h). */
#include <stdio.h>
#include <string.h>

#include "estimate.h"
#include "hist_render.h"
#include "json.h"

#define BAR_WIDTH 16

struct zt_hist_slot hist_total(const struct zt_hist_slot *h)
{
	struct zt_hist_slot t = {};
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		t.count += h[b].count;
		t.bytes += h[b].bytes;
		t.frag += h[b].frag;
	}
	return t;
}

struct hist_span hist_span_of(const __u64 *used, const __u64 *count,
			      const __u64 *bytes, size_t stride)
{
	struct hist_span sp = { .first = -1, .last = -1 };
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		size_t i = (size_t)b * stride;

		if (!used[i])
			continue;
		if (sp.first < 0)
			sp.first = b;
		sp.last = b;
		if (count[i] > sp.max_count)
			sp.max_count = count[i];
		if (bytes[i] > sp.max_bytes)
			sp.max_bytes = bytes[i];
	}
	return sp;
}

/* Bucket b holds [lo, hi); bucket 0 holds 0 only. */
void hist_bucket_range(int b, __u64 *lo, __u64 *hi)
{
	*lo = b ? 1ULL << (b - 1) : 0;
	*hi = b ? (b < 64 ? 1ULL << b : ~0ULL) : 1;
}

static const char *num_suffix(char *buf, size_t len, __u64 v)
{
	static const char sfx[] = "KMGTPE";
	int i = -1;

	while (v >= 1024 && !(v & 1023) && i < 5) {
		v >>= 10;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, sfx[i]);
	return buf;
}

static void bucket_label(int b, char *buf, size_t len)
{
	char lo_s[24], hi_s[24];
	__u64 lo, hi;

	hist_bucket_range(b, &lo, &hi);
	if (hi - lo <= 1)
		snprintf(buf, len, "[%s]", num_suffix(lo_s, sizeof(lo_s), lo));
	else
		snprintf(buf, len, "[%s, %s)",
			 num_suffix(lo_s, sizeof(lo_s), lo),
			 num_suffix(hi_s, sizeof(hi_s), hi));
}

static void bar(FILE *f, __u64 v, __u64 max)
{
	int n = max ? (int)((v * BAR_WIDTH + max - 1) / max) : 0, i;

	fputc('|', f);
	for (i = 0; i < BAR_WIDTH; i++)
		fputc(i < n ? '@' : ' ', f);
	fputc('|', f);
}

void hist_print_text(FILE *f, const char *title, const struct zt_hist_slot *h)
{
	struct zt_hist_slot t = hist_total(h);
	struct hist_span sp = HIST_SPAN(h, count, count, bytes);
	char label[48];
	int b;

	fprintf(f,
		"\n  @%s: %llu blocks, %llu bytes, %llu bytes fragmentation\n",
		title, (unsigned long long)t.count, (unsigned long long)t.bytes,
		(unsigned long long)t.frag);
	if (sp.first < 0) {
		fprintf(f, "  (none)\n");
		return;
	}
	fprintf(f, "  %-14s %9s %-18s %11s %-18s %9s\n", "size", "count", "",
		"bytes", "", "frag");
	for (b = sp.first; b <= sp.last; b++) {
		bucket_label(b, label, sizeof(label));
		fprintf(f, "  %-14s %9llu ", label,
			(unsigned long long)h[b].count);
		bar(f, h[b].count, sp.max_count);
		fprintf(f, " %11llu ", (unsigned long long)h[b].bytes);
		bar(f, h[b].bytes, sp.max_bytes);
		fprintf(f, " %9llu\n", (unsigned long long)h[b].frag);
	}
}

void hist_print_json(struct jw *w, const char *key,
		     const struct zt_hist_slot *h)
{
	struct zt_hist_slot t = hist_total(h);
	__u64 lo, hi;
	int b;

	jw_obj(w, key);
	jw_u64(w, "count", t.count);
	jw_u64(w, "bytes", t.bytes);
	jw_u64(w, "frag", t.frag);
	jw_arr(w, "buckets");
	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		if (!h[b].count)
			continue;
		hist_bucket_range(b, &lo, &hi);
		jw_obj(w, NULL);
		jw_u64(w, "bucket", b);
		jw_u64(w, "lo", lo);
		jw_u64(w, "hi", hi);
		jw_u64(w, "count", h[b].count);
		jw_u64(w, "bytes", h[b].bytes);
		jw_u64(w, "frag", h[b].frag);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

struct zt_sample_slot sample_hist_total(const struct zt_sample_slot *h)
{
	struct zt_sample_slot t = {};
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		t.samples += h[b].samples;
		t.requested += h[b].requested;
		t.weight += h[b].weight;
		t.count_milli += h[b].count_milli;
	}
	return t;
}

void sample_hist_print_text(FILE *f, const char *title,
			    const struct zt_sample_slot *h)
{
	struct zt_sample_slot t = sample_hist_total(h);
	struct hist_span sp = HIST_SPAN(h, samples, count_milli, weight);
	char label[48], num[32];
	int b;

	fprintf(f,
		"\n  @%s: ~%llu blocks, ~%llu bytes (est. from %llu samples)\n",
		title, (unsigned long long)est_count(t.count_milli),
		(unsigned long long)t.weight, (unsigned long long)t.samples);
	if (sp.first < 0) {
		fprintf(f, "  (none)\n");
		return;
	}
	fprintf(f, "  %-14s %10s %-18s %12s %-18s %8s\n", "size", "~count", "",
		"~bytes", "", "samples");
	for (b = sp.first; b <= sp.last; b++) {
		bucket_label(b, label, sizeof(label));
		snprintf(num, sizeof(num), "~%llu",
			 (unsigned long long)est_count(h[b].count_milli));
		fprintf(f, "  %-14s %10s ", label, h[b].samples ? num : "0");
		bar(f, h[b].count_milli, sp.max_count);
		snprintf(num, sizeof(num), "~%llu",
			 (unsigned long long)h[b].weight);
		fprintf(f, " %12s ", h[b].samples ? num : "0");
		bar(f, h[b].weight, sp.max_bytes);
		fprintf(f, " %8llu\n", (unsigned long long)h[b].samples);
	}
}

void sample_hist_print_json(struct jw *w, const char *key,
			    const struct zt_sample_slot *h)
{
	struct zt_sample_slot t = sample_hist_total(h);
	__u64 lo, hi;
	int b;

	jw_obj(w, key);
	jw_bool(w, "estimated", true);
	jw_u64(w, "samples", t.samples);
	jw_u64(w, "count", est_count(t.count_milli));
	jw_u64(w, "bytes", t.weight);
	jw_arr(w, "buckets");
	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		if (!h[b].samples)
			continue;
		hist_bucket_range(b, &lo, &hi);
		jw_obj(w, NULL);
		jw_u64(w, "bucket", b);
		jw_u64(w, "lo", lo);
		jw_u64(w, "hi", hi);
		jw_u64(w, "samples", h[b].samples);
		jw_u64(w, "count", est_count(h[b].count_milli));
		jw_u64(w, "count_milli", h[b].count_milli);
		jw_u64(w, "bytes", h[b].weight);
		jw_u64(w, "sample_bytes", h[b].requested);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}
