/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leak_scan.c - run zscan on the target with the live blocks as candidates
 * and sum its verdicts per allocating stack (see leak_scan.h).
 *
 * The live table is read just before the scan, so a block freed between
 * the read and the stop would look lost: after the scan the table is read
 * again, and a candidate that is no longer there (or whose address now
 * holds a younger block) gets no verdict; it is counted as changed. Blocks
 * allocated in that window are not candidates, so their memory is a root:
 * never a false verdict of lost, at worst a leak found one scan later.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"
#include "estimate.h"
#include "leak_scan.h"
#include "options.h"
#include "probes.h"
#include "output.h"
#include "ztrace_types.h"

struct block_list {
	struct zscan_block *v;
	__u64 *weight; /* sampled mode: each candidate's weight */
	size_t n, cap;
	bool sampled; /* a block's usable field is its sample's weight */
};

/* A block of the live table as it is after the scan. */
struct live_key {
	__u64 ptr;
	__u64 ts_ns;
};

struct key_list {
	struct live_key *v;
	size_t n, cap;
};

static struct zscan_ctx *concurrent_ctx;
static pid_t concurrent_pid;

static int add_block(void *arg, __u64 ptr, const struct zt_block *b)
{
	struct block_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		struct zscan_block *v = realloc(l->v, cap * sizeof(*v));
		__u64 *w;

		if (!v)
			return -ENOMEM;
		l->v = v;
		w = realloc(l->weight, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		l->weight = w;
		l->cap = cap;
	}
	l->weight[l->n] = b->weight;
	l->v[l->n++] = (struct zscan_block){
		.addr = ptr,
		.size = l->sampled ? b->requested : b->usable,
		.req = b->requested,
		.birth = b->ts_ns,
		.user = b->stack_id,
	};
	return 0;
}

static int add_key(void *arg, __u64 ptr, const struct zt_block *b)
{
	struct key_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		struct live_key *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct live_key){ ptr, b->ts_ns };
	return 0;
}

static int by_ptr(const void *a, const void *b)
{
	const struct live_key *x = a, *y = b;

	return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

/* Candidates freed or replaced since they were read get no verdict. */
static int drop_changed(const struct zt_probes *p, struct block_list *l,
			__u64 *changed)
{
	struct key_list now = { 0 };
	size_t i;
	int err;

	err = collect_each_block(p, add_key, &now);
	if (err)
		goto out_free;
	qsort(now.v, now.n, sizeof(*now.v), by_ptr);
	for (i = 0; i < l->n; i++) {
		struct live_key key = { l->v[i].addr, 0 }, *hit;

		hit = bsearch(&key, now.v, now.n, sizeof(*now.v), by_ptr);
		if (hit && hit->ts_ns == l->v[i].birth)
			continue;
		l->v[i].cls = ZSCAN_NR_CLASSES;
		(*changed)++;
	}
out_free:
	free(now.v);
	return err;
}

static void scan_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];

	(void)arg;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	p_warn("scan: %s", msg);
}

