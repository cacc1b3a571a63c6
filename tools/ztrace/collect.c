/* SPDX-License-Identifier: BSD-3-Clause */
/* collect.c - BPF map readers (see collect.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "collect.h"
#include "estimate.h"
#include "options.h"
#include "output.h"
#include "probes.h"
#include "sample_live.h"
#include "ztrace.skel.h"

__u64 mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Sum a per-CPU value of u64 words (signed ones wrap back correctly). */
static int lookup_percpu_sum(int fd, const void *key, void *out, size_t size,
			     int ncpus)
{
	size_t words = size / sizeof(__u64), stride = (size + 7) / 8;
	__u64 *vals, *sum = out;
	int cpu, err = 0;
	size_t i;

	vals = calloc(ncpus, stride * sizeof(__u64));
	if (!vals)
		return -ENOMEM;
	memset(out, 0, size);
	if (bpf_map_lookup_elem(fd, key, vals)) {
		err = -errno;
		goto out_free;
	}
	for (cpu = 0; cpu < ncpus; cpu++)
		for (i = 0; i < words; i++)
			sum[i] += vals[cpu * stride + i];
out_free:
	free(vals);
	return err;
}

/*
 * Every block that enters is in the ALLOC histogram (alloc and realloc's
 * new block) and every tracked block that leaves in the FREE one (free,
 * realloc's old block, a stale block retired by a missed free). Each
 * realloc's old block is tracked (FREE), untracked, or a race.
 */
static void derive(struct zt_snapshot *s)
{
	const struct zt_counters *c = &s->c;
	struct zt_hist_slot in = {}, out = {};
	struct zt_derived *d = &s->d;
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		in.count += s->hist[ZT_HIST_ALLOC][b].count;
		in.bytes += s->hist[ZT_HIST_ALLOC][b].bytes;
		in.frag += s->hist[ZT_HIST_ALLOC][b].frag;
		out.count += s->hist[ZT_HIST_FREE][b].count;
		out.bytes += s->hist[ZT_HIST_FREE][b].bytes;
		out.frag += s->hist[ZT_HIST_FREE][b].frag;
	}
	d->allocs = in.count - c->reallocs;
	d->frees = out.count + c->untracked_frees - c->missed_frees -
		   (c->reallocs - c->realloc_races);
	d->live_blocks =
		in.count - out.count - c->drop_live_full - c->drop_live_error;
	d->live_bytes = in.bytes - out.bytes - c->drop_live_bytes;
	d->live_usable = (in.bytes + in.frag) - (out.bytes + out.frag) -
			 c->drop_live_usable;
}

/*
 * The kernel's half of the sampled histograms, ALLOC, and the probe's
 * hits: the CPUs' sample_cpu summed (ztrace.h).
 */
static int collect_sample_hist(const struct zt_probes *p, struct zt_snapshot *s)
{
	int fd = bpf_map__fd(p->skel->maps.sample_cpu);
	struct zt_sample_cpu *sum;
	__u32 key = 0;
	int err;

	sum = malloc(sizeof(*sum));
	if (!sum)
		return -ENOMEM;
	err = lookup_percpu_sum(fd, &key, sum, sizeof(*sum), p->ncpus);
	if (!err) {
		memcpy(s->shist[ZT_SHIST_ALLOC], sum->hist, sizeof(sum->hist));
		s->sample_alloc_hits = sum->hits;
	}
	free(sum);
	return err;
}

/* bpftrace's hist() bucket, as the BPF side computes it. */
static int log2_bucket(__u64 v)
{
	int b = v ? 64 - __builtin_clzll(v) : 0;

	return b < ZT_HIST_BUCKETS ? b : ZT_HIST_BUCKETS - 1;
}

void sample_slot_sub(struct zt_sample_slot *d, const struct zt_sample_slot *a,
		     const struct zt_sample_slot *b)
{
	d->samples = a->samples > b->samples ? a->samples - b->samples : 0;
	d->requested =
		a->requested > b->requested ? a->requested - b->requested : 0;
	d->weight = a->weight > b->weight ? a->weight - b->weight : 0;
	d->count_milli = a->count_milli > b->count_milli ?
				 a->count_milli - b->count_milli :
				 0;
}

