/* SPDX-License-Identifier: BSD-3-Clause */
/* used_memory.c - the outside reader of used_memory (see used_memory.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "output.h"
#include "target.h"
#include "used_memory.h"
#include "zmalloc_counters.h"

/* A longer chain than this is a corrupt or foreign structure. */
#define ZT_MAX_CHUNKS 65536
#define ZT_MAX_CHUNK_SLOTS (1U << 20)

int used_memory_init(struct zt_used_memory *um, const struct zt_target *t)
{
	int err;

	memset(um, 0, sizeof(*um));
	err = elf_find_symbol(t->probe_path, ZMALLOC_COUNTERS_SYMBOL, &um->sym);
	if (err) {
		p_warn("no symbol %s in %s (%s): used_memory will not be shown; is it an older libzmalloc?",
		       ZMALLOC_COUNTERS_SYMBOL, t->probe_path, strerror(-err));
		return err;
	}
	um->have_sym = true;
	return 0;
}

static int read_remote(pid_t pid, __u64 addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(unsigned long)addr,
				.iov_len = len };
	ssize_t n;

	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int locate(struct zt_used_memory *um, const struct zt_target *t)
{
	__u64 base, lo, hi;
	int err;

	if (!um->sym.is_dyn) {
		um->addr = um->sym.value;
		return 0;
	}
	err = target_probe_mapping(t, &base, &lo, &hi);
	if (err)
		return err;
	um->addr = base - um->sym.load_base + um->sym.value;
	return 0;
}

static int sum_chunk(pid_t pid, const struct zmalloc_counter_chunk *c,
		     __u64 addr, __s64 *sum)
{
	struct zmalloc_counter_slot *slots;
	__u32 i;
	int err;

	if (!c->nused)
		return 0;
	slots = calloc(c->nused, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	err = read_remote(pid, addr + sizeof(*c), slots,
			  c->nused * sizeof(*slots));
	for (i = 0; !err && i < c->nused; i++)
		*sum += slots[i].bytes;
	free(slots);
	return err;
}

int used_memory_read(struct zt_used_memory *um, const struct zt_target *t,
		     __s64 *bytes)
{
	struct zmalloc_counter_chunk c;
	__u64 addr;
	__s64 sum = 0;
	int n, err;

	if (!um->have_sym)
		return -ENOENT;
	if (!um->addr) {
		err = locate(um, t);
		if (err)
			return err;
	}
	for (addr = um->addr, n = 0; addr; addr = c.next, n++) {
		if (n == ZT_MAX_CHUNKS)
			return -ELOOP;
		err = read_remote(t->pid, addr, &c, sizeof(c));
		if (err)
			return err;
		if (c.magic != ZMALLOC_COUNTERS_MAGIC ||
		    c.version != ZMALLOC_COUNTERS_VERSION ||
		    c.nused > c.nslots || c.nslots > ZT_MAX_CHUNK_SLOTS)
			return -EPROTO;
		err = sum_chunk(t->pid, &c, addr, &sum);
		if (err)
			return err;
	}
	*bytes = sum;
	return 0;
}
