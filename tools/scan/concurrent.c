/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * concurrent.c - the production mode: scan while the target runs, stop it
 * only to rescan what the running pass may have missed.
 *
 * 1. Arm the write tracker (wtrack.c: soft-dirty bits, or a userfaultfd
 *    that write-protects the target's memory), then mark from the roots
 *    as in zscan.c, reading while the target runs. Stacks are left for
 *    the stop: their live part is only known from the SP.
 * 2. Preclean, where the tracker can re-arm single pages: rescan, still
 *    running, the pages written during the pass, write-protecting them
 *    again first; again while that set shrinks, so that the stop finds
 *    only what was written during the last round.
 * 3. Stop. Every word read on a page not written since it was last armed
 *    still holds what was read (a clean page is unchanged); so rescan
 *    the registers, the stacks from their SP, the written pages of the
 *    roots and of the blocks already reached (all of what the tracker
 *    cannot vouch for), what the pass could not read, and mappings it
 *    did not see; then drain the mark stack. Resume. What was marked
 *    from a value since overwritten stays marked: that can only hide a
 *    leak, never invent one.
 * 4. The cliques of the lost blocks, after the resume.
 * 5. A block counts as lost only if the previous scan of this context
 *    found the same block (address and birth) lost too, as kmemleak asks:
 *    the candidate list is the caller's view, taken while the target ran,
 *    and a block it freed since may look lost once.
 *
 * The pause is the stop in step 3: the registers, the tracker's query,
 * and the pages written since the last round of step 2. The context's
 * first scan also counts the stop of one thread that makes the
 * userfaultfd. With opts.pause_max_ns, a stop that would last longer (the
 * rescan's bytes at the rate the running rescans achieved) resumes the
 * target at once, and the scan has no verdict: a target writing faster
 * than the scanner reads cannot lengthen its pause.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zscan_int.h"

struct zs_seen {
	uint64_t addr;
	uint64_t birth;
};

struct zscan_ctx {
	pid_t pid;
	uint64_t rescan_bytes, rescan_ns; /* this scan's running rescans */
	struct zscan_opts o;
	struct zs_seen *lost; /* lost in the last scan, sorted by address */
	size_t nlost;
	uint64_t gadget; /* ZSCAN_F_SNAPSHOT: found once, checked each time */
	struct zs_wtrack wt; /* the pages the target writes during a pass */
	struct zs_arena arena; /* the heap's copy, kept between scans */
};

/*
 * Precleaning: rounds while each finds at most 3/4 of what the last one
 * did, until one finds this little, or this many rounds.
 */
#define ZS_PRECLEAN_ROUNDS 8
#define ZS_PRECLEAN_DONE (1ULL << 20)

int zscan_ctx_new(pid_t pid, const struct zscan_opts *opts,
		  struct zscan_ctx **ctxp)
{
	struct zscan_ctx *ctx;

	if (pid <= 0 || !ctxp)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->pid = pid;
	zs_opts_copy(&ctx->o, opts);
	zs_wtrack_init(&ctx->wt, pid);
	if (ctx->o.held_tid) {
		/* Held threads are for one stopped-world scan only. */
		free(ctx);
		return -EINVAL;
	}
	*ctxp = ctx;
	return 0;
}

void zscan_ctx_free(struct zscan_ctx *ctx)
{
	if (!ctx)
		return;
	zs_wtrack_free(&ctx->wt);
	zs_arena_free(&ctx->arena);
	free(ctx->lost);
	free(ctx);
}

static uint64_t total(const struct zs_ranges *rs)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < rs->n; i++)
		sum += rs->r[i].hi - rs->r[i].lo;
	return sum;
}

/* Reads redo (normalized) again: the roots in it, the reached blocks. */
static int rescan(struct zs_mark *m, const struct zs_ranges *roots,
		  const struct zs_ranges *redo, const struct zs_world *w)
{
	struct zs_ranges root_redo = { 0 };
	int err;

	err = zs_ranges_and(roots, redo, &root_redo);
	if (!err)
		err = zs_mark_refresh(m, redo);
	if (!err && w)
		err = zs_mark_regs(m, w);
	if (!err)
		err = zs_mark_roots(m, &root_redo);
	if (!err)
		err = zs_mark_rescan_blocks(m, redo);
	if (!err)
		err = zs_mark_drain(m);
	zs_ranges_free(&root_redo);
	return err;
}

/* Step 3's ranges: stopped, rescan. */
/*
 * Would rescanning bytes go over the pause bound? At the rate of this
 * scan's running rescans (precleaning, else the pass). What the stop has
 * cost so far (the threads, the maps, the tracker's query) is spent
 * whatever is decided now: the bound is on the rescan, and outran_ns
 * says how long the whole stop would have been.
 */
