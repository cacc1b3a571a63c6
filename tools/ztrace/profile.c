/* SPDX-License-Identifier: BSD-3-Clause */
/* profile.c - the heap by allocating stack, for the exports (profile.h). */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "estimate.h"
#include "leaks.h"
#include "options.h"
#include "output.h"
#include "profile.h"
#include "report.h"
#include "session.h"
#include "zmalloc_sampling.h"
#include "ztrace.skel.h"

/* One stack's totals, summed over CPUs; -ENOENT when it has none. */
static int read_totals(const struct zt_probes *p, __u32 id,
		       struct zt_stack_totals *t)
{
	int fd = bpf_map__fd(p->skel->maps.stack_totals);
	__u32 slot = totals_slot(p, id);
	struct zt_stack_totals *v;
	int cpu, err = 0;

	memset(t, 0, sizeof(*t));
	v = calloc(p->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &slot, v)) {
		err = -errno;
		goto out_free;
	}
	for (cpu = 0; cpu < p->ncpus; cpu++) {
		t->allocs += v[cpu].allocs;
		t->bytes += v[cpu].bytes;
		t->live_blocks += v[cpu].live_blocks;
		t->live_bytes += v[cpu].live_bytes;
	}
out_free:
	free(v);
	return err;
}

/*
 * Sampled mode: the estimates of what a stack's samples stand for (sum of
 * weights; blocks in thousandths), as if every allocation were traced;
 * allocated only, the live figures come from collect_live().
 */
static int read_sample_totals(const struct zt_probes *p, __u32 id,
			      struct zt_stack_totals *t)
{
	struct zt_stack_slot v;
	int err;

	memset(t, 0, sizeof(*t));
	err = collect_stack_slot(p, id, &v);
	if (err)
		return err;
	t->allocs = est_count((__s64)v.count_milli);
	t->bytes = v.weight;
	return 0;
}

static struct zt_prof_stack *prof_add(struct zt_profile *p, size_t *cap,
				      __u32 id)
{
	struct zt_prof_stack *r;

	if (p->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;

		r = realloc(p->v, ncap * sizeof(*r));
		if (!r)
			return NULL;
		p->v = r;
		*cap = ncap;
	}
	r = &p->v[p->n++];
	memset(r, 0, sizeof(*r));
	r->stack_id = id;
	return r;
}

