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
 * walk forward does the rest. A word at a block's start (the common
 * case) is found in a bitmap of starts instead, with no walk. Most words
 * are no pointer at all and leave at the first compare. Words are
 * resolved in groups, across blocks, so that their cache misses overlap.
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
#define ZS_AHEAD 8 /* blocks prefetched ahead of the scan */
#define ZS_PF_LINES 4 /* of a block: the rest is a stream */
#define ZS_MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#define ZS_RADIX_BITS 11 /* a pass's fan-out stays in the L1 and TLB */
#define ZS_HUGE (2ULL << 20)

/*
 * A block: one cache line holds two, so a pointer's lookup, its mark and
 * the scan of the block touch one line of records.
 */
struct zs_blk {
	uint64_t lo, hi; /* [lo, hi) is what a pointer hits */
	uint64_t end; /* lo + usable: what is scanned */
	uint32_t orig; /* index in the caller's array */
};

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

/* Large tables are looked up at random: huge pages spare the TLB misses. */
static void *big_alloc(size_t len)
{
	void *p;

	if (len < ZS_HUGE)
		return malloc(len ? len : 1);
	if (posix_memalign(&p, ZS_HUGE, len))
		return NULL;
	madvise(p, len & ~(ZS_PAGE - 1), MADV_HUGEPAGE);
	return p;
}

/* Digits of at most ZS_RADIX_BITS, as few passes as cover nbits. */
static unsigned int radix_digit(unsigned int nbits)
{
	unsigned int npass = (nbits + ZS_RADIX_BITS - 1) / ZS_RADIX_BITS;

	return npass ? (nbits + npass - 1) / npass : 0;
}

/*
 * NAME(k, tmp, n, nbits): LSD radix sort of N elements of TYPE on bits
 * [BASE, BASE + nbits) of KEY(element), stable, so that equal addresses
 * keep their input order; TMP has room for N.
 */
#define ZS_RADIX_SORT(name, type, key, base)                                 \
	static void name(type *k, type *tmp, size_t n, unsigned int nbits)   \
	{                                                                    \
		unsigned int digit = radix_digit(nbits);                     \
		size_t count[1 << ZS_RADIX_BITS];                            \
		type *src = k, *dst = tmp, *t;                               \
                                                                             \
		for (unsigned int sh = (base); digit && sh < (base) + nbits; \
		     sh += digit) {                                          \
			size_t sum = 0, mask = (1ULL << digit) - 1;          \
                                                                             \
			memset(count, 0, sizeof(count));                     \
			for (size_t i = 0; i < n; i++)                       \
				count[(key(src[i]) >> sh) & mask]++;         \
			for (size_t d = 0; d <= mask; d++) {                 \
				size_t c = count[d];                         \
                                                                             \
				count[d] = sum;                              \
				sum += c;                                    \
			}                                                    \
			for (size_t i = 0; i < n; i++)                       \
				dst[count[(key(src[i]) >> sh) & mask]++] =   \
					src[i];                              \
			t = src;                                             \
			src = dst;                                           \
			dst = t;                                             \
		}                                                            \
		if (src != k)                                                \
			memcpy(k, src, n * sizeof(*k));                      \
	}

/* offset << 32 | index: one word a key, the offset in its high half. */
#define ZS_PACKED_KEY(e) (e)
ZS_RADIX_SORT(sort_packed, uint64_t, ZS_PACKED_KEY, 32)

/* Offsets of 32 bits or more: (offset, index) pairs. */
#define ZS_WIDE_KEY(e) ((e).addr)
ZS_RADIX_SORT(sort_wide, struct zs_key, ZS_WIDE_KEY, 0)

/*
 * The caller's indexes in address order, into *ord (NULL: already in
 * order). LSD radix sort: n log n qsort is too slow.
 */
