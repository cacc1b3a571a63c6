/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hist.c - "ztrace hist": per-size log2 histograms of allocations and
 * frees, as bpftrace draws them, for the interval and since attach.
 * Buckets follow bpftrace's hist(): [0], [1], [2, 4), [4, 8), ...
 */
#include <stdio.h>
#include <string.h>

#include "hist_render.h"
#include "json.h"
#include "modes.h"
#include "output.h"
#include "report.h"
#include "session.h"

static const char *const kind_names[ZT_HIST_KINDS] = {
	[ZT_HIST_ALLOC] = "alloc",
	[ZT_HIST_FREE] = "free",
	[ZT_HIST_FREE_UNTRACKED] = "free_untracked",
};

static const char *const kind_titles[ZT_HIST_KINDS] = {
	[ZT_HIST_ALLOC] = "allocations (alloc, realloc new) by requested size",
	[ZT_HIST_FREE] = "frees (free, realloc old) by requested size",
	[ZT_HIST_FREE_UNTRACKED] =
		"frees of blocks from before attach, by usable size",
};

/* out = cur - prev, bucket by bucket (prev may be NULL). */
static void hist_delta(const struct zt_snapshot *cur,
		       const struct zt_snapshot *prev, int kind,
		       struct zt_hist_slot *out)
{
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		out[b] = cur->hist[kind][b];
		if (!prev)
			continue;
		out[b].count -= prev->hist[kind][b].count;
		out[b].bytes -= prev->hist[kind][b].bytes;
		out[b].frag -= prev->hist[kind][b].frag;
	}
}

static void text_window(const struct zt_snapshot *cur,
			const struct zt_snapshot *prev, const char *window)
{
	struct zt_hist_slot h[ZT_HIST_BUCKETS];
	char title[160];
	int kind;

	for (kind = 0; kind < ZT_HIST_KINDS; kind++) {
		hist_delta(cur, prev, kind, h);
		if (kind != ZT_HIST_ALLOC && !hist_total(h).count)
			continue;
		snprintf(title, sizeof(title), "%s, %s", kind_titles[kind],
			 window);
		hist_print_text(zt_out, title, h);
	}
}

static void json_window(struct jw *w, const char *key,
			const struct zt_snapshot *cur,
			const struct zt_snapshot *prev)
{
	struct zt_hist_slot h[ZT_HIST_BUCKETS];
	int kind;

	jw_obj(w, key);
	for (kind = 0; kind < ZT_HIST_KINDS; kind++) {
		hist_delta(cur, prev, kind, h);
		hist_print_json(w, kind_names[kind], h);
	}
	jw_obj_end(w);
}

static const char *const sample_kind_names[ZT_SHIST_KINDS] = {
	[ZT_SHIST_ALLOC] = "alloc",
	[ZT_SHIST_FREE] = "free",
};

static const char *const sample_kind_titles[ZT_SHIST_KINDS] = {
	[ZT_SHIST_ALLOC] = "allocations by requested size",
	[ZT_SHIST_FREE] =
		"frees of blocks sampled since attach, by requested size",
};

/*
 * Sampled mode: out = cur - prev, bucket by bucket (prev may be NULL). The
 * FREE kind is derived from the live check (collect.c), which a target
 * that can no longer be read may leave behind the last report: no bucket
 * goes below zero.
 */
static void sample_delta(const struct zt_snapshot *cur,
			 const struct zt_snapshot *prev, int kind,
			 struct zt_sample_slot *out)
{
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		if (prev)
			sample_slot_sub(&out[b], &cur->shist[kind][b],
					&prev->shist[kind][b]);
		else
			out[b] = cur->shist[kind][b];
	}
}

static void sample_text_window(const struct zt_snapshot *cur,
			       const struct zt_snapshot *prev,
			       const char *window)
{
	struct zt_sample_slot h[ZT_HIST_BUCKETS];
	char title[160];
	int kind;

	for (kind = 0; kind < ZT_SHIST_KINDS; kind++) {
		sample_delta(cur, prev, kind, h);
		snprintf(title, sizeof(title), "%s, %s, estimated",
			 sample_kind_titles[kind], window);
		sample_hist_print_text(zt_out, title, h);
	}
}

static void sample_json_window(struct jw *w, const char *key,
			       const struct zt_snapshot *cur,
			       const struct zt_snapshot *prev)
{
	struct zt_sample_slot h[ZT_HIST_BUCKETS];
	int kind;

	jw_obj(w, key);
	for (kind = 0; kind < ZT_SHIST_KINDS; kind++) {
		sample_delta(cur, prev, kind, h);
		sample_hist_print_json(w, sample_kind_names[kind], h);
	}
	jw_obj_end(w);
}

static void sample_hist_report(struct zt_session *s, bool final)
{
	bool intervals = env.interval > 0 && s->seq > 0;
	char window[64];
	struct jw w;

	if (env.json) {
		report_json_begin(&w, s, final);
		jw_obj(&w, "hist");
		sample_json_window(&w, "since_attach", &s->cur, NULL);
		sample_json_window(&w, "interval", &s->cur,
				   s->seq ? &s->prev : NULL);
		jw_obj_end(&w);
		report_json_end(&w, s);
		return;
	}
	report_text_begin(s, final);
	if (env.interval > 0) {
		snprintf(window, sizeof(window), "last %.2f s",
			 (s->cur.mono_ns - s->prev.mono_ns) / 1e9);
		sample_text_window(&s->cur, intervals ? &s->prev : NULL,
				   window);
	}
	sample_text_window(&s->cur, NULL, "since attach");
	report_text_end(s);
}

static void hist_report(struct zt_session *s, bool final)
{
	bool intervals = env.interval > 0 && s->seq > 0;
	char window[64];
	struct jw w;

	if (env.sample) {
		sample_hist_report(s, final);
		return;
	}
	if (env.json) {
		report_json_begin(&w, s, final);
		jw_obj(&w, "hist");
		json_window(&w, "since_attach", &s->cur, NULL);
		json_window(&w, "interval", &s->cur, s->seq ? &s->prev : NULL);
		jw_obj_end(&w);
		report_json_end(&w, s);
		return;
	}
	report_text_begin(s, final);
	if (env.interval > 0) {
		snprintf(window, sizeof(window), "last %.2f s",
			 (s->cur.mono_ns - s->prev.mono_ns) / 1e9);
		text_window(&s->cur, intervals ? &s->prev : NULL, window);
	}
	text_window(&s->cur, NULL, "since attach");
	report_text_end(s);
}

static const struct zt_mode_ops hist_ops = {
	.report = hist_report,
};

int do_hist(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_HIST);

	if (err)
		return err > 0 ? 0 : 2;
	return session_run(&hist_ops);
}
