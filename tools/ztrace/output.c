/* SPDX-License-Identifier: BSD-3-Clause */
/* output.c - report stream and user messages (see output.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "output.h"

FILE *zt_out;
static bool out_json;
static bool out_owned;

int output_open(const char *path, bool json)
{
	out_json = json;
	if (!path || !strcmp(path, "-")) {
		zt_out = stdout;
		return 0;
	}
	zt_out = fopen(path, "w");
	if (!zt_out) {
		int err = -errno;

		zt_out = stdout;
		p_err("cannot open output file %s: %s; check the directory exists and is writable",
		      path, strerror(-err));
		return err;
	}
	out_owned = true;
	setvbuf(zt_out, NULL, _IOLBF, 0);
	return 0;
}

void output_close(void)
{
	if (out_owned)
		fclose(zt_out);
	else if (zt_out)
		fflush(zt_out);
	zt_out = NULL;
	out_owned = false;
}

static void p_msg(const char *level, const char *fmt, va_list ap)
{
	va_list ap2;

	va_copy(ap2, ap);
	fprintf(stderr, "ztrace: %s", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (out_json && zt_out && !strcmp(level, "error: ")) {
		char buf[1024];
		struct jw w;

		vsnprintf(buf, sizeof(buf), fmt, ap2);
		jw_begin(&w, zt_out);
		jw_str(&w, "error", buf);
		jw_end(&w);
	}
	va_end(ap2);
}

void p_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	p_msg("error: ", fmt, ap);
	va_end(ap);
}

void p_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	p_msg("warning: ", fmt, ap);
	va_end(ap);
}

void p_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	p_msg("", fmt, ap);
	va_end(ap);
}
