/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * classify.c - marking the candidate blocks from the roots, and the
 * verdicts, as valgrind memcheck gives them (mc_leakcheck.c).
 *
 * Each block is Unreached, Possible, Reachable or, in the last phase,
 * Indirect. A word that points into a block raises it: to Reachable when
 * it points to the start and comes from a root or a Reachable block
 * ("prior definite"), else (an interior pointer, or a word inside a
 * Possible block) to Possible. A raised block goes on the mark stack and
 * its contents are scanned in turn, again if it is raised twice. Then,
 * in address order, each block still Unreached leads a clique: the
 * Unreached blocks it reaches, by any pointer, become Indirect. What is
 * left Unreached is definitely lost; of a lost cycle, the lowest address.
 *
 * The result of the first phase is a fixpoint, whatever the order, so
 * blocks are read in batches: up to ZS_IOV_MAX at a time, sorted by
 * address and coalesced, in one process_vm_readv.
 *
 * Finding the block a word points into: the blocks sorted by address, in
 * spans (runs with gaps under ZS_SPAN_GAP); in each span a table gives,
 * per granule of 512 bytes, the first block ending above it, and a short
 * walk forward does the rest. Most words are no pointer at all and leave
 * at the first compare.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zscan_int.h"

#define ZS_GRAN_SHIFT 9
#define ZS_SPAN_GAP (1ULL << 20)
#define ZS_COALESCE 512 /* read through a gap this small */
#define ZS_UNSET UINT32_MAX
#define ZS_PIECES 65536
#define ZS_ROOT UINT32_MAX
#define ZS_GROUP 32 /* words resolved together */
#define ZS_AHEAD 8 /* blocks prefetched ahead of the scan */
#define ZS_MADV_POPULATE_WRITE 23 /* Linux 5.14 */

struct zs_key {
	uint64_t addr;
	uint64_t idx;
};

/*
 * A batch: remote pieces read back to back, then scanned. A piece is a
 * root (blk ZS_ROOT) or the contents of block blk; iovecs may span
 * several pieces and the gaps between them.
 */
struct piece {
	uint64_t off;
	uint64_t len;
	uint32_t blk;
};

/* LSD radix sort by address, 16 bits a pass: n log n qsort is too slow. */
static int sort_keys(struct zs_key *k, size_t n)
{
	struct zs_key *tmp, *src = k, *dst;
	size_t *count;
	uint64_t maxa = 0;
	int err = 0;

	for (size_t i = 0; i < n; i++)
		if (k[i].addr > maxa)
			maxa = k[i].addr;
	tmp = malloc(n * sizeof(*tmp));
	count = malloc(65536 * sizeof(*count));
	if (!tmp || !count) {
		err = -ENOMEM;
		goto out_free;
	}
	dst = tmp;
	for (int shift = 0; shift < 64 && (maxa >> shift); shift += 16) {
		size_t sum = 0;

		memset(count, 0, 65536 * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(src[i].addr >> shift) & 0xffff]++;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].addr >> shift) & 0xffff]++] = src[i];
		dst = src;
		src = src == k ? tmp : k;
	}
	if (src != k)
		memcpy(k, src, n * sizeof(*k));
out_free:
	free(count);
	free(tmp);
	return err;
}

static int build_spans(struct zs_mark *m)
{
	size_t ns = 0, i, first;
	struct zs_span *sp;

	for (i = 0; i < m->n; i++)
		if (!i || m->lo[i] - m->hi[i - 1] > ZS_SPAN_GAP)
			ns++;
	m->span = calloc(ns ? ns : 1, sizeof(*m->span));
	m->span_lo = calloc(ns ? ns : 1, sizeof(*m->span_lo));
	if (!m->span || !m->span_lo)
		return -ENOMEM;
	for (i = 0, first = 0; i < m->n; i = first) {
		size_t ng, next_i;

		for (next_i = i + 1; next_i < m->n; next_i++)
			if (m->lo[next_i] - m->hi[next_i - 1] > ZS_SPAN_GAP)
				break;
		first = next_i;
		sp = &m->span[m->nspan];
		sp->lo = m->lo[i] & ~((1ULL << ZS_GRAN_SHIFT) - 1);
		sp->hi = m->hi[next_i - 1];
		sp->first = i;
		sp->end = next_i;
		sp->cend = sp->hi;
		for (size_t b = i; b < next_i; b++)
			if (m->end[b] > sp->cend)
				sp->cend = m->end[b];
		ng = ((sp->hi - 1 - sp->lo) >> ZS_GRAN_SHIFT) + 1;
		sp->table = malloc(ng * sizeof(*sp->table));
		if (!sp->table)
			return -ENOMEM;
		memset(sp->table, 0xff, ng * sizeof(*sp->table));
		for (size_t b = i; b < next_i; b++) {
			uint64_t g = (m->lo[b] - sp->lo) >> ZS_GRAN_SHIFT;
			uint64_t g1 = (m->hi[b] - 1 - sp->lo) >> ZS_GRAN_SHIFT;

			for (; g <= g1; g++)
				if (sp->table[g] == ZS_UNSET)
					sp->table[g] = b;
		}
		/* A granule in a gap: the first block after it. */
		for (size_t g = ng - 1, nxt = next_i - 1; g < ng; g--) {
			if (sp->table[g] == ZS_UNSET)
				sp->table[g] = nxt;
			else
				nxt = sp->table[g];
		}
		m->span_lo[m->nspan++] = sp->lo;
	}
	if (m->n) {
		m->lo_all = m->lo[0];
		m->range = m->hi[m->n - 1] - m->lo[0];
	}
	return 0;
}

