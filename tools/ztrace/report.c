/* SPDX-License-Identifier: BSD-3-Clause */
/* report.c - the common part of every report (see report.h). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "estimate.h"
#include "json.h"
#include "output.h"
#include "report.h"
#include "session.h"

bool report_incomplete(const struct zt_snapshot *s)
{
	const struct zt_counters *c = &s->c;

	return c->drop_live_full || c->drop_live_error ||
	       c->drop_stack_collision || c->drop_stack_error ||
	       c->drop_totals_full || c->drop_args || s->prog_missed;
}

const char *fmt_size(char *buf, size_t len, __u64 bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static double secs(__u64 ns)
{
	return ns / 1e9;
}

static void exit_text(const struct zt_target *t, char *buf, size_t len)
{
	if (!t->status_known)
		snprintf(buf, len, "target exited");
	else if (WIFEXITED(t->wstatus))
		snprintf(buf, len, "target exited with status %d",
			 WEXITSTATUS(t->wstatus));
	else if (WIFSIGNALED(t->wstatus))
		snprintf(buf, len, "target killed by signal %d",
			 WTERMSIG(t->wstatus));
	else
		snprintf(buf, len, "target exited");
}

static const char *end_text(struct zt_session *s, char *buf, size_t len)
{
	if (s->end_reason && !strcmp(s->end_reason, "exited"))
		exit_text(&s->target, buf, len);
	else
		snprintf(buf, len, "%s", s->end_reason ? s->end_reason : "");
	return buf;
}

static void text_target(struct zt_session *s)
{
	const struct zt_snapshot *n = &s->cur;
	char a[32];

	fprintf(zt_out, "  target     used_memory ");
	if (n->used_memory_err)
		fprintf(zt_out, "n/a (%s)", strerror(-n->used_memory_err));
	else
		fprintf(zt_out, "%lld bytes", (long long)n->used_memory);
	if (n->rss_err)
		fprintf(zt_out, ", RSS n/a");
	else
		fprintf(zt_out, ", RSS %llu bytes (%s)",
			(unsigned long long)n->rss,
			fmt_size(a, sizeof(a), n->rss));
	if (!n->used_memory_err && !n->rss_err && n->used_memory > 0)
		fprintf(zt_out, ", RSS/used_memory %.2f",
			(double)n->rss / n->used_memory);
	fprintf(zt_out, "%s\n", n->stale ? " (last read before exit)" : "");
}

static void text_drop(const char *what, __u64 v, const char *hint)
{
	if (v)
		fprintf(zt_out, "  drops      %llu %s%s\n",
			(unsigned long long)v, what, hint);
}

static void text_drops(const struct zt_snapshot *n)
{
	const struct zt_counters *c = &n->c;

	if (!report_incomplete(n)) {
		fprintf(zt_out, "  drops      none\n");
		return;
	}
	if (c->drop_live_full)
		fprintf(zt_out,
			"  drops      %llu blocks (%llu bytes) not tracked, live map full: raise --max-blocks (now %u)\n",
			(unsigned long long)c->drop_live_full,
			(unsigned long long)c->drop_live_bytes, env.max_blocks);
	if (c->drop_live_error)
		fprintf(zt_out,
			"  drops      %llu blocks not tracked, live map update failed\n",
			(unsigned long long)c->drop_live_error);
	text_drop("stacks lost to a collision in the stack map",
		  c->drop_stack_collision, ": raise --max-stacks");
	text_drop("stacks that could not be walked or stored",
		  c->drop_stack_error, "");
	text_drop("stack totals not kept, stack totals map full",
		  c->drop_totals_full, ": raise --max-stacks");
	text_drop("probe hits whose arguments could not be read", c->drop_args,
		  "");
	text_drop("probe hits the kernel did not run ztrace's programs for",
		  n->prog_missed, "");
}

/* Samples the target dropped since tracing began (its region was full). */
static __u64 samples_lost(const struct zt_session *s)
{
	const struct zt_sample_ctl *sc = &s->sc;

	return env.sample && sc->have_base ? sc->lost - sc->lost_base : 0;
}

