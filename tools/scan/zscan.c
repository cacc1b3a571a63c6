/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zscan.c - the stop-the-world scan, and what every mode shares.
 *
 * Order: index the candidates (before the stop: sorting is the slow
 * part), stop every thread, read the registers and the mappings, mark
 * from the roots until the mark stack is empty, resume. The cliques of
 * lost blocks are worked out after the resume: a block that nothing
 * pointed to at the stop cannot be written any more, so reading it late
 * gives what it held.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "zscan_int.h"

void zs_log(const struct zscan_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o || !o->log)
		return;
	va_start(ap, fmt);
	o->log(o->log_arg, fmt, ap);
	va_end(ap);
}

uint64_t zs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void zs_opts_copy(struct zscan_opts *dst, const struct zscan_opts *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src) {
		size_t sz = src->sz && src->sz < sizeof(*dst) ? src->sz :
								sizeof(*dst);

		memcpy(dst, src, sz);
	}
	dst->sz = sizeof(*dst);
	if (!dst->chunk_bytes)
		dst->chunk_bytes = ZS_CHUNK_DEFAULT;
	if (dst->chunk_bytes < 65536)
		dst->chunk_bytes = 65536;
	dst->chunk_bytes &= ~7ULL;
}

void zs_stats_count(struct zscan_stats *st, const struct zscan_block *b,
		    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t ext = b[i].req && b[i].req <= b[i].size ? b[i].req :
								   b[i].size;

		if (b[i].cls >= ZSCAN_NR_CLASSES)
			continue;
		st->blocks[b[i].cls]++;
		st->bytes[b[i].cls] += ext;
	}
}

const char *zscan_class_name(unsigned int cls)
{
	static const char *const names[] = {
		[ZSCAN_DEFINITELY_LOST] = "definitely lost",
		[ZSCAN_INDIRECTLY_LOST] = "indirectly lost",
		[ZSCAN_POSSIBLY_LOST] = "possibly lost",
		[ZSCAN_STILL_REACHABLE] = "still reachable",
		[ZSCAN_UNDECIDED] = "undecided",
	};

	return cls < ZSCAN_NR_CLASSES ? names[cls] : "?";
}

int zs_stopped_roots(struct zs_mark *m, struct zs_world *w,
		     const struct zscan_opts *o, struct zscan_stats *st,
		     struct zs_maps *maps, struct zs_ranges *roots)
{
	int err;

	err = zs_world_regs(w, o);
	if (err)
		return err;
	if (o->stopped)
		o->stopped(o->stopped_arg, m->pid);
	st->threads = 0;
	for (size_t i = 0; i < w->n; i++)
		st->threads += !w->th[i].gone;
	err = zs_maps_read(m->pid, maps);
	if (err)
		return err;
	err = zs_roots(maps, w, false, o->flags, m->pid, roots, st);
	if (err) {
		zs_ranges_free(roots);
		zs_maps_free(maps);
	}
	return err;
}

/* Everything of the scan that needs the target stopped. */
static int scan_stopped(struct zs_mark *m, struct zs_world *w,
			const struct zscan_opts *o, struct zscan_stats *st)
{
	struct zs_ranges roots = { 0 };
	struct zs_maps maps;
	int err;

	err = zs_stopped_roots(m, w, o, st, &maps, &roots);
	if (err)
		return err;
	m->stopped = true;
	err = zs_mark_copy(m);
	if (!err)
		err = zs_mark_regs(m, w);
	if (!err)
		err = zs_mark_roots(m, &roots);
	if (!err)
		err = zs_mark_drain(m);
	m->stopped = false;
	zs_ranges_free(&roots);
	zs_maps_free(&maps);
	return err;
}

int zscan_scan(pid_t pid, struct zscan_block *blocks, size_t n,
	       const struct zscan_opts *opts, struct zscan_stats *st)
{
	struct zscan_stats local;
	struct zscan_opts o;
	struct zs_world w;
	struct zs_mark m;
	uint64_t t0 = zs_now_ns();
	bool undecided;
	int err;

	if (pid <= 0 || (n && !blocks))
		return -EINVAL;
	zs_opts_copy(&o, opts);
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (o.held_tid && (o.flags & ZSCAN_F_SNAPSHOT))
		return -EINVAL;
	err = zs_mark_init(&m, pid, blocks, n, &o, st);
	if (err)
		return err;
	if (o.flags & ZSCAN_F_SNAPSHOT) {
		uint64_t gadget = 0;

		err = zs_snap_scan(pid, &gadget, &m, &o, st);
		if (err)
			goto out_free_mark;
		zs_mark_classify(&m, blocks, n, st->unreadable_bytes != 0);
		zs_stats_count(st, blocks, n);
		goto out_free_mark;
	}
	err = zs_mark_copy_prepare(&m, o.copy_bytes_max);
	if (err)
		goto out_free_mark;
	err = zs_world_stop(&w, pid, &o);
	if (!err)
		err = scan_stopped(&m, &w, &o, st);
	zs_world_resume(&w);
	st->pause_ns = w.pause_ns;
	zs_world_free(&w);
	if (err)
		goto out_free_mark;
	undecided = st->unreadable_bytes != 0;
	err = zs_mark_cliques(&m);
	if (err)
		goto out_free_mark;
	zs_mark_classify(&m, blocks, n, undecided);
	zs_stats_count(st, blocks, n);
out_free_mark:
	zs_mark_free(&m);
	st->total_ns = zs_now_ns() - t0;
	return err;
}