static bool over_budget(const struct zscan_ctx *ctx, uint64_t bytes,
			uint64_t stop_ns, struct zscan_stats *st)
{
	uint64_t max = ctx->o.pause_max_ns, need;

	if (!max || !ctx->rescan_bytes || !bytes)
		return false;
	need = (uint64_t)((double)bytes * ctx->rescan_ns / ctx->rescan_bytes);
	if (need <= max)
		return false;
	st->outran_bytes = bytes;
	st->outran_ns = zs_now_ns() - stop_ns + need;
	return true;
}

static int rescan_stopped(struct zscan_ctx *ctx, struct zs_mark *m,
			  const struct zs_ranges *roots_a,
			  const struct zs_ranges *bad_a, struct zscan_stats *st,
			  struct zs_world *w)
{
	const struct zscan_opts *o = &ctx->o;
	struct zs_ranges roots_t = { 0 }, dirty = { 0 };
	struct zs_ranges redo = { 0 }, fresh = { 0 };
	struct zs_maps maps;
	int err;

	err = zs_stopped_roots(m, w, o, st, &maps, &roots_t);
	if (err)
		return err;
	/* What the tracker cannot vouch for counts as written. */
	err = zs_wtrack_written(&ctx->wt, &maps, &roots_t, false, &dirty);
	if (err)
		goto out_free;
	zs_ranges_normalize(&dirty);
	st->dirty_bytes += total(&dirty);
	/* redo = written, or unread by the pass, or not a root of it. */
	err = zs_ranges_sub(&roots_t, roots_a, &fresh);
	for (size_t i = 0; i < dirty.n && !err; i++)
		err = zs_ranges_add(&redo, dirty.r[i].lo, dirty.r[i].hi);
	for (size_t i = 0; i < bad_a->n && !err; i++)
		err = zs_ranges_add(&redo, bad_a->r[i].lo, bad_a->r[i].hi);
	for (size_t i = 0; i < fresh.n && !err; i++)
		err = zs_ranges_add(&redo, fresh.r[i].lo, fresh.r[i].hi);
	if (err)
		goto out_free;
	zs_ranges_normalize(&redo);
	if (over_budget(ctx, total(&redo), w->t_stop, st))
		goto out_free;
	m->stopped = true;
	m->badr = NULL;
	err = rescan(m, &roots_t, &redo, w);
	m->stopped = false;
out_free:
	zs_ranges_free(&fresh);
	zs_ranges_free(&redo);
	zs_ranges_free(&dirty);
	zs_ranges_free(&roots_t);
	zs_maps_free(&maps);
	return err;
}

/* Step 1: arm the tracker, then the pass while the target runs. */
static int pass_running(struct zscan_ctx *ctx, struct zs_mark *m,
			struct zs_ranges *roots_a, struct zs_ranges *bad_a,
			struct zscan_stats *st)
{
	const struct zscan_opts *o = &ctx->o;
	struct zs_maps maps;
	uint64_t t0;
	int err;

	/* Before the arming: filling the copies takes a while. */
	err = zs_mark_copy_prepare(m, o->copy_bytes_max);
	if (!err)
		err = zs_maps_read(m->pid, &maps);
	if (err)
		return err;
	err = zs_wtrack_arm(&ctx->wt, &maps, o, &st->pause_ns);
	st->tracker = ctx->wt.kind;
	if (!err)
		err = zs_roots(&maps, NULL, true, o->flags, m->pid, roots_a,
			       st);
	zs_maps_free(&maps);
	if (err)
		return err;
	m->badr = bad_a;
	t0 = zs_now_ns();
	err = zs_mark_copy(m);
	if (!err)
		err = zs_mark_roots(m, roots_a);
	if (!err)
		err = zs_mark_drain(m);
	m->badr = NULL;
	/*
	 * The rate a stop would rescan at, until precleaning measures it:
	 * the copy's bytes are scanned too, so counted once.
	 */
	ctx->rescan_bytes = st->scanned_bytes;
	ctx->rescan_ns = zs_now_ns() - t0;
	return err;
}

/*
 * Step 2: the pages written since the last arming, re-armed and rescanned
 * while the target runs, while that shrinks the set.
 */
static int preclean(struct zscan_ctx *ctx, struct zs_mark *m,
		    const struct zs_ranges *roots_a, struct zs_ranges *bad_a,
		    struct zscan_stats *st)
{
	uint64_t bytes, last = UINT64_MAX, t0;
	struct zs_ranges d = { 0 };
	struct zs_maps maps;
	int err = 0;

