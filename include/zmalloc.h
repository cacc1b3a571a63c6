/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zmalloc.h - the Redis/Valkey zmalloc API, instrumented.
 *
 * A program written against Valkey 8's or Redis 7's zmalloc.h compiles and
 * links against libzmalloc unchanged. The library keeps an exact count of
 * the bytes it has handed out (zmalloc_used_memory()) and fires a USDT probe
 * at every allocation and free; see zmalloc_probes.h for the probe contract
 * and zmalloc_counters.h for reading used_memory from outside the process.
 *
 * Symbol hygiene: every symbol the library exports starts with "zm_". The
 * classic names below are macros onto them, so a program that also links
 * zlib (which exports a zcalloc of its own) or another zmalloc copy never
 * sees a clash, statically or dynamically.
 *
 * Errors follow zmalloc's own conventions: the plain family calls the OOM
 * handler and never returns NULL for a non-zero request; the "try" family
 * returns NULL; the /proc readers return 0 when the figure is unavailable.
 */
#ifndef ZMALLOC_H
#define ZMALLOC_H

#include <stddef.h>

#include "zmalloc_config.h" /* ZMALLOC_LIB, HAVE_MALLOC_SIZE, PREFIX_SIZE */

#ifdef __cplusplus
extern "C" {
#endif

/* Double expansion needed for stringification of macro values. */
#ifndef __xstr
#define __xstr(s) __str(s)
#define __str(s) #s
#endif

#define zmalloc zm_malloc
#define zcalloc zm_calloc
#define zcalloc_num zm_calloc_num
#define zrealloc zm_realloc
#define zfree zm_free
#define zstrdup zm_strdup
#define ztrymalloc zm_trymalloc
#define ztrycalloc zm_trycalloc
#define ztryrealloc zm_tryrealloc
#define zmalloc_usable zm_malloc_usable
#define zcalloc_usable zm_calloc_usable
#define zrealloc_usable zm_realloc_usable
#define ztrymalloc_usable zm_trymalloc_usable
#define ztrycalloc_usable zm_trycalloc_usable
#define ztryrealloc_usable zm_tryrealloc_usable
#define zfree_usable zm_free_usable
#define zfree_with_size zm_free_with_size
#define zmalloc_size zm_malloc_size
#define zmalloc_usable_size zm_malloc_usable_size
#define zmalloc_used_memory zm_malloc_used_memory
#define zmalloc_set_oom_handler zm_malloc_set_oom_handler
#define zmalloc_enable_thread_safeness zm_malloc_enable_thread_safeness
#define zmalloc_get_fragmentation_ratio zm_malloc_get_fragmentation_ratio
#define zmalloc_get_rss zm_malloc_get_rss
#define zmalloc_get_allocator_info zm_malloc_get_allocator_info
#define zmalloc_get_private_dirty zm_malloc_get_private_dirty
#define zmalloc_get_smap_bytes_by_field zm_malloc_get_smap_bytes_by_field
#define zmalloc_get_memory_size zm_malloc_get_memory_size
#define set_jemalloc_bg_thread zm_set_jemalloc_bg_thread
#define jemalloc_purge zm_jemalloc_purge
#define zlibc_free zm_libc_free
#define zlibc_trim zm_libc_trim
#define zmadvise_dontneed zm_madvise_dontneed
#define get_proc_stat_ll zm_get_proc_stat_ll
#define extend_to_usable zm_extend_to_usable
#define zmalloc_set_sample_bytes zm_malloc_set_sample_bytes
#define zmalloc_get_sample_bytes zm_malloc_get_sample_bytes

/* Allocation: the plain family calls the OOM handler on failure. */
__attribute__((malloc, alloc_size(1), noinline)) void *zmalloc(size_t size);
__attribute__((malloc, alloc_size(1), noinline)) void *zcalloc(size_t size);
__attribute__((malloc, alloc_size(1, 2), noinline)) void *
zcalloc_num(size_t num, size_t size);
__attribute__((alloc_size(2), noinline)) void *zrealloc(void *ptr, size_t size);
__attribute__((malloc)) char *zstrdup(const char *s);
void zfree(void *ptr);

/* The try family returns NULL instead of calling the OOM handler. */
__attribute__((malloc, alloc_size(1), noinline)) void *ztrymalloc(size_t size);
__attribute__((malloc, alloc_size(1), noinline)) void *ztrycalloc(size_t size);
__attribute__((alloc_size(2), noinline)) void *ztryrealloc(void *ptr,
							   size_t size);

/* The usable family also stores the usable size of the block in *usable. */
void *zmalloc_usable(size_t size, size_t *usable);
void *zcalloc_usable(size_t size, size_t *usable);
void *zrealloc_usable(void *ptr, size_t size, size_t *usable);
void *ztrymalloc_usable(size_t size, size_t *usable);
void *ztrycalloc_usable(size_t size, size_t *usable);
void *ztryrealloc_usable(void *ptr, size_t size, size_t *usable);
void zfree_usable(void *ptr, size_t *usable);

/*
 * Free a block whose usable size the caller already knows (as returned by
 * the _usable family or zmalloc_usable_size()), sparing the size lookup.
 * Passing any other size corrupts used_memory.
 */
void zfree_with_size(void *ptr, size_t size);

/*
 * zmalloc_size() is what the block counts for in used_memory: its usable
 * size, plus PREFIX_SIZE in the prefix backend. zmalloc_usable_size() is
 * the bytes the caller may use. Both are functions in every backend.
 */
size_t zmalloc_size(void *ptr);
size_t zmalloc_usable_size(void *ptr);

/*
 * Kept for source compatibility with code that grows a block into its
 * usable size: the call tells the compiler the new size of the object.
 */
__attribute__((alloc_size(2), noinline)) void *extend_to_usable(void *ptr,
								size_t size);

/* Accounting. */
size_t zmalloc_used_memory(void);
void zmalloc_set_oom_handler(void (*oom_handler)(size_t));
void zmalloc_enable_thread_safeness(void); /* no-op: always thread-safe */
float zmalloc_get_fragmentation_ratio(size_t rss);

/* Process readers. pid -1 means the calling process. */
size_t zmalloc_get_rss(void);
size_t zmalloc_get_private_dirty(long pid);
size_t zmalloc_get_smap_bytes_by_field(char *field, long pid);
size_t zmalloc_get_memory_size(void);
int get_proc_stat_ll(int i, long long *res);

/*
 * Allocator statistics, Valkey 8's signature. Real figures under jemalloc
 * (returns 1); all zeros and returns 1 otherwise, as Valkey does.
 */
int zmalloc_get_allocator_info(size_t *allocated, size_t *active,
			       size_t *resident, size_t *retained,
			       size_t *muzzy, size_t *frag_smallbins_bytes);
void set_jemalloc_bg_thread(int enable);
int jemalloc_purge(void);

/*
 * Sampling for production tracers (zmalloc_sampling.h): the mean bytes
 * between two samples. Setting 0 restores the default, 524288.
 */
void zmalloc_set_sample_bytes(size_t bytes);
size_t zmalloc_get_sample_bytes(void);

/* The rest of the family. */
void zlibc_free(void *ptr);
void zlibc_trim(void);
void zmadvise_dontneed(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* ZMALLOC_H */