int zs_mark_init(struct zs_mark *m, pid_t pid, const struct zscan_block *b,
		 size_t n, const struct zscan_opts *o, struct zscan_stats *st)
{
	struct zs_key *k;
	uint64_t prev_end = 0, ext;
	size_t v = 0;
	int err;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->memfd = -1;
	m->o = o;
	m->st = st;
	if (n >= ZS_UNSET)
		return -E2BIG;
	k = malloc((n ? n : 1) * sizeof(*k));
	m->lo = malloc((n ? n : 1) * sizeof(*m->lo));
	m->hi = malloc((n ? n : 1) * sizeof(*m->hi));
	m->end = malloc((n ? n : 1) * sizeof(*m->end));
	m->orig = malloc((n ? n : 1) * sizeof(*m->orig));
	m->state = calloc(n ? n : 1, 1);
	m->buf_len = o->chunk_bytes;
	m->buf = malloc(m->buf_len + ZS_COALESCE * ZS_IOV_MAX);
	m->iov = malloc(ZS_IOV_MAX * sizeof(*m->iov));
	m->batch = malloc(ZS_IOV_MAX * sizeof(*m->batch));
	m->pieces = malloc(ZS_PIECES * sizeof(struct piece));
	if (!k || !m->pieces || !m->lo || !m->hi || !m->end || !m->orig ||
	    !m->state || !m->buf || !m->iov || !m->batch) {
		err = -ENOMEM;
		goto out_free_keys;
	}
	for (size_t i = 0; i < n; i++) {
		k[i].addr = b[i].addr;
		k[i].idx = i;
	}
	err = sort_keys(k, n);
	if (err)
		goto out_free_keys;
	for (size_t i = 0; i < n; i++) {
		const struct zscan_block *c = &b[k[i].idx];

		ext = c->req && c->req <= c->size ? c->req : c->size;
		/* Overlapping candidates: keep the first, ignore the rest. */
		if (v && c->addr < prev_end) {
			if (st)
				st->overlaps++;
			continue;
		}
		m->lo[v] = c->addr;
		m->hi[v] = c->addr + (ext ? ext : 1); /* size 0: start only */
		m->end[v] = c->addr + c->size;
		m->orig[v] = (uint32_t)k[i].idx;
		prev_end = m->end[v] > m->hi[v] ? m->end[v] : m->hi[v];
		v++;
	}
	m->n = v;
	err = build_spans(m);
out_free_keys:
	free(k);
	if (err)
		zs_mark_free(m);
	return err;
}

void zs_mark_free(struct zs_mark *m)
{
	for (size_t i = 0; m->span && i < m->nspan; i++) {
		free(m->span[i].table);
		if (m->span[i].copy)
			munmap(m->span[i].copy,
			       m->span[i].cend - m->span[i].lo);
	}
	free(m->span);
	free(m->span_lo);
	free(m->lo);
	free(m->hi);
	free(m->end);
	free(m->orig);
	free(m->state);
	free(m->stack);
	free(m->buf);
	free(m->iov);
	free(m->batch);
	free(m->pieces);
	memset(m, 0, sizeof(*m));
}

