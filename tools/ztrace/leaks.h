/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leaks.h - the stack symbolization of "ztrace leaks", shared with the
 * modes that export stacks (record, top, the --pprof, --folded and --svg
 * outputs of leaks).
 */
#ifndef ZT_LEAKS_H
#define ZT_LEAKS_H

#include <linux/types.h>

struct zt_session;
struct zt_sym_stack;

/* Symbolize every stack not yet done: called about once a second. */
void leaks_refresh(struct zt_session *s);
/* The symbolized stack of STACK_ID, or NULL when it was not recorded. */
const struct zt_sym_stack *leak_stack(struct zt_session *s, __u32 stack_id);

#endif /* ZT_LEAKS_H */