	for (int i = 0; i < ZS_PRECLEAN_ROUNDS && !err; i++) {
		if (!zs_wtrack_can_rearm(&ctx->wt))
			break;
		d.n = 0;
		err = zs_maps_read(m->pid, &maps);
		if (err)
			break;
		err = zs_wtrack_written(&ctx->wt, &maps, roots_a, true, &d);
		zs_maps_free(&maps);
		if (err)
			break;
		zs_ranges_normalize(&d);
		bytes = total(&d);
		st->preclean_bytes += bytes;
		m->badr = bad_a;
		t0 = zs_now_ns();
		err = rescan(m, roots_a, &d, NULL);
		m->badr = NULL;
		/* The rescan alone: the stop's query is spent either way. */
		if (bytes) {
			ctx->rescan_bytes = bytes;
			ctx->rescan_ns = zs_now_ns() - t0;
		}
		if (!err && ctx->o.passed)
			ctx->o.passed(ctx->o.passed_arg, ctx->pid, i + 1);
		/* Small enough, or no longer shrinking: stop now. */
		if (bytes <= ZS_PRECLEAN_DONE || bytes > last / 4 * 3)
			break;
		last = bytes;
	}
	zs_ranges_free(&d);
	return err;
}

static int cmp_seen(const void *a, const void *b)
{
	const struct zs_seen *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->birth < y->birth ? -1 : x->birth > y->birth;
}

static bool is_lost(uint8_t cls)
{
	return cls == ZSCAN_DEFINITELY_LOST || cls == ZSCAN_INDIRECTLY_LOST ||
	       cls == ZSCAN_POSSIBLY_LOST;
}

/* Step 4: keep a lost verdict only if the last scan agreed. */
static int confirm(struct zscan_ctx *ctx, struct zscan_block *b, size_t n)
{
	struct zs_seen *now, key;
	size_t k = 0;

	now = malloc((n ? n : 1) * sizeof(*now));
	if (!now)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!is_lost(b[i].cls))
			continue;
		key.addr = b[i].addr;
		key.birth = b[i].birth;
		now[k++] = key;
		if (!ctx->nlost || !bsearch(&key, ctx->lost, ctx->nlost,
					    sizeof(key), cmp_seen))
			b[i].cls = ZSCAN_UNDECIDED;
	}
	qsort(now, k, sizeof(*now), cmp_seen);
	free(ctx->lost);
	ctx->lost = now;
	ctx->nlost = k;
	return 0;
}

int zscan_ctx_scan(struct zscan_ctx *ctx, struct zscan_block *blocks, size_t n,
		   struct zscan_stats *st)
{
	struct zs_ranges roots_a = { 0 }, bad_a = { 0 };
	struct zscan_stats local;
	struct zs_world w;
	struct zs_mark m;
	uint64_t t0 = zs_now_ns();
	bool undecided;
	int err;

	if (!ctx || (n && !blocks))
		return -EINVAL;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	err = zs_mark_init(&m, ctx->pid, blocks, n, &ctx->o, st);
	if (err)
		return err;
	m.arena = &ctx->arena;
	if (ctx->o.flags & ZSCAN_F_SNAPSHOT) {
		err = zs_snap_scan(ctx->pid, &ctx->gadget, &m, &ctx->o, st);
		if (err)
			goto out_free;
		undecided = st->unreadable_bytes != 0;
		goto classify;
	}
	err = pass_running(ctx, &m, &roots_a, &bad_a, st);
	if (!err && ctx->o.passed)
		ctx->o.passed(ctx->o.passed_arg, ctx->pid, 0);
	if (!err)
		err = preclean(ctx, &m, &roots_a, &bad_a, st);
	if (err)
		goto out_free;
	zs_ranges_normalize(&bad_a);
	/* What the pass could not read is retried below; count anew. */
	st->unreadable_bytes = 0;
	st->device_bytes = 0;
	err = zs_world_stop(&w, ctx->pid, &ctx->o);
	if (!err)
		err = rescan_stopped(ctx, &m, &roots_a, &bad_a, st, &w);
	zs_world_resume(&w);
	st->pause_ns += w.pause_ns;
	zs_world_free(&w);
	if (err)
		goto out_free;
	undecided = st->unreadable_bytes != 0 || st->outran_bytes;
	err = zs_mark_cliques(&m);
	if (err)
		goto out_free;
classify:
	zs_mark_classify(&m, blocks, n, false);
	if (undecided) {
		zs_mark_classify(&m, blocks, n, true);
		/*
		 * No verdict. Unreadable memory: no evidence for the next scan
		 * either. Outran: the last scan's evidence stands, for the next
		 * to agree with (two agreeing scans further apart are as
		 * sound), so that a writer outrunning every other scan still
		 * gets verdicts.
		 */
		if (!st->outran_bytes) {
			free(ctx->lost);
			ctx->lost = NULL;
			ctx->nlost = 0;
		}
	} else {
		err = confirm(ctx, blocks, n);
		if (err)
			goto out_free;
	}
	zs_stats_count(st, blocks, n);
out_free:
	zs_ranges_free(&bad_a);
	zs_ranges_free(&roots_a);
	zs_mark_free(&m);
	st->total_ns = zs_now_ns() - t0;
	return err;
}
