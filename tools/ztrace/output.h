/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * output.h - where ztrace writes: reports go to zt_out (stdout or -o FILE),
 * messages to stderr. Under --json an error is also a JSON document on
 * zt_out, so a script reading the reports sees why they stopped.
 */
#ifndef ZT_OUTPUT_H
#define ZT_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

extern FILE *zt_out;

int output_open(const char *path, bool json);
void output_close(void);

/* "ztrace: <message>" on stderr: what failed, on what, what to do. */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* ZT_OUTPUT_H */
