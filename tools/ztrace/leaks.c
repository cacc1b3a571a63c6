/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leaks.c - "ztrace leaks": the allocating stacks of outstanding blocks
 * older than --min-age, largest first, symbolized while the target lives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "estimate.h"
#include "json.h"
#include "leak_scan.h"
#include "leaks.h"
#include "modes.h"
#include "output.h"
#include "report.h"
#include "session.h"

/* Symbolize the stacks stored that are not yet, while the target runs. */
static void symbolize_new_stacks(struct zt_session *s)
{
	__u64 ips[ZT_MAX_STACK_DEPTH];
	bool refreshed = false;
	__u32 *ids;
	size_t i, n;
	int nips;

	if (collect_stack_ids(&s->probes, &ids, &n))
		return;
	for (i = 0; i < n; i++) {
		if (symbolized(&s->sym, ids[i]))
			continue;
		if (!refreshed) {
			symbolizer_refresh(&s->sym, &s->target);
			refreshed = true;
		}
		nips = collect_stack(&s->probes, ids[i], ips,
				     ZT_MAX_STACK_DEPTH);
		if (nips > 0)
			symbolize(&s->sym, ids[i], ips, nips, true);
	}
	free(ids);
}

/*
 * Each refresh: walking the stack map costs a syscall a stack, so it is
 * walked only when stacks have been stored since the last walk.
 */
void leaks_refresh(struct zt_session *s)
{
	__u64 stored;

	if (collect_stacks_stored(&s->probes, &stored) ||
	    stored == s->stacks_symbolized)
		return;
	s->stacks_symbolized = stored;
	symbolize_new_stacks(s);
}

const struct zt_sym_stack *leak_stack(struct zt_session *s, __u32 stack_id)
{
	__u64 ips[ZT_MAX_STACK_DEPTH];
	int n;

	if (stack_id == ZT_STACK_NONE)
		return NULL;
	if (s->alive && !symbolized(&s->sym, stack_id))
		symbolize_new_stacks(s);
	n = collect_stack(&s->probes, stack_id, ips, ZT_MAX_STACK_DEPTH);
	if (n <= 0)
		return NULL;
	return symbolize(&s->sym, stack_id, ips, n, s->alive);
}

static void text_frame(const struct zt_frame *f)
{
	fprintf(zt_out, "        ");
	if (f->func)
		fprintf(zt_out, "%s+0x%llx", f->func,
			(unsigned long long)f->offset);
	else
		fprintf(zt_out, "0x%llx", (unsigned long long)f->ip);
	if (f->file)
		fprintf(zt_out, " %s:%d", f->file, f->line);
	if (f->module)
		fprintf(zt_out, " [%s]", f->module);
	fprintf(zt_out, "\n");
}

/* --sample: a stack's estimates, and the samples behind them. */
static void text_sampled_leak(struct zt_session *s, size_t rank,
			      const struct zt_leak *l)
{
	fprintf(zt_out,
		"  #%zu ~%llu bytes in ~%llu blocks (est. from %llu samples), oldest sample %.2f s; this stack: ~%llu allocs, ~%llu bytes since attach (%llu samples)\n",
		rank, (unsigned long long)l->est_bytes,
		(unsigned long long)est_count(l->est_milli),
		(unsigned long long)l->blocks,
		(s->cur.mono_ns - l->oldest_ns) / 1e9,
		(unsigned long long)est_count(l->total_est_milli),
		(unsigned long long)l->total_bytes,
		(unsigned long long)l->total_allocs);
}

static void json_sampled_leak(struct jw *w, const struct zt_leak *l)
{
	jw_bool(w, "estimated", true);
	jw_u64(w, "samples", l->blocks);
	jw_u64(w, "sample_bytes", l->bytes);
	jw_u64(w, "bytes", l->est_bytes);
	jw_u64(w, "blocks", est_count(l->est_milli));
	jw_u64(w, "stack_samples", l->total_allocs);
	jw_u64(w, "stack_allocs", est_count(l->total_est_milli));
	jw_u64(w, "stack_bytes", l->total_bytes);
	jw_s64(w, "stack_live_samples", l->total_live_blocks);
	jw_u64(w, "stack_live_blocks", est_count(l->total_live_est_milli));
	jw_s64(w, "stack_live_bytes", l->total_live_bytes);
}

static void text_leak(struct zt_session *s, size_t rank,
		      const struct zt_leak *l)
{
	const struct zt_sym_stack *st = leak_stack(s, l->stack_id);
	int i;

	if (env.sample)
		text_sampled_leak(s, rank, l);
	else
		fprintf(zt_out,
			"  #%zu %llu bytes in %llu blocks (%llu usable), oldest %.2f s; this stack: %llu allocs, %llu bytes since attach\n",
			rank, (unsigned long long)l->bytes,
			(unsigned long long)l->blocks,
			(unsigned long long)l->usable,
			(s->cur.mono_ns - l->oldest_ns) / 1e9,
			(unsigned long long)l->total_allocs,
			(unsigned long long)l->total_bytes);
	if (!st) {
		fprintf(zt_out, "        [stack not recorded: see drops]\n");
		return;
	}
	for (i = 0; i < st->nframes; i++)
		text_frame(&st->frames[i]);
}