/*
 * Sampled mode: the kernel counts samples as they enter; the live check
 * says which are live now, and the FREE histogram is what is not: freed,
 * or never tracked (drop_live_*).
 */
static int derive_sample_free(const struct zt_probes *p, struct zt_snapshot *s)
{
	struct zt_sample_slot live[ZT_HIST_BUCKETS] = {};
	const struct zt_live_entry *v;
	size_t n, i;
	int b, err;

	err = collect_live_samples(p, s->mono_ns, &v, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		const struct zt_block *k = &v[i].b;
		struct zt_sample_slot *l = &live[log2_bucket(k->requested)];

		if (!v[i].live)
			continue;
		l->samples++;
		l->requested += k->requested;
		l->weight += k->weight;
		l->count_milli += est_milli(k->requested, k->weight);
	}
	for (b = 0; b < ZT_HIST_BUCKETS; b++)
		sample_slot_sub(&s->shist[ZT_SHIST_FREE][b],
				&s->shist[ZT_SHIST_ALLOC][b], &live[b]);
	s->live_unverified = p->live_check->unverified;
	s->live_headers_read = p->live_check->headers_read;
	s->live_checks = p->live_check->checks;
	s->live_check_err = p->live_check->err;
	return 0;
}

int collect_counters(const struct zt_probes *p, struct zt_snapshot *s)
{
	int cfd = bpf_map__fd(p->skel->maps.counters);
	int hfd = bpf_map__fd(p->skel->maps.hist);
	struct zt_prog_stats st;
	__u32 key, kind, b;
	int err;

	s->mono_ns = mono_now_ns();
	key = 0;
	err = lookup_percpu_sum(cfd, &key, &s->c, sizeof(s->c), p->ncpus);
	/* Sampled mode's programs leave the exact histogram at zero. */
	if (p->sampled)
		memset(s->hist, 0, sizeof(s->hist));
	for (kind = 0; !err && !p->sampled && kind < ZT_HIST_KINDS; kind++) {
		for (b = 0; !err && b < ZT_HIST_BUCKETS; b++) {
			key = kind * ZT_HIST_BUCKETS + b;
			err = lookup_percpu_sum(hfd, &key, &s->hist[kind][b],
						sizeof(s->hist[kind][b]),
						p->ncpus);
		}
	}
	if (!err && p->sampled)
		err = collect_sample_hist(p, s);
	if (!err && p->sampled)
		err = derive_sample_free(p, s);
	if (err)
		p_err("cannot read the BPF counters: %s", strerror(-err));
	derive(s);
	probes_stats(p, &st);
	s->prog_missed = st.missed;
	s->prog_run_ns = st.run_ns;
	s->prog_run_cnt = st.run_cnt;
	return err;
}

struct leak_index {
	struct zt_leak_set *set;
	size_t cap;
	__s32 *by_id; /* stack id -> index in set->v, or -1 */
	__u32 nids;
};

static __u32 leak_index_slot(const struct leak_index *ix, __u32 stack_id)
{
	__u32 slot = stack_id == ZT_STACK_NONE ? ix->nids - 1 : stack_id;

	return slot < ix->nids ? slot : ix->nids - 1;
}

/* The stack's entry of the set, if it has one. */
static struct zt_leak *leak_find(struct leak_index *ix, __u32 stack_id)
{
	__u32 slot = leak_index_slot(ix, stack_id);

	return ix->by_id[slot] >= 0 ? &ix->set->v[ix->by_id[slot]] : NULL;
}

static struct zt_leak *leak_slot(struct leak_index *ix, __u32 stack_id)
{
	__u32 slot = leak_index_slot(ix, stack_id);
	struct zt_leak_set *set = ix->set;
	struct zt_leak *l;

