/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_allocator.c - the allocator's own controls and statistics, and the
 * calls that bypass zmalloc to reach libc's allocator directly.
 *
 * Under jemalloc these speak mallctl; under the other backends they are the
 * harmless answers Valkey gives: zeros, success, nothing done.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zm_backend.h"
#include "zmalloc.h"

#define ZM_API __attribute__((visibility("default")))

#ifdef ZM_BACKEND_JEMALLOC

static size_t je_size_stat(const char *name)
{
	size_t value = 0, sz = sizeof(value);

	if (mallctl(name, &value, &sz, NULL, 0) != 0)
		return 0;
	return value;
}

static unsigned je_unsigned_stat(const char *name)
{
	unsigned value = 0;
	size_t sz = sizeof(value);

	if (mallctl(name, &value, &sz, NULL, 0) != 0)
		return 0;
	return value;
}

/* Bytes of free regions in the slabs of the small size classes. */
static size_t je_frag_smallbins(void)
{
	unsigned nbins = je_unsigned_stat("arenas.nbins"), j;
	size_t frag = 0;
	char name[128];

	for (j = 0; j < nbins; j++) {
		size_t reg_size, curregs, curslabs;
		unsigned nregs;

		snprintf(name, sizeof(name), "arenas.bin.%u.size", j);
		reg_size = je_size_stat(name);
		snprintf(name, sizeof(name), "arenas.bin.%u.nregs", j);
		nregs = je_unsigned_stat(name);
		snprintf(name, sizeof(name), "stats.arenas.%u.bins.%u.curregs",
			 MALLCTL_ARENAS_ALL, j);
		curregs = je_size_stat(name);
		snprintf(name, sizeof(name), "stats.arenas.%u.bins.%u.curslabs",
			 MALLCTL_ARENAS_ALL, j);
		curslabs = je_size_stat(name);
		frag += (nregs * curslabs - curregs) * reg_size;
	}
	return frag;
}

ZM_API int zmalloc_get_allocator_info(size_t *allocated, size_t *active,
				      size_t *resident, size_t *retained,
				      size_t *muzzy,
				      size_t *frag_smallbins_bytes)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	char name[64];

	/* Refresh jemalloc's cached statistics first. */
	mallctl("epoch", &epoch, &sz, &epoch, sz);
	*allocated = je_size_stat("stats.allocated");
	*active = je_size_stat("stats.active");
	*resident = je_size_stat("stats.resident");
	*retained = je_size_stat("stats.retained");
	snprintf(name, sizeof(name), "stats.arenas.%u.pmuzzy",
		 MALLCTL_ARENAS_ALL);
	*muzzy = je_size_stat(name) * je_size_stat("arenas.page");
	*frag_smallbins_bytes = je_frag_smallbins();
	return 1;
}

ZM_API void set_jemalloc_bg_thread(int enable)
{
	bool on = enable != 0;

	mallctl("background_thread", NULL, NULL, &on, sizeof(on));
}

ZM_API int jemalloc_purge(void)
{
	char name[64];

	snprintf(name, sizeof(name), "arena.%u.purge", MALLCTL_ARENAS_ALL);
	return mallctl(name, NULL, NULL, NULL, 0) == 0 ? 0 : -1;
}

/* Gives back the whole pages inside a block, keeping it allocated. */
ZM_API void zmadvise_dontneed(void *ptr)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)ptr, end;

	if (ptr == NULL)
		return;
	end = start + zmalloc_usable_size(ptr); /* sampled blocks too */
	start = (start + page - 1) & ~(uintptr_t)(page - 1);
	end &= ~(uintptr_t)(page - 1);
	if (end > start)
		madvise((void *)start, end - start, MADV_DONTNEED);
}

#else /* no allocator statistics to speak of */

ZM_API int zmalloc_get_allocator_info(size_t *allocated, size_t *active,
				      size_t *resident, size_t *retained,
				      size_t *muzzy,
				      size_t *frag_smallbins_bytes)
{
	*allocated = *active = *resident = 0;
	*retained = *muzzy = *frag_smallbins_bytes = 0;
	return 1;
}

ZM_API void set_jemalloc_bg_thread(int enable)
{
	(void)enable;
}

ZM_API int jemalloc_purge(void)
{
	return 0;
}

/* As Valkey: only jemalloc's pages are known safe to give back. */
ZM_API void zmadvise_dontneed(void *ptr)
{
	(void)ptr;
}

#endif /* ZM_BACKEND_JEMALLOC */

ZM_API void zlibc_free(void *ptr)
{
	free(ptr);
}

ZM_API void zlibc_trim(void)
{
	malloc_trim(0);
}
