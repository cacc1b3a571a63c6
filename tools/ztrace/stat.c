/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stat.c - "ztrace stat": event counts and rates, the live blocks ztrace
 * tracks and every drop counter.
 */
#include <stdio.h>

#include "estimate.h"
#include "hist_render.h"
#include "json.h"
#include "modes.h"
#include "output.h"
#include "report.h"
#include "session.h"

static __u64 kind_bytes(const struct zt_snapshot *s, int kind)
{
	return hist_total(s->hist[kind]).bytes;
}

/* Sampled mode: rates of the estimates, over the last interval. */
static void sample_stat_report(struct zt_session *s, bool final)
{
	double dt = (s->cur.mono_ns - s->prev.mono_ns) / 1e9;
	struct zt_estimates ec, ep;
	struct jw w;

	estimate_totals(&s->cur, &ec);
	estimate_totals(&s->prev, &ep);
	if (dt <= 0)
		dt = 1e-9;
	if (env.json) {
		report_json_begin(&w, s, final);
		jw_obj(&w, "stat");
		jw_bool(&w, "estimated", true);
		jw_u64(&w, "samples", ec.alloc_samples);
		jw_u64(&w, "alloc_bytes", ec.alloc_bytes);
		jw_u64(&w, "free_bytes", ec.free_bytes);
		jw_double(&w, "allocs_per_s", (ec.allocs - ep.allocs) / dt);
		jw_double(&w, "frees_per_s", (ec.frees - ep.frees) / dt);
		jw_double(&w, "alloc_bytes_per_s",
			  (ec.alloc_bytes - ep.alloc_bytes) / dt);
		jw_double(&w, "samples_per_s",
			  (ec.alloc_samples - ep.alloc_samples) / dt);
		jw_obj_end(&w);
		report_json_end(&w, s);
		return;
	}
	report_text_begin(s, final);
	fprintf(zt_out,
		"  bytes      ~%llu allocated, ~%llu freed (est. from %llu samples, %llu of them freed since)\n",
		(unsigned long long)ec.alloc_bytes,
		(unsigned long long)ec.free_bytes,
		(unsigned long long)ec.alloc_samples,
		(unsigned long long)ec.free_samples);
	fprintf(zt_out,
		"  rates      ~%.0f allocs/s, ~%.0f frees/s, ~%.0f bytes/s, %.1f samples/s over the last %.2f s\n",
		(ec.allocs - ep.allocs) / dt, (ec.frees - ep.frees) / dt,
		(ec.alloc_bytes - ep.alloc_bytes) / dt,
		(ec.alloc_samples - ep.alloc_samples) / dt, dt);
	report_text_end(s);
}

static void stat_report(struct zt_session *s, bool final)
{
	const struct zt_counters *c = &s->cur.c, *p = &s->prev.c;
	const struct zt_derived *dc = &s->cur.d, *dp = &s->prev.d;
	double dt = (s->cur.mono_ns - s->prev.mono_ns) / 1e9;
	__u64 ab = kind_bytes(&s->cur, ZT_HIST_ALLOC);
	__u64 fb = kind_bytes(&s->cur, ZT_HIST_FREE);
	__u64 dab = ab - kind_bytes(&s->prev, ZT_HIST_ALLOC);
	struct jw w;

	if (env.sample) {
		sample_stat_report(s, final);
		return;
	}
	if (dt <= 0)
		dt = 1e-9;
	if (env.json) {
		report_json_begin(&w, s, final);
		jw_obj(&w, "stat");
		jw_u64(&w, "alloc_bytes", ab);
		jw_u64(&w, "free_bytes", fb);
		jw_double(&w, "allocs_per_s", (dc->allocs - dp->allocs) / dt);
		jw_double(&w, "frees_per_s", (dc->frees - dp->frees) / dt);
		jw_double(&w, "reallocs_per_s",
			  (c->reallocs - p->reallocs) / dt);
		jw_double(&w, "alloc_bytes_per_s", dab / dt);
		jw_obj_end(&w);
		report_json_end(&w, s);
		return;
	}
	report_text_begin(s, final);
	fprintf(zt_out,
		"  bytes      %llu allocated, %llu freed (requested, tracked blocks)\n",
		(unsigned long long)ab, (unsigned long long)fb);
	fprintf(zt_out,
		"  rates      %.0f allocs/s, %.0f frees/s, %.0f reallocs/s, %.0f bytes/s over the last %.2f s\n",
		(dc->allocs - dp->allocs) / dt, (dc->frees - dp->frees) / dt,
		(c->reallocs - p->reallocs) / dt, dab / dt, dt);
	report_text_end(s);
}

static const struct zt_mode_ops stat_ops = {
	.report = stat_report,
};

int do_stat(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_STAT);

	if (err)
		return err > 0 ? 0 : 2;
	return session_run(&stat_ops);
}