	if (ix->by_id[slot] >= 0)
		return &set->v[ix->by_id[slot]];
	if (set->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct zt_leak *v = realloc(set->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		set->v = v;
		ix->cap = cap;
	}
	l = &set->v[set->n];
	memset(l, 0, sizeof(*l));
	l->stack_id = slot == ix->nids - 1 ? ZT_STACK_NONE : stack_id;
	ix->by_id[slot] = set->n++;
	return l;
}

static int leak_add(struct leak_index *ix, const struct zt_block *b,
		    __u64 now_ns, __u64 min_age_ns)
{
	__u64 age = now_ns > b->ts_ns ? now_ns - b->ts_ns : 0;
	struct zt_leak *l;

	if (age < min_age_ns) {
		ix->set->young_blocks++;
		ix->set->young_bytes += b->requested;
		if (ix->set->sampled)
			ix->set->young_est_bytes += b->weight;
		return 0;
	}
	l = leak_slot(ix, b->stack_id);
	if (!l)
		return -ENOMEM;
	if (!l->blocks || b->ts_ns < l->oldest_ns)
		l->oldest_ns = b->ts_ns;
	l->blocks++;
	l->bytes += b->requested;
	ix->set->blocks++;
	ix->set->bytes += b->requested;
	if (!ix->set->sampled) {
		l->usable += b->usable;
		return 0;
	}
	l->est_bytes += b->weight;
	l->est_milli += est_milli(b->requested, b->weight);
	ix->set->est_bytes += b->weight;
	ix->set->est_milli += est_milli(b->requested, b->weight);
	return 0;
}

_Static_assert(ZT_LIVE_WAYS == 4, "each_way tests four ways at once");

/* The BPF side writes the ways as they are read: one relaxed load. */
static inline __u64 way_load(const struct zt_live_bucket *b, int w)
{
	return __atomic_load_n(&b->ptr[w], __ATOMIC_RELAXED);
}

/* Bucket I's taken ways, to FN. */
static int bucket_ways(const struct zt_probes *p, size_t i,
		       int (*fn)(void *arg, __u64 ptr,
				 const struct zt_block *b),
		       void *arg)
{
	const struct zt_live_bucket *v = &p->live[i];
	int w, err = 0;

	/* Most buckets are empty: one test of all four ways skips one. */
	if (!(way_load(v, 0) | way_load(v, 1) | way_load(v, 2) |
	      way_load(v, 3)))
		return 0;
	for (w = 0; !err && w < ZT_LIVE_WAYS; w++) {
		__u64 ptr = __atomic_load_n(&v->ptr[w], __ATOMIC_ACQUIRE);
		struct zt_block b;

		if (!ptr)
			continue;
		b = p->live_blocks[i].blk[w];
		err = fn(arg, ptr, &b);
	}
	return err;
}

/*
 * The live table, read in place (mapped by probes.c): no syscalls. The
 * ways first, 40 bytes a bucket, their blocks only when taken (a way
 * taken meanwhile is the next report's). In sampled mode only the buckets
 * marked in use are read: at --sample's default size (65536 samples),
 * a 4 KiB bitmap instead of a 1.3 MiB table at each refresh.
 */
static int each_way(const struct zt_probes *p,
		    int (*fn)(void *arg, __u64 ptr, const struct zt_block *b),
		    void *arg)
{
	size_t n = bpf_map__max_entries(p->skel->maps.live), i;
	__u64 used;
	int err = 0;

	if (!p->live_used) {
		for (i = 0; !err && i < n; i++)
			err = bucket_ways(p, i, fn, arg);
		return err;
	}
	for (i = 0; !err && i < n; i += ZT_USED_BITS) {
		used = __atomic_load_n(&p->live_used[i / ZT_USED_BITS],
				       __ATOMIC_ACQUIRE);
		for (; !err && used; used &= used - 1)
			err = bucket_ways(p, i + __builtin_ctzll(used), fn,
					  arg);
	}
	return err;
}

struct entry_list {
	struct zt_live_entry *v;
	size_t n, cap;
};

static int entry_add(void *arg, __u64 ptr, const struct zt_block *b)
{
	struct entry_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct zt_live_entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].ptr = ptr;
	l->v[l->n].b = *b;
	l->v[l->n].live = true;
	l->v[l->n].gone = false;
	l->n++;
	return 0;
}

