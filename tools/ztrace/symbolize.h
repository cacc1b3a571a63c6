/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * symbolize.h - user stacks to function, file and line, with elfutils'
 * libdwfl on the live process. Results are cached per stack id, so stacks
 * symbolized while the target lived still print after it has gone.
 * libzmalloc's own leading frames are dropped: the first frame shown is the
 * caller of the allocator.
 */
#ifndef ZT_SYMBOLIZE_H
#define ZT_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct zt_target;

struct zt_frame {
	__u64 ip;
	char *func; /* NULL when unknown */
	__u64 offset; /* ip - function start */
	char *file; /* NULL without line information */
	int line;
	char *module; /* file name of the object */
};

struct zt_sym_stack {
	int nframes;
	int dropped; /* allocator frames dropped from the top */
	bool resolved; /* symbolized against the live process */
	struct zt_frame frames[];
};

struct zt_symbolizer {
	pid_t pid;
	struct Dwfl *dwfl;
	bool reported;
	__u64 lib_lo, lib_hi; /* the probe file's mappings; 0 if static */
	struct zt_sym_stack **cache;
	size_t ncache;
};

int symbolizer_init(struct zt_symbolizer *s, const struct zt_target *t,
		    size_t max_stack_ids);
/* Re-read the target's mappings (new libraries); 0 or -errno. */
int symbolizer_refresh(struct zt_symbolizer *s, const struct zt_target *t);
/* Cached: IPS are only used the first time STACK_ID is seen alive. */
const struct zt_sym_stack *symbolize(struct zt_symbolizer *s, __u32 stack_id,
				     const __u64 *ips, int n, bool alive);
bool symbolized(const struct zt_symbolizer *s, __u32 stack_id);
void symbolizer_free(struct zt_symbolizer *s);

#endif /* ZT_SYMBOLIZE_H */