static int push(struct zs_mark *m, uint32_t i)
{
	uint32_t *s;
	size_t cap;

	if (m->top == m->scap) {
		cap = m->scap ? m->scap * 2 : 4096;
		s = realloc(m->stack, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		m->stack = s;
		m->scap = cap;
	}
	m->stack[m->top++] = i;
	return 0;
}

static int hit(struct zs_mark *m, uint32_t i, uint64_t p, bool definite)
{
	uint8_t s = m->state[i];

	if (m->clique_mode) {
		if (s != ZS_UNREACHED || i == m->clique)
			return 0;
		m->state[i] = ZS_INDIRECT;
		return push(m, i);
	}
	if (s == ZS_REACHABLE)
		return 0;
	if (p == m->lo[i] && definite) {
		m->state[i] = ZS_REACHABLE;
		return push(m, i);
	}
	if (s == ZS_UNREACHED) {
		m->state[i] = ZS_POSSIBLE;
		return push(m, i);
	}
	return 0;
}

/*
 * Resolves words that passed the quick reject, a group at a time: the
 * table entries and block records of a group are fetched from memory
 * together (prefetch), not one cache miss after the other.
 */
static int resolve(struct zs_mark *m, const uint64_t *w, size_t n,
		   bool definite)
{
	const uint32_t *slot[ZS_GROUP];
	const struct zs_span *sp;
	uint32_t first[ZS_GROUP];
	int err;

	for (size_t k = 0; k < n; k++) {
		size_t lo = 0, hi = m->nspan;

		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;

			if (m->span_lo[mid] <= w[k])
				lo = mid;
			else
				hi = mid;
		}
		sp = &m->span[lo];
		slot[k] = NULL;
		if (w[k] < sp->lo || w[k] >= sp->hi)
			continue;
		slot[k] = &sp->table[(w[k] - sp->lo) >> ZS_GRAN_SHIFT];
		__builtin_prefetch(slot[k]);
	}
	for (size_t k = 0; k < n; k++) {
		if (!slot[k])
			continue;
		first[k] = *slot[k];
		__builtin_prefetch(&m->lo[first[k]]);
		__builtin_prefetch(&m->hi[first[k]]);
		__builtin_prefetch(&m->state[first[k]]);
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t i, end;

		if (!slot[k])
			continue;
		i = first[k];
		if (m->lo[i] > w[k])
			continue;
		/* Blocks never straddle spans: the walk stays inside. */
		end = (uint32_t)m->n;
		while (i + 1 < end && m->lo[i + 1] <= w[k])
			i++;
		if (w[k] >= m->hi[i])
			continue;
		err = hit(m, i, w[k], definite);
		if (err)
			return err;
	}
	return 0;
}

static int scan_words(struct zs_mark *m, const uint8_t *p, size_t len,
		      bool definite)
{
	const uint64_t lo_all = m->lo_all, range = m->range;
	uint64_t group[ZS_GROUP], w;
	size_t nw = len / 8, ng = 0;
	int err;

	for (size_t k = 0; k < nw; k++) {
		memcpy(&w, p + k * 8, 8);
		if (w - lo_all >= range)
			continue;
		group[ng++] = w;
		if (ng == ZS_GROUP) {
			err = resolve(m, group, ng, definite);
			if (err)
				return err;
			ng = 0;
		}
	}
	return ng ? resolve(m, group, ng, definite) : 0;
}

int zs_mark_words(struct zs_mark *m, const void *p, size_t len, bool definite)
{
	return scan_words(m, p, len, definite);
}

int zs_mark_regs(struct zs_mark *m, const struct zs_world *w)
{
	int err;

	for (size_t i = 0; i < w->n; i++) {
		/* Not gone: a snapshot scans them after the detach. */
		if (!w->th[i].regs_len)
			continue;
		err = scan_words(m, w->th[i].regs, w->th[i].regs_len, true);
		if (err)
			return err;
	}
	return 0;
}

struct batch {
	struct zs_mark *m;
	struct piece *pc;
	size_t npc, niov, bytes;
	uint64_t iov_end;
};

static int batch_flush(struct batch *bt)
{
	struct zs_mark *m = bt->m;
	struct zscan_stats *st = m->st;
	uint64_t bad = 0;
	int err;

	if (!bt->niov)
		return 0;
	err = zs_readv(m->pid, m->memfd, m->iov, bt->niov, m->buf, &bad,
		       m->badr);
	if (err)
		return err;
	if (st)
		st->unreadable_bytes += bad;
	for (size_t i = 0; i < bt->npc; i++) {
		struct piece *p = &bt->pc[i];
		bool definite = p->blk == ZS_ROOT ||
				m->state[p->blk] != ZS_POSSIBLE;

		if (st) {
			st->scanned_bytes += p->len;
			if (p->blk == ZS_ROOT)
				st->root_bytes += p->len;
			if (m->stopped)
				st->stopped_bytes += p->len;
		}
		err = scan_words(m, m->buf + p->off, p->len, definite);
		if (err)
			return err;
	}
	bt->npc = bt->niov = bt->bytes = 0;
	return 0;
}

