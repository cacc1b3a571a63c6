/* SPDX-License-Identifier: BSD-3-Clause */
/* json.c - a minimal streaming JSON writer (see json.h). */
#include <math.h>

#include "json.h"

static void jw_sep(struct jw *w)
{
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
}

static void jw_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = *s;

		switch (ch) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (ch < 0x20)
				fprintf(f, "\\u%04x", ch);
			else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

static void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	if (key) {
		jw_string(w->f, key);
		fputc(':', w->f);
	}
}

static void jw_open(struct jw *w, const char *key, char ch)
{
	jw_key(w, key);
	fputc(ch, w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char ch)
{
	fputc(ch, w->f);
	if (w->depth > 0)
		w->depth--;
}

void jw_begin(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->first[0] = true;
	jw_open(w, NULL, '{');
}

void jw_end(struct jw *w)
{
	jw_close(w, '}');
	fputc('\n', w->f);
	fflush(w->f);
}

void jw_obj(struct jw *w, const char *key)
{
	jw_open(w, key, '{');
}

void jw_obj_end(struct jw *w)
{
	jw_close(w, '}');
}

void jw_arr(struct jw *w, const char *key)
{
	jw_open(w, key, '[');
}

void jw_arr_end(struct jw *w)
{
	jw_close(w, ']');
}

void jw_u64(struct jw *w, const char *key, unsigned long long v)
{
	jw_key(w, key);
	fprintf(w->f, "%llu", v);
}

void jw_s64(struct jw *w, const char *key, long long v)
{
	jw_key(w, key);
	fprintf(w->f, "%lld", v);
}

void jw_double(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	if (isfinite(v))
		fprintf(w->f, "%.6g", v);
	else
		fputs("null", w->f);
}

void jw_str(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	if (s)
		jw_string(w->f, s);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w, const char *key)
{
	jw_key(w, key);
	fputs("null", w->f);
}
