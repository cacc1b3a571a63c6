/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * used_memory.h - read the target's zmalloc_used_memory() from outside it,
 * as include/zmalloc_counters.h describes: the symbol zm_counters in the
 * probe file, its load address from /proc/PID/maps, the chain of chunks
 * read with process_vm_readv(). Functions return 0 or -errno; -EAGAIN means
 * the library is not mapped yet.
 */
#ifndef ZT_USED_MEMORY_H
#define ZT_USED_MEMORY_H

#include <stdbool.h>
#include <linux/types.h>

#include "elf_info.h"

struct zt_target;

struct zt_used_memory {
	struct zt_elf_sym sym;
	bool have_sym;
	__u64 addr; /* of zm_counters in the target; 0 until mapped */
};

int used_memory_init(struct zt_used_memory *um, const struct zt_target *t);
int used_memory_read(struct zt_used_memory *um, const struct zt_target *t,
		     __s64 *bytes);

#endif /* ZT_USED_MEMORY_H */