/* Adds remote [lo, hi) (8-aligned, at most buf_len) to the batch. */
static int batch_add(struct batch *bt, uint64_t lo, uint64_t hi, uint32_t blk)
{
	struct zs_mark *m = bt->m;
	struct iovec *v;
	uint64_t len = hi - lo, gap;
	int err;

	gap = bt->niov && lo >= bt->iov_end ? lo - bt->iov_end : UINT64_MAX;
	if (gap > ZS_COALESCE)
		gap = UINT64_MAX;
	if (bt->npc == ZS_PIECES ||
	    bt->bytes + len + (gap == UINT64_MAX ? 0 : gap) > m->buf_len ||
	    (gap == UINT64_MAX && bt->niov == ZS_IOV_MAX)) {
		err = batch_flush(bt);
		if (err)
			return err;
		gap = UINT64_MAX;
	}
	if (gap == UINT64_MAX) {
		v = &m->iov[bt->niov++];
		v->iov_base = (void *)(uintptr_t)lo;
		v->iov_len = len;
	} else {
		v = &m->iov[bt->niov - 1];
		v->iov_len += gap + len;
		bt->bytes += gap;
	}
	bt->pc[bt->npc].off = bt->bytes;
	bt->pc[bt->npc].len = len;
	bt->pc[bt->npc].blk = blk;
	bt->npc++;
	bt->bytes += len;
	bt->iov_end = hi;
	return 0;
}

/* The copied span holding [lo, hi), or NULL. */
static const struct zs_span *copied(const struct zs_mark *m, uint64_t lo,
				    uint64_t hi)
{
	size_t a = 0, b = m->nspan;

	if (!m->ncopied)
		return NULL;
	while (b - a > 1) {
		size_t mid = (a + b) / 2;

		if (m->span_lo[mid] <= lo)
			a = mid;
		else
			b = mid;
	}
	if (!m->nspan || !m->span[a].copy || lo < m->span[a].lo ||
	    hi > m->span[a].cend)
		return NULL;
	return &m->span[a];
}

/* Adds a remote range of any length, in pieces of at most buf_len. */
static int batch_add_range(struct batch *bt, uint64_t lo, uint64_t hi,
			   uint32_t blk)
{
	struct zs_mark *m = bt->m;
	const struct zs_span *sp;
	uint64_t step;
	int err;

	lo = (lo + 7) & ~7ULL;
	hi &= ~7ULL;
	if (lo >= hi)
		return 0;
	sp = copied(m, lo, hi);
	if (sp) {
		/* Already in local memory: scan it now. */
		if (m->st) {
			m->st->scanned_bytes += hi - lo;
			if (blk == ZS_ROOT)
				m->st->root_bytes += hi - lo;
		}
		return scan_words(m, sp->copy + (lo - sp->lo), hi - lo,
				  blk == ZS_ROOT ||
					  m->state[blk] != ZS_POSSIBLE);
	}
	while (lo < hi) {
		step = hi - lo < bt->m->buf_len ? hi - lo : bt->m->buf_len;
		err = batch_add(bt, lo, lo + step, blk);
		if (err)
			return err;
		lo += step;
	}
	return 0;
}

static int batch_init(struct batch *bt, struct zs_mark *m)
{
	memset(bt, 0, sizeof(*bt));
	bt->m = m;
	bt->pc = m->pieces;
	return 0;
}

/* The first block whose contents end above a. */
static size_t first_ending_above(const struct zs_mark *m, uint64_t a)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->end[mid] > a || m->hi[mid] > a)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int zs_mark_roots(struct zs_mark *m, const struct zs_ranges *roots)
{
	struct batch bt;
	uint64_t c, top;
	size_t j;
	int err;

	err = batch_init(&bt, m);
	if (err)
		return err;
	for (size_t r = 0; r < roots->n && !err; r++) {
		c = roots->r[r].lo;
		top = roots->r[r].hi;
		/* The candidates' bytes are not roots: scan around them. */
		for (j = first_ending_above(m, c); j < m->n && m->lo[j] < top;
		     j++) {
			err = batch_add_range(&bt, c, m->lo[j], ZS_ROOT);
			if (err)
				break;
			if (m->end[j] > c)
				c = m->end[j];
		}
		if (!err && c < top)
			err = batch_add_range(&bt, c, top, ZS_ROOT);
	}
	if (!err)
		err = batch_flush(&bt);
	return err;
}