int collect_live_samples(const struct zt_probes *p, __u64 as_of,
			 const struct zt_live_entry **v, size_t *n)
{
	struct zt_sample_live *sl = p->live_check;
	struct entry_list l = { 0 };
	int err;

	if (!as_of || as_of != sl->last_as_of) {
		err = each_way(p, entry_add, &l);
		if (!err)
			err = sample_live_check(sl, p->pid, l.v, l.n);
		if (err) {
			free(l.v);
			return err;
		}
		free(sl->last);
		sl->last = l.v;
		sl->last_n = l.n;
		sl->last_as_of = as_of;
	}
	*v = sl->last;
	*n = sl->last_n;
	return 0;
}

int collect_each_block(const struct zt_probes *p,
		       int (*fn)(void *arg, __u64 ptr,
				 const struct zt_block *b),
		       void *arg)
{
	const struct zt_live_entry *v;
	size_t n, i;
	int err;

	if (!p->sampled)
		return each_way(p, fn, arg);
	err = collect_live_samples(p, 0, &v, &n);
	if (err)
		return err;
	for (i = 0; !err && i < n; i++)
		if (v[i].live)
			err = fn(arg, v[i].ptr, &v[i].b);
	return err;
}

struct leak_walk {
	struct leak_index *ix;
	__u64 now_ns, min_age_ns;
};

static int leak_walk_one(void *arg, __u64 ptr, const struct zt_block *b)
{
	struct leak_walk *lw = arg;

	(void)ptr;
	return leak_add(lw->ix, b, lw->now_ns, lw->min_age_ns);
}

int collect_stack_slot(const struct zt_probes *p, __u32 stack_id,
		       struct zt_stack_slot *t)
{
	__u32 slot = totals_slot(p, stack_id);

	if (bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.stack_slots), &slot,
				t))
		return -errno;
	return 0;
}

/* What each stack's samples allocated, from its stack slot. */
static void read_sample_totals(const struct zt_probes *p,
			       struct zt_leak_set *set)
{
	struct zt_stack_slot t;
	size_t i;

	for (i = 0; p->stacks && i < set->n; i++) {
		struct zt_leak *l = &set->v[i];

		if (collect_stack_slot(p, l->stack_id, &t))
			continue;
		l->total_allocs = t.samples;
		l->total_bytes = t.weight;
		l->total_est_milli = t.count_milli;
	}
}

/*
 * Sampled mode: the live samples, by stack (leak_add), and each stack's
 * live totals whatever the age of its samples.
 */
static int walk_live_samples(const struct zt_probes *p, struct leak_walk *lw)
{
	struct leak_index *ix = lw->ix;
	const struct zt_live_entry *v;
	size_t n, i;
	int err;

	err = collect_live_samples(p, lw->now_ns, &v, &n);
	if (err)
		return err;
	for (i = 0; !err && i < n; i++)
		if (v[i].live)
			err = leak_add(ix, &v[i].b, lw->now_ns, lw->min_age_ns);
	for (i = 0; !err && i < n; i++) {
		const struct zt_block *b = &v[i].b;
		struct zt_leak *l;

		if (!v[i].live)
			continue;
		l = leak_find(ix, b->stack_id);
		if (!l)
			continue;
		l->total_live_blocks++;
		l->total_live_bytes += b->weight;
		l->total_live_est_milli += est_milli(b->requested, b->weight);
	}
	return err;
}