static int sort_blocks(const struct zscan_block *b, size_t n, uint32_t **ord)
{
	uint64_t mina = UINT64_MAX, maxa = 0, prev = 0;
	unsigned int nbits;
	bool sorted = true;
	uint32_t *o;
	void *k, *tmp;
	size_t ksz;

	*ord = NULL;
	for (size_t i = 0; i < n; i++) {
		if (b[i].addr < prev)
			sorted = false;
		prev = b[i].addr;
		if (b[i].addr < mina)
			mina = b[i].addr;
		if (b[i].addr > maxa)
			maxa = b[i].addr;
	}
	if (sorted)
		return 0;
	nbits = 64 - __builtin_clzll(maxa - mina); /* not sorted: max > min */
	ksz = nbits <= 32 ? sizeof(uint64_t) : sizeof(struct zs_key);
	k = big_alloc(n * ksz);
	tmp = big_alloc(n * ksz);
	if (!k || !tmp) {
		free(k);
		free(tmp);
		return -ENOMEM;
	}
	/* Indexes written over the keys: o[i] ends before key i + 1. */
	o = k;
	if (nbits <= 32) {
		uint64_t *pk = k;

		for (size_t i = 0; i < n; i++)
			pk[i] = (b[i].addr - mina) << 32 | i;
		sort_packed(pk, tmp, n, nbits);
		for (size_t i = 0; i < n; i++)
			o[i] = (uint32_t)pk[i];
	} else {
		struct zs_key *wk = k;

		for (size_t i = 0; i < n; i++) {
			wk[i].addr = b[i].addr - mina;
			wk[i].idx = i;
		}
		sort_wide(wk, tmp, n, nbits);
		for (size_t i = 0; i < n; i++)
			o[i] = (uint32_t)wk[i].idx;
	}
	free(tmp);
	*ord = o;
	return 0;
}