static bool session_incomplete(const struct zt_session *s)
{
	return report_incomplete(&s->cur) || samples_lost(s);
}

static void text_rate(const struct zt_session *s)
{
	const struct zt_sample_ctl *sc = &s->sc;

	if (sc->err && !sc->mean_bytes)
		fprintf(zt_out, "  sampling   rate n/a (%s)",
			strerror(-sc->err));
	else
		fprintf(zt_out,
			"  sampling   one sample per %llu bytes allocated on average (%s)",
			(unsigned long long)sc->mean_bytes,
			sc->set_bytes || env.sample_bytes ?
				"set by ztrace" :
				"the target's rate");
}

/* Sampled mode's events and live figures: estimates, with their samples. */
static void text_sampled(struct zt_session *s)
{
	const struct zt_snapshot *n = &s->cur;
	const struct zt_counters *c = &n->c;
	struct zt_estimates e;

	estimate_totals(n, &e);
	text_rate(s);
	fprintf(zt_out, ", %llu samples, %llu lost by the target\n",
		(unsigned long long)e.alloc_samples,
		(unsigned long long)samples_lost(s));
	fprintf(zt_out,
		"  events     ~%llu allocs, ~%llu frees (est. from %llu samples, %llu of them freed since), %llu ooms\n",
		(unsigned long long)e.allocs, (unsigned long long)e.frees,
		(unsigned long long)e.alloc_samples,
		(unsigned long long)e.free_samples,
		(unsigned long long)c->ooms);
	fprintf(zt_out,
		"  live       ~%lld bytes in ~%llu blocks allocated since attach (est. from %lld live samples)\n",
		(long long)e.live_bytes, (unsigned long long)e.live_blocks,
		(long long)e.live_samples);
	text_target(s);
	if (n->live_unverified)
		fprintf(zt_out,
			"  unverified %llu samples since the last live check counted as live: the target could not be read (%s)\n",
			(unsigned long long)n->live_unverified,
			strerror(-n->live_check_err));
	if (samples_lost(s))
		fprintf(zt_out,
			"  drops      %llu samples lost by the target: its sample region was full; estimates are low\n",
			(unsigned long long)samples_lost(s));
}

void report_text_begin(struct zt_session *s, bool final)
{
	const struct zt_snapshot *n = &s->cur, *p = &s->prev;
	const struct zt_counters *c = &n->c;
	char buf[128];

	fprintf(zt_out, "==> ztrace %s%s: PID %d (%s), %.2f s since attach",
		env.mode_name, env.sample ? " --sample" : "", s->target.pid,
		s->target.comm, secs(n->mono_ns - s->attach_ns));
	if (s->seq && !final)
		fprintf(zt_out, ", interval %.2f s",
			secs(n->mono_ns - p->mono_ns));
	if (final)
		fprintf(zt_out, ", final report: %s",
			end_text(s, buf, sizeof(buf)));
	fprintf(zt_out, "\n");
	if (env.sample) {
		text_sampled(s);
		text_drops(n);
		return;
	}
	fprintf(zt_out,
		"  events     %llu allocs, %llu frees, %llu reallocs (%llu in place), %llu ooms\n",
		(unsigned long long)n->d.allocs, (unsigned long long)n->d.frees,
		(unsigned long long)c->reallocs,
		(unsigned long long)c->reallocs_inplace,
		(unsigned long long)c->ooms);
	fprintf(zt_out,
		"  live       %lld blocks, %lld bytes (%lld usable) allocated since attach, seen by BPF\n",
		(long long)n->d.live_blocks, (long long)n->d.live_bytes,
		(long long)n->d.live_usable);
	text_target(s);
	fprintf(zt_out,
		"  untracked  %llu frees of blocks allocated before attach%s (%llu bytes usable)\n",
		(unsigned long long)c->untracked_frees,
		c->drop_live_full || c->drop_live_error ? " or not tracked" :
							  "",
		(unsigned long long)c->untracked_free_bytes);
	if (c->missed_frees || c->realloc_races)
		fprintf(zt_out,
			"  missed     %llu frees seen late (%llu bytes; address reused, stale block retired), %llu realloc races\n",
			(unsigned long long)c->missed_frees,
			(unsigned long long)c->missed_free_bytes,
			(unsigned long long)c->realloc_races);
	text_drops(n);
}

