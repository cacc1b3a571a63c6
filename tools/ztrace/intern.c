/* SPDX-License-Identifier: BSD-3-Clause */
/* intern.c - string interner (see intern.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

void intern_init(struct intern *t)
{
	memset(t, 0, sizeof(*t));
}

void intern_free(struct intern *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->slots);
	intern_init(t);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static size_t find_slot(const struct intern *t, const char *s)
{
	size_t mask = t->nslots - 1, i = fnv1a(s) & mask;

	while (t->slots[i] && strcmp(t->strs[t->slots[i] - 1], s))
		i = (i + 1) & mask;
	return i;
}

static int grow(struct intern *t)
{
	size_t nslots = t->nslots ? t->nslots * 2 : 256, i, j;
	long *old = t->slots;

	t->slots = calloc(nslots, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->nslots = nslots;
	for (i = 0; i < t->n; i++) {
		j = find_slot(t, t->strs[i]);
		t->slots[j] = i + 1;
	}
	free(old);
	return 0;
}

long intern(struct intern *t, const char *s)
{
	size_t i;
	char *dup;

	if ((t->n + 1) * 2 > t->nslots && grow(t))
		return -ENOMEM;
	i = find_slot(t, s);
	if (t->slots[i])
		return t->slots[i] - 1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 128;
		char **v = realloc(t->strs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->strs = v;
		t->cap = cap;
	}
	dup = strdup(s);
	if (!dup)
		return -ENOMEM;
	t->strs[t->n] = dup;
	t->slots[i] = ++t->n;
	return t->n - 1;
}
