/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * valkey_style.c - a program written against Valkey 8's zmalloc.h, built
 * against the installed libzmalloc through pkg-config. It names every
 * function of the API the way Valkey's sources do, including zfree as a
 * function pointer, and checks used_memory returns to its start.
 */
#include <stdio.h>
#include <string.h>

#include "zmalloc.h"

struct dict_type {
	void (*val_destructor)(void *ptr);
};

static void oom(size_t size)
{
	printf("oom %zu\n", size);
}

int main(void)
{
	struct dict_type type = { .val_destructor = zfree };
	size_t start = zmalloc_used_memory(), usable, a, b, c, d, e, f;
	long long ppid;
	char *s, *p;

	zmalloc_enable_thread_safeness();
	zmalloc_set_oom_handler(oom);
	s = zstrdup("valkey");
	p = zmalloc_usable(100, &usable);
	p = zrealloc_usable(p, 200, &usable);
	p = extend_to_usable(p, zmalloc_usable_size(p));
	zfree_with_size(p, usable);
	p = ztrymalloc(10);
	zfree(ztryrealloc(p, 20));
	zfree(ztrycalloc(30));
	zfree(zcalloc(40));
	zfree(zcalloc_num(4, 10));
	zfree(zcalloc_usable(8, &usable));
	zfree(ztrymalloc_usable(8, &usable));
	zfree(ztrycalloc_usable(8, &usable));
	zfree(ztryrealloc_usable(NULL, 8, &usable));
	zfree_usable(zmalloc(8), &usable);
	if (zmalloc_size(s) < strlen(s) + 1 || !get_proc_stat_ll(4, &ppid))
		return 1;
	zmalloc_get_allocator_info(&a, &b, &c, &d, &e, &f);
	set_jemalloc_bg_thread(0);
	jemalloc_purge();
	zmadvise_dontneed(s);
	zlibc_trim();
	zlibc_free(strdup("libc"));
	type.val_destructor(s);
	printf("lib=%s prefix=%d rss>0=%d mem>0=%d dirty=%d smap=%d frag=%d "
	       "leaked=%zu\n",
	       ZMALLOC_LIB, (int)PREFIX_SIZE, zmalloc_get_rss() > 0,
	       zmalloc_get_memory_size() > 0, zmalloc_get_private_dirty(-1) > 0,
	       zmalloc_get_smap_bytes_by_field("Rss:", -1) > 0,
	       zmalloc_get_fragmentation_ratio(zmalloc_get_rss()) >= 0,
	       zmalloc_used_memory() - start);
	return 0;
}
