/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * intern.h - a string interner: each distinct string gets the next index,
 * from 0, in an open-addressing hash table. The pprof writer's string
 * table, and its functions and locations keyed by strings. Functions
 * return the index, or -ENOMEM.
 */
#ifndef ZT_INTERN_H
#define ZT_INTERN_H

#include <stddef.h>

struct intern {
	char **strs; /* by index */
	size_t n;
	size_t cap;
	long *slots; /* index + 1; 0: empty */
	size_t nslots; /* a power of 2 */
};

void intern_init(struct intern *t);
void intern_free(struct intern *t);
long intern(struct intern *t, const char *s);
/* Whether the last intern() added its string. */
#define intern_added(t, idx) ((size_t)(idx) + 1 == (t)->n)

#endif /* ZT_INTERN_H */