static void json_frames(struct jw *w, const struct zt_sym_stack *st)
{
	char ip[32];
	int i;

	jw_arr(w, "frames");
	for (i = 0; st && i < st->nframes; i++) {
		const struct zt_frame *f = &st->frames[i];

		jw_obj(w, NULL);
		snprintf(ip, sizeof(ip), "0x%llx", (unsigned long long)f->ip);
		jw_str(w, "ip", ip);
		jw_str(w, "func", f->func);
		jw_u64(w, "offset", f->offset);
		jw_str(w, "file", f->file);
		jw_s64(w, "line", f->line);
		jw_str(w, "module", f->module);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void json_leak(struct jw *w, struct zt_session *s,
		      const struct zt_leak *l)
{
	const struct zt_sym_stack *st = leak_stack(s, l->stack_id);

	jw_obj(w, NULL);
	if (l->stack_id == ZT_STACK_NONE)
		jw_null(w, "stack_id");
	else
		jw_u64(w, "stack_id", l->stack_id);
	jw_double(w, "oldest_age_s", (s->cur.mono_ns - l->oldest_ns) / 1e9);
	if (env.sample) {
		json_sampled_leak(w, l);
	} else {
		jw_u64(w, "bytes", l->bytes);
		jw_u64(w, "usable", l->usable);
		jw_u64(w, "blocks", l->blocks);
		jw_u64(w, "stack_allocs", l->total_allocs);
		jw_u64(w, "stack_bytes", l->total_bytes);
		jw_s64(w, "stack_live_blocks", l->total_live_blocks);
		jw_s64(w, "stack_live_bytes", l->total_live_bytes);
	}
	jw_s64(w, "frames_dropped", st ? st->dropped : 0);
	jw_bool(w, "symbolized_live", st && st->resolved);
	json_frames(w, st);
	jw_obj_end(w);
}

static size_t shown(const struct zt_leak_set *set)
{
	return env.top && env.top < set->n ? env.top : set->n;
}

static const char *const class_keys[ZSCAN_NR_CLASSES] = {
	[ZSCAN_DEFINITELY_LOST] = "definitely_lost",
	[ZSCAN_INDIRECTLY_LOST] = "indirectly_lost",
	[ZSCAN_POSSIBLY_LOST] = "possibly_lost",
	[ZSCAN_STILL_REACHABLE] = "still_reachable",
	[ZSCAN_UNDECIDED] = "undecided",
};

/* Rows with something lost, possibly lost or undecided are shown. */
static bool scan_row_shown(const struct zt_scan_row *row)
{
	return scan_row_lost(row) || row->blocks[ZSCAN_POSSIBLY_LOST] ||
	       row->blocks[ZSCAN_UNDECIDED];
}

static void text_scan_row(size_t rank, const struct zt_scan_row *row,
			  bool sampled)
{
	/* Sampled: estimated bytes, and the samples behind the lost ones. */
	const uint64_t *bytes = sampled ? row->est_bytes : row->bytes;
	const char *est = sampled ? "~" : "";

	fprintf(zt_out,
		"  lost #%zu %s%llu bytes definitely + %s%llu indirectly lost (%s%llu + %llu %s), %s%llu possibly lost, %s%llu undecided, %s%llu still reachable\n",
		rank, est, (unsigned long long)bytes[ZSCAN_DEFINITELY_LOST],
		est, (unsigned long long)bytes[ZSCAN_INDIRECTLY_LOST],
		sampled ? "est. from " : "",
		(unsigned long long)row->blocks[ZSCAN_DEFINITELY_LOST],
		(unsigned long long)row->blocks[ZSCAN_INDIRECTLY_LOST],
		sampled ? "samples" : "blocks", est,
		(unsigned long long)bytes[ZSCAN_POSSIBLY_LOST], est,
		(unsigned long long)bytes[ZSCAN_UNDECIDED], est,
		(unsigned long long)bytes[ZSCAN_STILL_REACHABLE]);
}

static void text_scan(struct zt_session *s, const struct zt_scan_result *r)
{
	const struct zscan_stats *st = &r->st;
	char a[32], b[32], c_absent[32];
	size_t i, rank = 0;
	int c, f;

	fprintf(zt_out,
		"  scan       %s: target stopped %.2f ms, %s scanned (%s of roots, %llu unreadable bytes, %s with no page: not read), %u thread%s, %llu candidate blocks (%llu freed during the scan: no verdict)\n",
		r->snapshot   ? "fork snapshot" :
		r->concurrent ? "concurrent" :
				"stop the world",
		st->pause_ns / 1e6, fmt_size(a, sizeof(a), st->scanned_bytes),
		fmt_size(b, sizeof(b), st->root_bytes),
		(unsigned long long)st->unreadable_bytes,
		fmt_size(c_absent, sizeof(c_absent), st->absent_bytes),
		st->threads, st->threads == 1 ? "" : "s",
		(unsigned long long)r->candidates,
		(unsigned long long)r->changed);
	if (st->outran_bytes)
		fprintf(zt_out,
			"  scan       no verdicts this time: rescanning what the target wrote during the scan, with its stacks (%s), would have stopped it about %.1f ms, over --scan-pause-max %g ms, so it was resumed at once; the next scan tries again (a larger --scan-pause-max, or --scan=snapshot, gives verdicts now)\n",
			fmt_size(a, sizeof(a), st->outran_bytes),
			st->outran_ns / 1e6, env.scan_pause_max);
	for (c = 0; c < ZSCAN_NR_CLASSES; c++) {
		if (r->sampled)
			fprintf(zt_out,
				"  %-17s ~%llu bytes in ~%llu blocks (est. from %llu samples)\n",
				zscan_class_name(c),
				(unsigned long long)r->est_bytes[c],
				(unsigned long long)est_count(r->est_milli[c]),
				(unsigned long long)st->blocks[c]);
		else
			fprintf(zt_out, "  %-17s %llu bytes in %llu blocks\n",
				zscan_class_name(c),
				(unsigned long long)st->bytes[c],
				(unsigned long long)st->blocks[c]);
	}
	for (i = 0; i < r->n; i++) {
		const struct zt_scan_row *row = &r->rows[i];
		const struct zt_sym_stack *sym;

		if (!scan_row_shown(row))
			continue;
		if (env.top && rank == env.top)
			break;
		text_scan_row(++rank, row, r->sampled);
		sym = leak_stack(s, row->stack_id);
		if (!sym) {
			fprintf(zt_out,
				"        [stack not recorded: see drops]\n");
			continue;
		}
		for (f = 0; f < sym->nframes; f++)
			text_frame(&sym->frames[f]);
	}
	if (!rank)
		fprintf(zt_out, "  no block is lost\n");
}

/* Sampled (est_bytes set): estimates under the keys, with the samples. */
static void json_classes(struct jw *w, const uint64_t *blocks,
			 const uint64_t *bytes, const uint64_t *est_bytes,
			 const uint64_t *est_milli)
{
	int c;

	for (c = 0; c < ZSCAN_NR_CLASSES; c++) {
		jw_obj(w, class_keys[c]);
		if (est_bytes) {
			jw_bool(w, "estimated", true);
			jw_u64(w, "samples", blocks[c]);
			jw_u64(w, "blocks", est_count(est_milli[c]));
			jw_u64(w, "bytes", est_bytes[c]);
		} else {
			jw_u64(w, "blocks", blocks[c]);
			jw_u64(w, "bytes", bytes[c]);
		}
		jw_obj_end(w);
	}
}

static void json_scan(struct jw *w, struct zt_session *s,
		      const struct zt_scan_result *r)
{
	const struct zscan_stats *st = &r->st;
	size_t i;

	jw_obj(w, "scan");
	jw_str(w, "mode",
	       r->snapshot   ? "snapshot" :
	       r->concurrent ? "concurrent" :
			       "stop");
	jw_double(w, "pause_ms", st->pause_ns / 1e6);
	jw_double(w, "total_ms", st->total_ns / 1e6);
	jw_u64(w, "scanned_bytes", st->scanned_bytes);
	jw_u64(w, "root_bytes", st->root_bytes);
	jw_u64(w, "unreadable_bytes", st->unreadable_bytes);
	jw_u64(w, "absent_bytes", st->absent_bytes);
	jw_u64(w, "threads", st->threads);
	jw_u64(w, "candidates", r->candidates);
	jw_u64(w, "changed", r->changed);
	if (r->concurrent && !r->snapshot) {
		jw_double(w, "pause_max_ms", env.scan_pause_max);
		jw_u64(w, "outran_bytes", st->outran_bytes);
		jw_double(w, "outran_ms", st->outran_ns / 1e6);
	}
	json_classes(w, st->blocks, st->bytes, r->sampled ? r->est_bytes : NULL,
		     r->est_milli);
	jw_arr(w, "stacks");
	for (i = 0; i < r->n; i++) {
		const struct zt_scan_row *row = &r->rows[i];

		jw_obj(w, NULL);
		if (row->stack_id == ZT_STACK_NONE)
			jw_null(w, "stack_id");
		else
			jw_u64(w, "stack_id", row->stack_id);
		json_classes(w, row->blocks, row->bytes,
			     r->sampled ? row->est_bytes : NULL,
			     row->est_milli);
		json_frames(w, leak_stack(s, row->stack_id));
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

/*
 * A scan needs the target alive; a failed one is reported, not fatal. A
 * command ztrace started is seized for its exit, so ztrace holds it
 * stopped itself and zscan stops the other threads; that is always a
 * stop-the-world scan, and at the command's exit it is the last word on
 * its memory, as valgrind's at exit.
 */
static bool scan_now(struct zt_session *s, struct zt_scan_result *r)
{
	struct zt_target *t = &s->target;
	bool held = t->spawned && t->traced && !t->exited, ok;
	bool concurrent = env.scan == ZT_SCAN_CONCURRENT ||
			  env.scan == ZT_SCAN_SNAPSHOT;
	static bool said;

	if ((env.scan == ZT_SCAN_NONE && !s->scan_requested) || !s->alive)
		return false;
	s->scan_requested = false;
	if (held && concurrent && !said) {
		p_info("a command ztrace runs is scanned stopped: --scan=concurrent and --scan=snapshot need -p PID");
		said = true;
	}
	if (held && spawn_hold(t))
		return false;
	ok = leak_scan_run(&s->probes, t->pid, concurrent && !held,
			   env.scan == ZT_SCAN_SNAPSHOT && !held,
			   held ? t->pid : 0, r) == 0;
	if (held)
		spawn_unhold(t);
	return ok;
}

static void leaks_report(struct zt_session *s, bool final)
{
	struct zt_scan_result scan;
	bool scanned;
	__u64 min_age_ns = (__u64)(env.min_age * 1e9);
	struct zt_leak_set set;
	size_t i;
	struct jw w;

	if (collect_leaks(&s->probes, s->cur.mono_ns, min_age_ns, &set))
		return;
	scanned = scan_now(s, &scan);
	if (env.json) {
		report_json_begin(&w, s, final);
		if (scanned)
			json_scan(&w, s, &scan);
		jw_obj(&w, "leaks");
		jw_double(&w, "min_age_s", env.min_age);
		if (env.sample) {
			jw_bool(&w, "estimated", true);
			jw_u64(&w, "samples", set.blocks);
			jw_u64(&w, "blocks", est_count(set.est_milli));
			jw_u64(&w, "bytes", set.est_bytes);
			jw_u64(&w, "young_samples", set.young_blocks);
			jw_u64(&w, "young_bytes", set.young_est_bytes);
		} else {
			jw_u64(&w, "blocks", set.blocks);
			jw_u64(&w, "bytes", set.bytes);
			jw_u64(&w, "young_blocks", set.young_blocks);
			jw_u64(&w, "young_bytes", set.young_bytes);
		}
		jw_u64(&w, "stacks", set.n);
		jw_arr(&w, "top");
		for (i = 0; i < shown(&set); i++)
			json_leak(&w, s, &set.v[i]);
		jw_arr_end(&w);
		jw_obj_end(&w);
		report_json_end(&w, s);
		goto out_free;
	}
	report_text_begin(s, final);
	if (scanned)
		text_scan(s, &scan);
	if (env.sample)
		fprintf(zt_out,
			"  leaks      ~%llu blocks, ~%llu bytes outstanding for %.2f s or more (est. from %llu samples), from %zu stacks (~%llu bytes younger, %llu samples)\n",
			(unsigned long long)est_count(set.est_milli),
			(unsigned long long)set.est_bytes, env.min_age,
			(unsigned long long)set.blocks, set.n,
			(unsigned long long)set.young_est_bytes,
			(unsigned long long)set.young_blocks);
	else
		fprintf(zt_out,
			"  leaks      %llu blocks, %llu bytes outstanding for %.2f s or more, from %zu stacks (%llu younger blocks, %llu bytes)\n",
			(unsigned long long)set.blocks,
			(unsigned long long)set.bytes, env.min_age, set.n,
			(unsigned long long)set.young_blocks,
			(unsigned long long)set.young_bytes);
	for (i = 0; i < shown(&set); i++)
		text_leak(s, i + 1, &set.v[i]);
	if (shown(&set) < set.n)
		fprintf(zt_out, "  ... %zu more stacks (--top 0 shows all)\n",
			set.n - shown(&set));
	report_text_end(s);
out_free:
	if (scanned)
		leak_scan_free(&scan);
	leak_set_free(&set);
	if (export_wanted())
		export_write(s, min_age_ns);
}

static const struct zt_mode_ops leaks_ops = {
	.stacks = true,
	.report = leaks_report,
	.refresh = leaks_refresh,
};

int do_leaks(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_LEAKS);

	if (err)
		return err > 0 ? 0 : 2;
	err = session_run(&leaks_ops);
	leak_scan_end();
	return err;
}
