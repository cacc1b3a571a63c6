/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * json.h - a minimal streaming JSON writer. One document is one line; keys
 * are passed with every value and ignored inside arrays (pass NULL).
 */
#ifndef ZT_JSON_H
#define ZT_JSON_H

#include <stdbool.h>
#include <stdio.h>

#define JW_MAX_DEPTH 16

struct jw {
	FILE *f;
	int depth;
	bool first[JW_MAX_DEPTH];
};

void jw_begin(struct jw *w, FILE *f);
void jw_end(struct jw *w);
void jw_obj(struct jw *w, const char *key);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_u64(struct jw *w, const char *key, unsigned long long v);
void jw_s64(struct jw *w, const char *key, long long v);
void jw_double(struct jw *w, const char *key, double v);
void jw_str(struct jw *w, const char *key, const char *s);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);

#endif /* ZT_JSON_H */