int zs_mark_rescan_blocks(struct zs_mark *m, const struct zs_ranges *rs)
{
	struct batch bt;
	uint64_t lo, hi;
	int err;

	err = batch_init(&bt, m);
	if (err)
		return err;
	for (size_t r = 0; r < rs->n && !err; r++) {
		for (size_t j = first_ending_above(m, rs->r[r].lo);
		     j < m->n && m->lo[j] < rs->r[r].hi; j++) {
			if (m->state[j] != ZS_POSSIBLE &&
			    m->state[j] != ZS_REACHABLE)
				continue;
			lo = m->lo[j] > rs->r[r].lo ? m->lo[j] : rs->r[r].lo;
			hi = m->end[j] < rs->r[r].hi ? m->end[j] : rs->r[r].hi;
			err = batch_add_range(&bt, lo, hi, (uint32_t)j);
			if (err)
				break;
		}
	}
	if (!err)
		err = batch_flush(&bt);
	return err;
}

static void prefetch_block(const struct zs_mark *m, uint32_t i)
{
	const struct zs_span *sp = copied(m, m->lo[i], m->end[i]);
	const uint8_t *p;

	if (!sp)
		return;
	p = sp->copy + (m->lo[i] - sp->lo);
	__builtin_prefetch(p);
	if (m->end[i] - m->lo[i] > 64)
		__builtin_prefetch(p + 64);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int zs_mark_drain(struct zs_mark *m)
{
	struct batch bt;
	size_t nb;
	uint64_t bytes;
	int err;

	err = batch_init(&bt, m);
	if (err)
		return err;
	while (m->top && !err) {
		/* Pop what one read can take; index order is address order. */
		for (nb = 0, bytes = 0; m->top && nb < ZS_IOV_MAX; nb++) {
			uint32_t i = m->stack[m->top - 1];
			uint64_t len = m->end[i] - m->lo[i];

			if (nb && bytes + len > m->buf_len)
				break;
			m->batch[nb] = i;
			bytes += len;
			m->top--;
		}
		if (!m->ncopied)
			qsort(m->batch, nb, sizeof(*m->batch), cmp_u32);
		for (size_t k = 0; k < nb && !err; k++) {
			uint32_t i = m->batch[k];

			/* Contents of a later block, from the copy, in flight. */
			if (m->ncopied && k + ZS_AHEAD < nb)
				prefetch_block(m, m->batch[k + ZS_AHEAD]);
			err = batch_add_range(&bt, m->lo[i], m->end[i], i);
		}
		if (!err)
			err = batch_flush(&bt);
	}
	return err;
}

/* Half of MemAvailable, from /proc/meminfo. */
static uint64_t default_limit(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *fp = fopen("/proc/meminfo", "re");

	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(fp);
	return kb * 1024 / 2;
}

static int read_into(struct zs_mark *m, struct zs_span *sp, uint64_t lo,
		     uint64_t hi)
{
	uint64_t bad = 0, step, len = hi - lo;
	int err = 0;

	for (; lo < hi && !err; lo += step) {
		step = hi - lo < m->buf_len ? hi - lo : m->buf_len;
		err = zs_read(m->pid, m->memfd, lo, sp->copy + (lo - sp->lo),
			      step, &bad, m->badr);
	}
	if (m->st) {
		m->st->unreadable_bytes += bad;
		m->st->copied_bytes += len;
		if (m->stopped)
			m->st->stopped_bytes += len;
	}
	return err;
}

int zs_mark_copy_prepare(struct zs_mark *m, uint64_t limit)
{
	uint64_t total = 0, len;
	struct zs_span *sp;

	if (limit == UINT64_MAX || m->ncopied)
		return 0;
	if (!limit)
		limit = default_limit();
	for (size_t i = 0; i < m->nspan; i++)
		total += m->span[i].cend - m->span[i].lo;
	if (!total || total > limit)
		return 0; /* block by block, then */
	for (size_t i = 0; i < m->nspan; i++) {
		sp = &m->span[i];
		len = sp->cend - sp->lo;
		sp->copy = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sp->copy == MAP_FAILED) {
			sp->copy = NULL;
			return -ENOMEM;
		}
		/*
		 * Huge pages: marking jumps all over the copy, and a TLB miss
		 * per block would cost more than the scan. Fault it in now:
		 * zeroing pages must not lengthen a pause.
		 */
		madvise(sp->copy, len, MADV_HUGEPAGE);
		if (madvise(sp->copy, len, ZS_MADV_POPULATE_WRITE))
			for (uint64_t o = 0; o < len; o += ZS_PAGE)
				sp->copy[o] = 0;
		m->ncopied++;
	}
	return 0;
}

