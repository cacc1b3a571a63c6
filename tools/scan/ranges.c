/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ranges.c - sets of address ranges, [lo, hi), kept sorted and disjoint:
 * the roots, the pages written during a concurrent pass, what could not
 * be read.
 */
#include <errno.h>
#include <stdlib.h>

#include "zscan_int.h"

int zs_ranges_add(struct zs_ranges *rs, uint64_t lo, uint64_t hi)
{
	struct zs_range *r;
	size_t cap;

	if (lo >= hi)
		return 0;
	/* Extend the last range when the new one touches it. */
	if (rs->n && rs->r[rs->n - 1].hi == lo) {
		rs->r[rs->n - 1].hi = hi;
		return 0;
	}
	if (rs->n == rs->cap) {
		cap = rs->cap ? rs->cap * 2 : 64;
		r = realloc(rs->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n].lo = lo;
	rs->r[rs->n].hi = hi;
	rs->n++;
	return 0;
}

void zs_ranges_free(struct zs_ranges *rs)
{
	free(rs->r);
	rs->r = NULL;
	rs->n = rs->cap = 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct zs_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void zs_ranges_normalize(struct zs_ranges *rs)
{
	size_t i, o = 0;

	if (rs->n < 2)
		return;
	qsort(rs->r, rs->n, sizeof(*rs->r), cmp_range);
	for (i = 1; i < rs->n; i++) {
		if (rs->r[i].lo <= rs->r[o].hi) {
			if (rs->r[i].hi > rs->r[o].hi)
				rs->r[o].hi = rs->r[i].hi;
			continue;
		}
		rs->r[++o] = rs->r[i];
	}
	rs->n = o + 1;
}

int zs_ranges_and(const struct zs_ranges *a, const struct zs_ranges *b,
		  struct zs_ranges *out)
{
	size_t i = 0, j = 0;
	uint64_t lo, hi;
	int err;

	while (i < a->n && j < b->n) {
		lo = a->r[i].lo > b->r[j].lo ? a->r[i].lo : b->r[j].lo;
		hi = a->r[i].hi < b->r[j].hi ? a->r[i].hi : b->r[j].hi;
		if (lo < hi) {
			err = zs_ranges_add(out, lo, hi);
			if (err)
				return err;
		}
		if (a->r[i].hi < b->r[j].hi)
			i++;
		else
			j++;
	}
	return 0;
}

int zs_ranges_sub(const struct zs_ranges *a, const struct zs_ranges *b,
		  struct zs_ranges *out)
{
	size_t i, j = 0;
	uint64_t lo;
	int err;

	for (i = 0; i < a->n; i++) {
		lo = a->r[i].lo;
		while (j < b->n && b->r[j].hi <= lo)
			j++;
		/* Walk the b ranges that cut into this a range. */
		for (size_t k = j; k < b->n && b->r[k].lo < a->r[i].hi; k++) {
			err = zs_ranges_add(out, lo, b->r[k].lo);
			if (err)
				return err;
			if (b->r[k].hi > lo)
				lo = b->r[k].hi;
		}
		if (lo < a->r[i].hi) {
			err = zs_ranges_add(out, lo, a->r[i].hi);
			if (err)
				return err;
		}
	}
	return 0;
}