void report_text_end(struct zt_session *s)
{
	if (session_incomplete(s))
		fprintf(zt_out,
			"  INCOMPLETE: some events were not recorded (see drops); figures above count only what was\n");
	fprintf(zt_out, "\n");
	fflush(zt_out);
}

static void json_target(struct jw *w, struct zt_session *s)
{
	const struct zt_snapshot *n = &s->cur;

	jw_obj(w, "target");
	jw_s64(w, "pid", s->target.pid);
	jw_str(w, "comm", s->target.comm);
	jw_str(w, "probe_file", s->target.probe_path);
	jw_bool(w, "static", s->target.probes_in_exe);
	if (n->used_memory_err) {
		jw_null(w, "used_memory");
		jw_str(w, "used_memory_error", strerror(-n->used_memory_err));
	} else {
		jw_s64(w, "used_memory", n->used_memory);
	}
	if (n->rss_err)
		jw_null(w, "rss");
	else
		jw_u64(w, "rss", n->rss);
	if (!n->used_memory_err && !n->rss_err && n->used_memory > 0)
		jw_double(w, "rss_per_used_memory",
			  (double)n->rss / n->used_memory);
	else
		jw_null(w, "rss_per_used_memory");
	jw_bool(w, "figures_stale", n->stale);
	if (s->target.status_known && WIFEXITED(s->target.wstatus))
		jw_s64(w, "exit_status", WEXITSTATUS(s->target.wstatus));
	else if (s->target.status_known && WIFSIGNALED(s->target.wstatus))
		jw_s64(w, "exit_signal", WTERMSIG(s->target.wstatus));
	jw_obj_end(w);
}

static void json_drops(struct jw *w, const struct zt_session *s)
{
	const struct zt_snapshot *n = &s->cur;
	const struct zt_counters *c = &n->c;

	jw_obj(w, "drops");
	jw_u64(w, "live_map_full", c->drop_live_full);
	jw_u64(w, "live_map_error", c->drop_live_error);
	jw_u64(w, "untracked_bytes", c->drop_live_bytes);
	jw_u64(w, "untracked_usable", c->drop_live_usable);
	jw_u64(w, "stack_collision", c->drop_stack_collision);
	jw_u64(w, "stack_error", c->drop_stack_error);
	jw_u64(w, "stack_totals_full", c->drop_totals_full);
	jw_u64(w, "args_unreadable", c->drop_args);
	jw_u64(w, "prog_missed", n->prog_missed);
	if (env.sample)
		jw_u64(w, "samples_lost", samples_lost(s));
	jw_obj_end(w);
	jw_bool(w, "complete", !session_incomplete(s));
	jw_obj(w, "bpf");
	jw_u64(w, "run_time_ns", n->prog_run_ns);
	jw_u64(w, "run_cnt", n->prog_run_cnt);
	jw_obj_end(w);
}