static int build_spans(struct zs_mark *m)
{
	const struct zs_blk *bk = m->blk;
	size_t ns = 0, i, first;
	struct zs_span *sp;

	for (i = 0; i < m->n; i++)
		if (!i || bk[i].lo - bk[i - 1].hi > ZS_SPAN_GAP)
			ns++;
	m->span = calloc(ns ? ns : 1, sizeof(*m->span));
	m->span_lo = calloc(ns ? ns : 1, sizeof(*m->span_lo));
	if (!m->span || !m->span_lo)
		return -ENOMEM;
	for (i = 0, first = 0; i < m->n; i = first) {
		size_t ng, next_i;

		for (next_i = i + 1; next_i < m->n; next_i++)
			if (bk[next_i].lo - bk[next_i - 1].hi > ZS_SPAN_GAP)
				break;
		first = next_i;
		sp = &m->span[m->nspan];
		sp->lo = bk[i].lo & ~((1ULL << ZS_GRAN_SHIFT) - 1);
		sp->hi = bk[next_i - 1].hi;
		sp->first = i;
		sp->end = next_i;
		sp->cend = sp->hi;
		for (size_t b = i; b < next_i; b++)
			if (bk[b].end > sp->cend)
				sp->cend = bk[b].end;
		ng = ((sp->hi - 1 - sp->lo) >> ZS_GRAN_SHIFT) + 1;
		sp->table = big_alloc(ng * sizeof(*sp->table));
		if (!sp->table)
			return -ENOMEM;
		memset(sp->table, 0xff, ng * sizeof(*sp->table));
		for (size_t b = i; b < next_i; b++) {
			uint64_t g = (bk[b].lo - sp->lo) >> ZS_GRAN_SHIFT;
			uint64_t g1 = (bk[b].hi - 1 - sp->lo) >> ZS_GRAN_SHIFT;

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
		m->lo_all = bk[0].lo;
		m->range = bk[m->n - 1].hi - bk[0].lo;
	}
	return 0;
}

/* No -mpopcnt: the builtin would be a libgcc call. */
static inline uint32_t popcount32(uint32_t x)
{
	x = x - ((x >> 1) & 0x55555555);
	x = (x & 0x33333333) + ((x >> 2) & 0x33333333);
	x = (x + (x >> 4)) & 0x0f0f0f0f;
	return (x * 0x01010101) >> 24;
}

/*
 * The start map: most pointers are to the start of a block, and then one
 * bit and a count, in one cache line, give the block, with no walk. Only
 * when every start is aligned, so that the count is the block's index.
 */
static int build_starts(struct zs_mark *m)
{
	uint64_t orr = 0, nbits, npair;
	uint32_t *sm;
	unsigned int sh;

	if (!m->n)
		return 0;
	m->sbase = m->blk[0].lo & ~15ULL;
	for (size_t i = 0; i < m->n; i++)
		orr |= m->blk[i].lo - m->sbase;
	sh = !(orr & 15) ? 4 : !(orr & 7) ? 3 : 0;
	if (!sh)
		return 0;
	nbits = ((m->lo_all + m->range - m->sbase) >> sh) + 1;
	npair = nbits / 32 + 1;
	/* Spans far apart: a map of the gaps too would be mostly empty. */
	if (npair > 4 * m->n + 65536)
		return 0;
	sm = big_alloc(npair * 2 * sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	memset(sm, 0, npair * 2 * sizeof(*sm));
	for (size_t i = 0; i < m->n; i++) {
		uint64_t g = (m->blk[i].lo - m->sbase) >> sh;

		sm[2 * (g / 32) + 1] |= 1U << (g % 32);
	}
	for (uint64_t j = 0, c = 0; j < npair; j++) {
		sm[2 * j] = (uint32_t)c;
		c += popcount32(sm[2 * j + 1]);
	}
	m->smap = sm;
	m->sshift = sh;
	return 0;
}

int zs_mark_init(struct zs_mark *m, pid_t pid, const struct zscan_block *b,
		 size_t n, const struct zscan_opts *o, struct zscan_stats *st)
{
	uint64_t prev_end = 0, ext, t0 = zs_now_ns();
	uint32_t *ord = NULL;
	size_t v = 0;
	int err;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->memfd = -1;
	m->o = o;
	m->st = st;
	if (n >= ZS_UNSET)
		return -E2BIG;
	m->blk = big_alloc(n * sizeof(*m->blk));
	m->state = big_alloc(n);
	m->buf_len = o->chunk_bytes;
	m->buf = malloc(m->buf_len + ZS_COALESCE * ZS_IOV_MAX);
	m->iov = malloc(ZS_IOV_MAX * sizeof(*m->iov));
	m->batch = malloc(ZS_IOV_MAX * sizeof(*m->batch));
	m->pieces = malloc(ZS_PIECES * sizeof(struct piece));
	if (!m->blk || !m->state || !m->pieces || !m->buf || !m->iov ||
	    !m->batch) {
		err = -ENOMEM;
		goto out_free;
	}
	err = sort_blocks(b, n, &ord);
	if (err)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		size_t x = ord ? ord[i] : i;
		const struct zscan_block *c = &b[x];
		struct zs_blk *d = &m->blk[v];

		/* The caller's records are visited at random: fetch ahead. */
		if (ord && i + 16 < n)
			__builtin_prefetch(&b[ord[i + 16]]);
		ext = c->req && c->req <= c->size ? c->req : c->size;
		/* Overlapping candidates: keep the first, ignore the rest. */
		if (v && c->addr < prev_end) {
			if (st)
				st->overlaps++;
			continue;
		}
		d->lo = c->addr;
		d->hi = c->addr + (ext ? ext : 1); /* size 0: start only */
		d->end = c->addr + c->size;
		d->orig = (uint32_t)x;
		prev_end = d->end > d->hi ? d->end : d->hi;
		v++;
	}
	m->n = v;
	memset(m->state, ZS_UNREACHED, v);
	err = build_spans(m);
	if (!err)
		err = build_starts(m);
out_free:
	free(ord);
	if (err)
		zs_mark_free(m);
	if (st)
		st->index_ns = zs_now_ns() - t0;
	return err;
}

void zs_mark_free(struct zs_mark *m)
{
	for (size_t i = 0; m->span && i < m->nspan; i++)
		free(m->span[i].table);
	zs_arena_free(&m->own_arena);
	free(m->span);
	free(m->span_lo);
	free(m->blk);
	free(m->state);
	free(m->smap);
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

/*
 * Raises block i (starting at lo), hit by a word (at its start, or not);
 * sp is its span, whose copy it is read from.
 */
static int hit(struct zs_mark *m, uint32_t i, uint64_t lo, bool start,
	       bool definite, const struct zs_span *sp)
{
	uint8_t s = m->state[i];

	if (m->clique_mode) {
		if (s != ZS_UNREACHED || i == m->clique)
			return 0;
		m->state[i] = ZS_INDIRECT;
	} else if (s == ZS_REACHABLE) {
		return 0;
	} else if (start && definite) {
		m->state[i] = ZS_REACHABLE;
	} else if (s == ZS_UNREACHED) {
		m->state[i] = ZS_POSSIBLE;
	} else {
		return 0;
	}
	/* Its record and contents are read soon: on their way meanwhile. */
	__builtin_prefetch(&m->blk[i]);
	if (sp->copy)
		__builtin_prefetch(sp->copy + (lo - sp->lo));
	return push(m, i);
}

/*
 * Resolves words that passed the quick reject, a group at a time: the
 * map, table entries and block states of a group are fetched from memory
 * together (prefetch), not one cache miss after the other.
 */
static int resolve(struct zs_mark *m, const uint64_t *w, size_t n,
		   bool definite)
{
	const struct zs_span *spk[ZS_GROUP];
	const struct zs_blk *bk = m->blk;
	const unsigned int sh = m->sshift;
	const uint64_t amask = (1ULL << sh) - 1;
	uint32_t idx[ZS_GROUP];
	uint8_t kind[ZS_GROUP]; /* 0: no block, 1: a start, 2: walk */
	const struct zs_span *sp;
	uint64_t g;
	int err;

	for (size_t k = 0; k < n; k++) {
		if (m->nspan == 1) {
			/* What passed the quick reject is in the one span. */
			sp = m->span;
		} else {
			size_t lo = 0, hi = m->nspan;

			while (hi - lo > 1) {
				size_t mid = (lo + hi) / 2;

				if (m->span_lo[mid] <= w[k])
					lo = mid;
				else
					hi = mid;
			}
			sp = &m->span[lo];
			kind[k] = 0;
			if (w[k] < sp->lo || w[k] >= sp->hi)
				continue;
		}
		spk[k] = sp;
		if (sh && !((w[k] - m->sbase) & amask)) {
			kind[k] = 1;
			g = (w[k] - m->sbase) >> sh;
			__builtin_prefetch(&m->smap[2 * (g / 32)]);
		} else {
			kind[k] = 2;
			__builtin_prefetch(
				&sp->table[(w[k] - sp->lo) >> ZS_GRAN_SHIFT]);
		}
	}
	for (size_t k = 0; k < n; k++) {
		if (kind[k] == 1) {
			const uint32_t *pr;
			uint32_t bit;

			g = (w[k] - m->sbase) >> sh;
			pr = &m->smap[2 * (g / 32)];
			bit = 1U << (g % 32);
			if (pr[1] & bit) {
				idx[k] = pr[0] + popcount32(pr[1] & (bit - 1));
				__builtin_prefetch(&m->state[idx[k]]);
				continue;
			}
			kind[k] = 2; /* inside a block, or no block */
		}
		if (kind[k] == 2) {
			sp = spk[k];
			idx[k] = sp->table[(w[k] - sp->lo) >> ZS_GRAN_SHIFT];
			__builtin_prefetch(&bk[idx[k]]);
		}
	}
	for (size_t k = 0; k < n; k++) {
		uint32_t i = idx[k];

		if (kind[k] == 1) {
			err = hit(m, i, w[k], true, definite, spk[k]);
			if (err)
				return err;
			continue;
		}
		if (kind[k] != 2 || bk[i].lo > w[k])
			continue;
		/* Blocks never straddle spans: the walk stays inside. */
		while (i + 1 < m->n && bk[i + 1].lo <= w[k])
			i++;
		if (w[k] >= bk[i].hi)
			continue;
		err = hit(m, i, bk[i].lo, w[k] == bk[i].lo, definite, spk[k]);
		if (err)
			return err;
	}
	return 0;
}

/* Resolves what scan_words() left pending. */
static int flush_pending(struct zs_mark *m)
{
	size_t n = m->npend;

	m->npend = 0;
	return n ? resolve(m, m->pend, n, m->pend_definite) : 0;
}

/*
 * Words that pass the quick reject wait in m->pend, across calls, until a
 * group is full: a block holds a pointer or two, and one at a time their
 * cache misses would not overlap. Callers flush before they return.
 */
static int scan_words(struct zs_mark *m, const uint8_t *p, size_t len,
		      bool definite)
{
	const uint64_t lo_all = m->lo_all, range = m->range;
	uint64_t *group = m->pend, w;
	size_t nw = len / 8, ng;
	int err;

	if (m->npend && m->pend_definite != definite) {
		err = flush_pending(m);
		if (err)
			return err;
	}
	m->pend_definite = definite;
	ng = m->npend;
	for (size_t k = 0; k < nw; k++) {
		memcpy(&w, p + k * 8, 8);
		/* No branch: whether a word passes is data, unpredictable. */
		group[ng] = w;
		ng += w - lo_all < range;
		if (ng == ZS_GROUP) {
			err = resolve(m, group, ng, definite);
			if (err) {
				m->npend = 0;
				return err;
			}
			ng = 0;
		}
	}
	m->npend = ng;
	return 0;
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
	return flush_pending(m);
}

struct batch {
	struct zs_mark *m;
	struct piece *pc;
	size_t npc, niov, bytes;
	uint64_t iov_end;
	/*
	 * The copied span the last range was in: the next is most often in
	 * it too (the root gaps between blocks with headers, millions of
	 * them), and then needs no lookup.
	 */
	const struct zs_span *span;
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

/*
 * Adds a range of any length: one in the copy is scanned at once, a remote
 * one is read in pieces of at most buf_len.
 */
static inline int batch_add_range(struct batch *bt, uint64_t lo, uint64_t hi,
				  uint32_t blk)
{
	struct zs_mark *m = bt->m;
	const struct zs_span *sp = bt->span;
	uint64_t step;
	int err;

	lo = (lo + 7) & ~7ULL;
	hi &= ~7ULL;
	if (lo >= hi)
		return 0;
	if (!sp || lo < sp->lo || hi > sp->cend)
		sp = bt->span = copied(m, lo, hi);
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

		if (m->blk[mid].end > a || m->blk[mid].hi > a)
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
		for (j = first_ending_above(m, c);
		     j < m->n && m->blk[j].lo < top; j++) {
			/* The root bytes between two blocks. */
			err = batch_add_range(&bt, c, m->blk[j].lo, ZS_ROOT);
			if (err)
				break;
			if (m->blk[j].end > c)
				c = m->blk[j].end;
		}
		if (!err && c < top)
			err = batch_add_range(&bt, c, top, ZS_ROOT);
	}
	if (!err)
		err = batch_flush(&bt);
	if (!err)
		err = flush_pending(m);
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
		     j < m->n && m->blk[j].lo < rs->r[r].hi; j++) {
			const struct zs_blk *bk = &m->blk[j];

			if (m->state[j] != ZS_POSSIBLE &&
			    m->state[j] != ZS_REACHABLE)
				continue;
			lo = bk->lo > rs->r[r].lo ? bk->lo : rs->r[r].lo;
			hi = bk->end < rs->r[r].hi ? bk->end : rs->r[r].hi;
			err = batch_add_range(&bt, lo, hi, (uint32_t)j);
			if (err)
				break;
		}
	}
	if (!err)
		err = batch_flush(&bt);
	if (!err)
		err = flush_pending(m);
	return err;
}