static int by_est_bytes_desc(const void *a, const void *b)
{
	const struct zt_leak *x = a, *y = b;

	if (x->est_bytes != y->est_bytes)
		return x->est_bytes < y->est_bytes ? 1 : -1;
	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static int by_bytes_desc(const void *a, const void *b)
{
	const struct zt_leak *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->blocks != y->blocks)
		return x->blocks < y->blocks ? 1 : -1;
	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

int collect_leaks(const struct zt_probes *p, __u64 now_ns, __u64 min_age_ns,
		  struct zt_leak_set *set)
{
	int tfd = bpf_map__fd(p->skel->maps.stack_totals);
	struct leak_index ix = { .set = set };
	struct leak_walk lw = { &ix, now_ns, min_age_ns };
	struct zt_stack_totals t;
	size_t i;
	int err;

	memset(set, 0, sizeof(*set));
	set->sampled = p->sampled;
	/* Stack ids index a table of max_entries rounded up to a power of 2. */
	ix.nids = 1;
	while (ix.nids < bpf_map__max_entries(p->skel->maps.stacks))
		ix.nids <<= 1;
	ix.nids++; /* the last slot: ZT_STACK_NONE */
	ix.by_id = malloc(ix.nids * sizeof(*ix.by_id));
	if (!ix.by_id)
		return -ENOMEM;
	memset(ix.by_id, 0xff, ix.nids * sizeof(*ix.by_id));
	if (p->sampled)
		err = walk_live_samples(p, &lw);
	else
		err = collect_each_block(p, leak_walk_one, &lw);
	free(ix.by_id);
	if (err) {
		p_err("cannot read the live blocks map: %s", strerror(-err));
		leak_set_free(set);
		return err;
	}
	if (p->sampled) {
		read_sample_totals(p, set);
		qsort(set->v, set->n, sizeof(*set->v), by_est_bytes_desc);
		return 0;
	}
	for (i = 0; p->stacks && i < set->n; i++) {
		__u32 slot = totals_slot(p, set->v[i].stack_id);

		if (lookup_percpu_sum(tfd, &slot, &t, sizeof(t), p->ncpus))
			continue;
		set->v[i].total_allocs = t.allocs;
		set->v[i].total_bytes = t.bytes;
		set->v[i].total_live_blocks = t.live_blocks;
		set->v[i].total_live_bytes = t.live_bytes;
	}
	qsort(set->v, set->n, sizeof(*set->v), by_bytes_desc);
	return 0;
}

void leak_set_free(struct zt_leak_set *set)
{
	free(set->v);
	memset(set, 0, sizeof(*set));
}

int collect_stack(const struct zt_probes *p, __u32 stack_id, __u64 *ips,
		  int max)
{
	int fd = bpf_map__fd(p->skel->maps.stacks);
	__u32 depth = bpf_map__value_size(p->skel->maps.stacks) / 8;
	__u64 *buf;
	int n = 0;

	if (stack_id == ZT_STACK_NONE)
		return 0;
	buf = calloc(depth, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &stack_id, buf) == 0)
		for (; n < (int)depth && n < max && buf[n]; n++)
			ips[n] = buf[n];
	free(buf);
	return n;
}

__u32 totals_slot(const struct zt_probes *p, __u32 stack_id)
{
	return stack_id == ZT_STACK_NONE ? p->skel->rodata->totals_none_slot :
					   stack_id;
}

int collect_stacks_stored(const struct zt_probes *p, __u64 *n)
{
	struct zt_counters c;
	__u32 key = 0;
	int err;

	err = lookup_percpu_sum(bpf_map__fd(p->skel->maps.counters), &key, &c,
				sizeof(c), p->ncpus);
	*n = err ? 0 : c.stacks_stored;
	return err;
}

int collect_stack_ids(const struct zt_probes *p, __u32 **ids, size_t *n)
{
	/* The stack map's keys are exactly the stacks stored. */
	const struct bpf_map *map = p->skel->maps.stacks;
	int fd = bpf_map__fd(map);
	__u32 key, next, *cur = NULL, *v = NULL;
	size_t cap = 0;

	*n = 0;
	while (!bpf_map_get_next_key(fd, cur, &next)) {
		key = next;
		cur = &key;
		if (key == ZT_STACK_NONE)
			continue;
		if (*n == cap) {
			__u32 *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[(*n)++] = key;
	}
	*ids = v;
	return 0;
}
