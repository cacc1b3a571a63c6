/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * folded.c - live bytes by stack as folded stacks, the format of Brendan
 * Gregg's stackcollapse scripts that every flame-graph tool reads: one
 * line per stack, its frames from the root to the allocating function
 * joined by ';', a space and the live bytes. A ';' inside a name becomes
 * ':'. Stacks that symbolize alike are merged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "intern.h"
#include "output.h"
#include "profile.h"
#include "symbolize.h"

#define ZT_FOLDED_MAX 8192

static void append(char *line, size_t *len, const char *name)
{
	size_t i;

	if (*len && *len < ZT_FOLDED_MAX - 1)
		line[(*len)++] = ';';
	for (i = 0; name[i] && *len < ZT_FOLDED_MAX - 1; i++)
		line[(*len)++] = name[i] == ';' ? ':' : name[i];
	line[*len] = '\0';
}

static void fold(const struct zt_prof_stack *r, char *line)
{
	size_t len = 0;
	char buf[64];
	int i;

	line[0] = '\0';
	if (!r->st || !r->st->nframes) {
		append(line, &len, "[stack not recorded]");
		return;
	}
	for (i = r->st->nframes - 1; i >= 0; i--)
		append(line, &len,
		       profile_frame_name(r->st, i, buf, sizeof(buf)));
}

static int by_stack(const void *a, const void *b)
{
	const struct zt_folded *x = a, *y = b;

	return strcmp(x->stack, y->stack);
}

int folded_build(const struct zt_profile *p, struct zt_folded **out,
		 size_t *nout)
{
	struct zt_folded *v;
	struct intern t;
	char *line;
	size_t i;
	long k;
	int err = 0;

	*out = NULL;
	*nout = 0;
	v = calloc(p->n ? p->n : 1, sizeof(*v));
	line = malloc(ZT_FOLDED_MAX);
	if (!v || !line) {
		free(v);
		free(line);
		return -ENOMEM;
	}
	intern_init(&t);
	for (i = 0; i < p->n; i++) {
		if (!p->v[i].live_bytes)
			continue;
		fold(&p->v[i], line);
		k = intern(&t, line);
		if (k < 0) {
			err = -ENOMEM;
			break;
		}
		v[k].bytes += p->v[i].live_bytes;
	}
	/* The strings move to v. */
	for (i = 0; i < t.n; i++) {
		v[i].stack = t.strs[i];
		t.strs[i] = NULL;
	}
	*nout = t.n;
	intern_free(&t);
	free(line);
	qsort(v, *nout, sizeof(*v), by_stack);
	*out = v;
	if (err) {
		folded_free(v, *nout);
		*out = NULL;
		*nout = 0;
	}
	return err;
}

void folded_free(struct zt_folded *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i].stack);
	free(v);
}

int folded_write(const struct zt_profile *p, const char *path)
{
	struct zt_folded *v;
	char tmp[4096];
	size_t n, i;
	FILE *f;
	int err;

	err = folded_build(p, &v, &n);
	if (err) {
		p_err("cannot fold the stacks: %s", strerror(-err));
		return err;
	}
	f = export_open(path, tmp, sizeof(tmp));
	if (!f) {
		err = -errno;
		goto out_free;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "%s %llu\n", v[i].stack,
			(unsigned long long)v[i].bytes);
	err = export_commit(f, tmp, path, ferror(f) ? -EIO : 0);
out_free:
	folded_free(v, n);
	return err;
}
