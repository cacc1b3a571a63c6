/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * report.h - what every report carries, whatever the mode: when and on
 * what, the events, the live bytes BPF saw, the target's own used_memory
 * and RSS, and every drop counter, in text or as JSON keys. A report with
 * drops says it is incomplete.
 */
#ifndef ZT_REPORT_H
#define ZT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct jw;
struct zt_session;
struct zt_snapshot;

bool report_incomplete(const struct zt_snapshot *s);
const char *fmt_size(char *buf, size_t len, __u64 bytes);

void report_text_begin(struct zt_session *s, bool final);
void report_text_end(struct zt_session *s);
void report_json_begin(struct jw *w, struct zt_session *s, bool final);
void report_json_end(struct jw *w, struct zt_session *s);

#endif /* ZT_REPORT_H */