/* Sampled mode: the same keys, estimated, each with its samples. */
static void json_sampled(struct jw *w, const struct zt_session *s)
{
	const struct zt_snapshot *n = &s->cur;
	const struct zt_sample_ctl *sc = &s->sc;
	const struct zt_counters *c = &n->c;
	struct zt_estimates e;

	estimate_totals(n, &e);
	jw_obj(w, "sampling");
	if (sc->err && !sc->mean_bytes)
		jw_null(w, "mean_bytes");
	else
		jw_u64(w, "mean_bytes", sc->mean_bytes);
	jw_bool(w, "rate_set_by_ztrace", sc->set_bytes || env.sample_bytes);
	jw_u64(w, "lost", sc->lost);
	jw_u64(w, "lost_since_attach", samples_lost(s));
	jw_u64(w, "sample_alloc_hits", n->sample_alloc_hits);
	jw_u64(w, "live_unverified", n->live_unverified);
	jw_u64(w, "headers_read", n->live_headers_read);
	jw_u64(w, "live_checks", n->live_checks);
	jw_u64(w, "ways_reused", c->sample_ways_reused);
	jw_u64(w, "stacks_read", c->sample_stacks_read);
	jw_u64(w, "stacks_walked", c->sample_stacks_walked);
	jw_u64(w, "stack_hash_mismatches", c->sample_hash_mismatches);
	jw_bool(w, "args_in_registers", s->probes.sample_regs_fixed);
	jw_obj_end(w);
	jw_obj(w, "events");
	jw_bool(w, "estimated", true);
	jw_u64(w, "samples", e.alloc_samples);
	jw_u64(w, "allocs", e.allocs);
	jw_u64(w, "alloc_samples", e.alloc_samples);
	jw_u64(w, "alloc_bytes", e.alloc_bytes);
	jw_u64(w, "frees", e.frees);
	jw_u64(w, "free_samples", e.free_samples);
	jw_u64(w, "free_bytes", e.free_bytes);
	jw_u64(w, "ooms", c->ooms);
	jw_u64(w, "oom_bytes", c->oom_bytes);
	jw_obj_end(w);
	jw_obj(w, "live");
	jw_bool(w, "estimated", true);
	jw_s64(w, "samples", e.live_samples);
	jw_u64(w, "blocks", e.live_blocks);
	jw_s64(w, "bytes", e.live_bytes);
	jw_obj_end(w);
	jw_obj(w, "missed_frees");
	jw_u64(w, "count", c->missed_frees);
	jw_u64(w, "bytes", c->missed_free_bytes);
	jw_obj_end(w);
	json_drops(w, s);
}

static void json_counters(struct jw *w, const struct zt_snapshot *n)
{
	const struct zt_counters *c = &n->c;

	jw_obj(w, "events");
	jw_u64(w, "allocs", n->d.allocs);
	jw_u64(w, "frees", n->d.frees);
	jw_u64(w, "reallocs", c->reallocs);
	jw_u64(w, "reallocs_inplace", c->reallocs_inplace);
	jw_u64(w, "ooms", c->ooms);
	jw_u64(w, "oom_bytes", c->oom_bytes);
	jw_obj_end(w);
	jw_obj(w, "live");
	jw_s64(w, "blocks", n->d.live_blocks);
	jw_s64(w, "bytes", n->d.live_bytes);
	jw_s64(w, "usable", n->d.live_usable);
	jw_obj_end(w);
	jw_obj(w, "untracked_frees");
	jw_u64(w, "count", c->untracked_frees);
	jw_u64(w, "usable", c->untracked_free_bytes);
	jw_obj_end(w);
	jw_obj(w, "missed_frees");
	jw_u64(w, "count", c->missed_frees);
	jw_u64(w, "bytes", c->missed_free_bytes);
	jw_u64(w, "realloc_races", c->realloc_races);
	jw_obj_end(w);
}

void report_json_begin(struct jw *w, struct zt_session *s, bool final)
{
	const struct zt_snapshot *n = &s->cur, *p = &s->prev;
	char buf[128];

	jw_begin(w, zt_out);
	jw_str(w, "type", env.mode_name);
	jw_u64(w, "seq", s->seq);
	jw_bool(w, "final", final);
	if (final)
		jw_str(w, "end", end_text(s, buf, sizeof(buf)));
	jw_double(w, "since_attach_s", secs(n->mono_ns - s->attach_ns));
	jw_double(w, "interval_s", secs(n->mono_ns - p->mono_ns));
	jw_u64(w, "max_blocks", env.max_blocks);
	jw_u64(w, "live_capacity", s->probes.live_capacity);
	jw_bool(w, "sampled", env.sample);
	json_target(w, s);
	if (env.sample) {
		json_sampled(w, s);
		return;
	}
	json_counters(w, n);
	json_drops(w, s);
}

void report_json_end(struct jw *w, struct zt_session *s)
{
	jw_end(w);
}