int zs_mark_copy(struct zs_mark *m)
{
	struct zs_span *sp;
	int err;

	for (size_t i = 0; i < m->nspan; i++) {
		sp = &m->span[i];
		if (!sp->copy)
			continue;
		err = read_into(m, sp, sp->lo, sp->cend);
		if (err)
			return err;
	}
	return 0;
}

/* Reads the pieces gathered for a refresh into the copies. */
static int refresh_flush(struct zs_mark *m, struct iovec *lv, size_t *n)
{
	uint64_t bad = 0, len = 0;
	int err;

	for (size_t i = 0; i < *n; i++)
		len += m->iov[i].iov_len;
	err = zs_read_pieces(m->pid, m->memfd, lv, m->iov, *n, &bad, m->badr);
	if (m->st) {
		m->st->unreadable_bytes += bad;
		m->st->copied_bytes += len;
		if (m->stopped)
			m->st->stopped_bytes += len;
	}
	*n = 0;
	return err;
}

int zs_mark_refresh(struct zs_mark *m, const struct zs_ranges *rs)
{
	const struct zs_span *sp;
	struct iovec *lv;
	uint64_t lo, hi;
	size_t r = 0, n = 0;
	int err = 0;

	if (!m->ncopied || !rs->n)
		return 0;
	lv = malloc(ZS_IOV_MAX * sizeof(*lv));
	if (!lv)
		return -ENOMEM;
	/* Both sorted: one walk, and one read per ZS_IOV_MAX pieces. */
	for (size_t i = 0; i < m->nspan && !err; i++) {
		sp = &m->span[i];
		while (r < rs->n && rs->r[r].hi <= sp->lo)
			r++;
		if (!sp->copy)
			continue;
		for (size_t k = r; k < rs->n && rs->r[k].lo < sp->cend; k++) {
			lo = rs->r[k].lo > sp->lo ? rs->r[k].lo : sp->lo;
			hi = rs->r[k].hi < sp->cend ? rs->r[k].hi : sp->cend;
			if (lo >= hi)
				continue;
			lv[n].iov_base = sp->copy + (lo - sp->lo);
			lv[n].iov_len = hi - lo;
			m->iov[n].iov_base = (void *)(uintptr_t)lo;
			m->iov[n].iov_len = hi - lo;
			if (++n == ZS_IOV_MAX) {
				err = refresh_flush(m, lv, &n);
				if (err)
					break;
			}
		}
	}
	if (!err && n)
		err = refresh_flush(m, lv, &n);
	free(lv);
	return err;
}

int zs_mark_cliques(struct zs_mark *m)
{
	int err = 0;

	m->clique_mode = true;
	for (size_t i = 0; i < m->n && !err; i++) {
		if (m->state[i] != ZS_UNREACHED)
			continue;
		m->clique = (uint32_t)i;
		err = push(m, (uint32_t)i);
		if (!err)
			err = zs_mark_drain(m);
	}
	m->clique_mode = false;
	return err;
}

void zs_mark_classify(struct zs_mark *m, struct zscan_block *b, size_t n,
		      bool undecided)
{
	static const uint8_t cls_of[] = {
		[ZS_UNREACHED] = ZSCAN_DEFINITELY_LOST,
		[ZS_POSSIBLE] = ZSCAN_POSSIBLY_LOST,
		[ZS_REACHABLE] = ZSCAN_STILL_REACHABLE,
		[ZS_INDIRECT] = ZSCAN_INDIRECTLY_LOST,
	};

	for (size_t i = 0; i < n; i++)
		b[i].cls = ZSCAN_UNDECIDED; /* overlapping: ignored */
	for (size_t i = 0; i < m->n; i++) {
		uint8_t c = cls_of[m->state[i]];

		if (undecided && c != ZSCAN_STILL_REACHABLE)
			c = ZSCAN_UNDECIDED;
		b[m->orig[i]].cls = c;
	}
}