static int by_lost_desc(const void *a, const void *b)
{
	const struct zt_scan_row *x = a, *y = b;
	__u64 lx = scan_row_lost(x), ly = scan_row_lost(y);
	/* Sampled mode: by the estimates (0 otherwise), then the samples. */
	__u64 ex = x->est_bytes[ZSCAN_DEFINITELY_LOST] +
		   x->est_bytes[ZSCAN_INDIRECTLY_LOST];
	__u64 ey = y->est_bytes[ZSCAN_DEFINITELY_LOST] +
		   y->est_bytes[ZSCAN_INDIRECTLY_LOST];

	if (ex != ey)
		return ex < ey ? 1 : -1;
	if (lx != ly)
		return lx < ly ? 1 : -1;
	if (x->bytes[ZSCAN_POSSIBLY_LOST] != y->bytes[ZSCAN_POSSIBLY_LOST])
		return x->bytes[ZSCAN_POSSIBLY_LOST] <
				       y->bytes[ZSCAN_POSSIBLY_LOST] ?
			       1 :
			       -1;
	return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

/* qsort_r: indexes of blocks (arg) by the blocks' stacks. */
static int by_stack_index(const void *a, const void *b, void *arg)
{
	const struct zscan_block *v = arg;
	__u32 x = v[*(const size_t *)a].user, y = v[*(const size_t *)b].user;

	return (x > y) - (x < y);
}

static void row_add(struct zt_scan_row *row, struct zt_scan_result *r,
		    const struct zscan_block *b, __u64 weight)
{
	__u64 bytes = b->req ? b->req : b->size;

	row->blocks[b->cls]++;
	row->bytes[b->cls] += bytes;
	r->st.blocks[b->cls]++;
	r->st.bytes[b->cls] += bytes;
	if (!r->sampled)
		return;
	row->est_bytes[b->cls] += weight;
	row->est_milli[b->cls] += est_milli(bytes, weight);
	r->est_bytes[b->cls] += weight;
	r->est_milli[b->cls] += est_milli(bytes, weight);
}

/* One row per stack, in the blocks' stack order; totals per class. */
static int sum_by_stack(struct block_list *l, struct zt_scan_result *r)
{
	size_t i, *idx;

	memset(r->st.blocks, 0, sizeof(r->st.blocks));
	memset(r->st.bytes, 0, sizeof(r->st.bytes));
	idx = malloc((l->n ? l->n : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (i = 0; i < l->n; i++)
		idx[i] = i;
	/* The weights stay at their blocks' indexes: sort indexes. */
	qsort_r(idx, l->n, sizeof(*idx), by_stack_index, l->v);
	for (i = 0; i < l->n; i++) {
		const struct zscan_block *b = &l->v[idx[i]];
		struct zt_scan_row *row;

		if (!r->n || r->rows[r->n - 1].stack_id != b->user) {
			row = realloc(r->rows, (r->n + 1) * sizeof(*row));
			if (!row) {
				free(idx);
				return -ENOMEM;
			}
			r->rows = row;
			row = &r->rows[r->n++];
			memset(row, 0, sizeof(*row));
			row->stack_id = b->user;
		}
		if (b->cls < ZSCAN_NR_CLASSES)
			row_add(&r->rows[r->n - 1], r, b, l->weight[idx[i]]);
	}
	free(idx);
	qsort(r->rows, r->n, sizeof(*r->rows), by_lost_desc);
	return 0;
}

static int scan_concurrent(pid_t pid, struct block_list *l,
			   const struct zscan_opts *o, struct zscan_stats *st)
{
	int err;

	if (concurrent_ctx && concurrent_pid != pid)
		leak_scan_end();
	if (!concurrent_ctx) {
		err = zscan_ctx_new(pid, o, &concurrent_ctx);
		if (err)
			return err;
		concurrent_pid = pid;
	}
	return zscan_ctx_scan(concurrent_ctx, l->v, l->n, st);
}

int leak_scan_run(const struct zt_probes *p, pid_t pid, bool concurrent,
		  bool snapshot, pid_t held_tid, struct zt_scan_result *r)
{
	struct zscan_opts o = {
		.sz = sizeof(o),
		.flags = snapshot ? ZSCAN_F_SNAPSHOT : 0,
		.log = scan_log,
		.held_tid = held_tid,
		/* A bound under 1 ns is 1 ns, not none. */
		.pause_max_ns =
			env.scan_pause_max > 0 ?
				(uint64_t)ceil(env.scan_pause_max * 1e6) :
				0,
	};
	struct block_list l = { .sampled = p->sampled };
	int err;

	memset(r, 0, sizeof(*r));
	r->concurrent = concurrent;
	r->snapshot = snapshot;
	r->sampled = p->sampled;
	err = collect_each_block(p, add_block, &l);
	if (err) {
		p_err("cannot read the live blocks for the scan: %s",
		      strerror(-err));
		goto out_free;
	}
	r->candidates = l.n;
	if (concurrent)
		err = scan_concurrent(pid, &l, &o, &r->st);
	else
		err = zscan_scan(pid, l.v, l.n, &o, &r->st);
	if (err) {
		p_err("cannot scan process %d for leaks: %s%s", pid,
		      strerror(-err),
		      err == -EPERM ?
			      " (another tracer, such as gdb or strace, holds it: detach it and retry)" :
			      "");
		goto out_free;
	}
	err = drop_changed(p, &l, &r->changed);
	if (err) {
		p_err("cannot read the live blocks after the scan: %s",
		      strerror(-err));
		goto out_free;
	}
	err = sum_by_stack(&l, r);
out_free:
	free(l.v);
	free(l.weight);
	if (err)
		leak_scan_free(r);
	return err;
}

void leak_scan_free(struct zt_scan_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
}

void leak_scan_end(void)
{
	if (concurrent_ctx)
		zscan_ctx_free(concurrent_ctx);
	concurrent_ctx = NULL;
}