static void prefetch_block(const struct zs_mark *m, uint32_t i)
{
	const struct zs_blk *bk = &m->blk[i];
	const struct zs_span *sp = copied(m, bk->lo, bk->end);
	const uint8_t *p, *e;

	if (!sp)
		return;
	p = sp->copy + (bk->lo - sp->lo);
	e = p + (bk->end - bk->lo);
	for (int k = 0; k < ZS_PF_LINES && p < e; k++, p += 64)
		__builtin_prefetch(p);
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
	while ((m->top || m->npend) && !err) {
		if (!m->top) {
			err = flush_pending(m);
			continue;
		}
		/* Pop what one read can take; index order is address order. */
		for (nb = 0, bytes = 0; m->top && nb < ZS_IOV_MAX; nb++) {
			uint32_t i = m->stack[m->top - 1];
			uint64_t len = m->blk[i].end - m->blk[i].lo;

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
			err = batch_add_range(&bt, m->blk[i].lo, m->blk[i].end,
					      i);
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

/* A read into the copies: len bytes, bad of them unreadable. */
static void count_copied(struct zs_mark *m, uint64_t bad, uint64_t len)
{
	if (!m->st)
		return;
	m->st->unreadable_bytes += bad;
	m->st->copied_bytes += len;
	if (m->stopped)
		m->st->stopped_bytes += len;
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
	count_copied(m, bad, len);
	return err;
}

void zs_arena_free(struct zs_arena *a)
{
	if (a->base)
		munmap(a->base, a->len);
	a->base = NULL;
	a->len = 0;
}

/* An arena of at least len bytes, faulted in: a's if it is large enough. */
static int arena_get(struct zs_arena *a, size_t len)
{
	uint8_t *p;

	/* Kept unless too small, or far too large for this heap now. */
	if (a->base && a->len >= len && a->len / 2 <= len + ZS_HUGE)
		return 0;
	zs_arena_free(a);
	len = (len + ZS_HUGE - 1) & ~(ZS_HUGE - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	/*
	 * Huge pages: marking jumps all over the copy, and a TLB miss per
	 * block would cost more than the scan. Fault it in now: zeroing
	 * pages must not lengthen a pause.
	 */
	madvise(p, len, MADV_HUGEPAGE);
	if (madvise(p, len, ZS_MADV_POPULATE_WRITE))
		for (size_t o = 0; o < len; o += ZS_PAGE)
			p[o] = 0;
	a->base = p;
	a->len = len;
	return 0;
}

int zs_mark_copy_prepare(struct zs_mark *m, uint64_t limit)
{
	uint64_t total = 0, off = 0;
	struct zs_span *sp;
	int err;

	if (limit == UINT64_MAX || m->ncopied)
		return 0;
	if (!m->arena)
		m->arena = &m->own_arena;
	/* A kept arena is not in MemAvailable any more: it counts as free. */
	if (!limit)
		limit = default_limit() + m->arena->len;
	/* Each span's copy 64-byte aligned, as the heap's lines are. */
	for (size_t i = 0; i < m->nspan; i++)
		total += (m->span[i].cend - m->span[i].lo + 63) & ~63ULL;
	if (!total || total > limit) {
		zs_arena_free(m->arena);
		return 0; /* block by block, then */
	}
	err = arena_get(m->arena, total);
	if (err)
		return err;
	for (size_t i = 0; i < m->nspan; i++) {
		sp = &m->span[i];
		sp->copy = m->arena->base + off;
		off += (sp->cend - sp->lo + 63) & ~63ULL;
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
	count_copied(m, bad, len);
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
		b[m->blk[i].orig].cls = c;
	}
}
