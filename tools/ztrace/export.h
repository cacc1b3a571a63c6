/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * export.h - the heap in the formats other tools read: a gzipped pprof
 * profile (pprof.c), folded stacks (folded.c) and an interactive SVG flame
 * graph (flamegraph.c). Each file is written under a temporary name and
 * renamed into place, so a reader never sees half of one. Functions return
 * 0 or -errno and print what failed.
 */
#ifndef ZT_EXPORT_H
#define ZT_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

struct zt_profile;
struct zt_session;

/* Whether --pprof, --folded or --svg asked for a file. */
bool export_wanted(void);
/* Snapshot the session and write every file asked for. */
int export_write(struct zt_session *s, __u64 min_age_ns);

int pprof_write(const struct zt_profile *p, const char *path);
int folded_write(const struct zt_profile *p, const char *path);
int flamegraph_write(const struct zt_profile *p, const char *path);

/* One line of folded stacks: frames root first, joined by ';'. */
struct zt_folded {
	char *stack;
	__u64 bytes;
};

/* The live bytes by symbolized stack, equal stacks merged, sorted. */
int folded_build(const struct zt_profile *p, struct zt_folded **v, size_t *n);
void folded_free(struct zt_folded *v, size_t n);

/* PATH.tmp.PID for writing, and its rename to PATH unless ERR. */
FILE *export_open(const char *path, char *tmp, size_t len);
int export_commit(FILE *f, const char *tmp, const char *path, int err);

#endif /* ZT_EXPORT_H */