static int by_id(const void *a, const void *b)
{
	const struct zt_prof_stack *x = a, *y = b;

	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static int by_live_desc(const void *a, const void *b)
{
	const struct zt_prof_stack *x = a, *y = b;

	if (x->live_bytes != y->live_bytes)
		return x->live_bytes < y->live_bytes ? 1 : -1;
	if (x->alloc_bytes != y->alloc_bytes)
		return x->alloc_bytes < y->alloc_bytes ? 1 : -1;
	return by_id(a, b);
}

static void prof_set_live(struct zt_prof_stack *r, __s64 blocks, __s64 bytes)
{
	/* Per-CPU parts may be negative; a total below 0 is a race. */
	r->live_blocks = blocks > 0 ? blocks : 0;
	r->live_bytes = bytes > 0 ? bytes : 0;
}

static int collect_totals(struct zt_session *s, bool with_live,
			  struct zt_profile *p, size_t *cap)
{
	struct zt_stack_totals t;
	struct zt_prof_stack *r;
	__u32 *ids;
	size_t i, n;
	int err;

	err = collect_stack_ids(&s->probes, &ids, &n);
	if (err)
		return err;
	for (i = 0; i <= n; i++) {
		__u32 id = i < n ? ids[i] : ZT_STACK_NONE;

		err = s->probes.sampled ?
			      read_sample_totals(&s->probes, id, &t) :
			      read_totals(&s->probes, id, &t);
		if (err == -ENOMEM)
			break;
		err = 0;
		if (!t.allocs && !t.bytes && !t.live_blocks && !t.live_bytes)
			continue;
		r = prof_add(p, cap, id);
		if (!r) {
			err = -ENOMEM;
			break;
		}
		r->allocs = t.allocs;
		r->alloc_bytes = t.bytes;
		if (!with_live)
			prof_set_live(r, t.live_blocks, t.live_bytes);
	}
	free(ids);
	return err;
}

/* The live figures from the live table: exact, and --min-age applies. */
static int collect_live(struct zt_session *s, __u64 min_age_ns,
			struct zt_profile *p, size_t *cap)
{
	struct zt_leak_set set;
	struct zt_prof_stack key = {}, *r;
	size_t i, n = p->n;
	int err;

	err = collect_leaks(&s->probes, s->cur.mono_ns, min_age_ns, &set);
	if (err)
		return err;
	qsort(p->v, n, sizeof(*p->v), by_id);
	for (i = 0; i < set.n; i++) {
		key.stack_id = set.v[i].stack_id;
		r = bsearch(&key, p->v, n, sizeof(*p->v), by_id);
		if (!r)
			r = prof_add(p, cap, key.stack_id);
		if (!r) {
			err = -ENOMEM;
			break;
		}
		if (set.sampled) {
			r->live_blocks = est_count((__s64)set.v[i].est_milli);
			r->live_bytes = set.v[i].est_bytes;
		} else {
			r->live_blocks = set.v[i].blocks;
			r->live_bytes = set.v[i].bytes;
		}
	}
	leak_set_free(&set);
	return err;
}

struct map_ctx {
	struct zt_profile *p;
	size_t cap;
	int err;
};

static void hex(char *out, const unsigned char *bits, int n)
{
	int i;

	for (i = 0; i < n && i < 64; i++)
		sprintf(out + 2 * i, "%02x", bits[i]);
	out[2 * i] = '\0';
}

static int map_add(Dwfl_Module *mod, void **userdata, const char *name,
		   Dwarf_Addr start, void *arg)
{
	struct map_ctx *c = arg;
	struct zt_prof_mapping *m;
	const unsigned char *bits;
	Dwarf_Addr lo, hi;
	GElf_Addr vaddr;
	int n;

	if (!name || name[0] != '/')
		return DWARF_CB_OK; /* [vdso] and the like */
	if (c->p->nmaps == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;

		m = realloc(c->p->maps, cap * sizeof(*m));
		if (!m) {
			c->err = -ENOMEM;
			return DWARF_CB_ABORT;
		}
		c->p->maps = m;
		c->cap = cap;
	}
	dwfl_module_info(mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
	m = &c->p->maps[c->p->nmaps];
	memset(m, 0, sizeof(*m));
	m->start = lo;
	m->limit = hi;
	m->path = strdup(name);
	if (!m->path) {
		c->err = -ENOMEM;
		return DWARF_CB_ABORT;
	}
	n = dwfl_module_build_id(mod, &bits, &vaddr);
	if (n > 0)
		hex(m->build_id, bits, n);
	c->p->nmaps++;
	return DWARF_CB_OK;
}

static int by_start(const void *a, const void *b)
{
	const struct zt_prof_mapping *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int collect_mappings(struct zt_session *s, struct zt_profile *p)
{
	struct map_ctx c = { .p = p };

	if (!s->sym.dwfl || !s->sym.reported)
		return 0;
	dwfl_getmodules(s->sym.dwfl, map_add, &c, 0);
	if (c.err)
		return c.err;
	qsort(p->maps, p->nmaps, sizeof(*p->maps), by_start);
	return 0;
}

int profile_collect(struct zt_session *s, __u64 min_age_ns, bool with_live,
		    struct zt_profile *p)
{
	struct timespec ts;
	size_t cap = 0, i;
	int err;

	memset(p, 0, sizeof(*p));
	clock_gettime(CLOCK_REALTIME, &ts);
	p->time_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	p->duration_ns = s->cur.mono_ns - s->attach_ns;
	/* Go writes its sampling rate (runtime.MemProfileRate) as the period. */
	p->period = 1;
	if (s->probes.sampled)
		p->period = s->sc.mean_bytes ? s->sc.mean_bytes :
			    env.sample_bytes ? env.sample_bytes :
					       ZMALLOC_SAMPLE_DEFAULT_BYTES;
	p->pid = s->target.pid;
	p->comm = s->target.comm;
	p->incomplete = report_incomplete(&s->cur);
	/* What samples are live is known from the live check alone. */
	if (s->probes.sampled)
		with_live = true;
	err = collect_totals(s, with_live, p, &cap);
	if (!err && with_live)
		err = collect_live(s, min_age_ns, p, &cap);
	if (!err)
		err = collect_mappings(s, p);
	if (err) {
		p_err("cannot read the allocating stacks: %s", strerror(-err));
		profile_free(p);
		return err;
	}
	for (i = 0; i < p->n; i++) {
		p->v[i].st = leak_stack(s, p->v[i].stack_id);
		p->live_blocks += p->v[i].live_blocks;
		p->live_bytes += p->v[i].live_bytes;
	}
	qsort(p->v, p->n, sizeof(*p->v), by_live_desc);
	return 0;
}

void profile_free(struct zt_profile *p)
{
	size_t i;

	for (i = 0; i < p->nmaps; i++)
		free(p->maps[i].path);
	free(p->maps);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

const char *profile_frame_name(const struct zt_sym_stack *st, int i, char *buf,
			       size_t len)
{
	const struct zt_frame *f = &st->frames[i];

	if (f->func)
		return f->func;
	if (f->module)
		snprintf(buf, len, "[%s]", f->module);
	else
		snprintf(buf, len, "0x%llx", (unsigned long long)f->ip);
	return buf;
}
