/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * present.c - which pages of the target's anonymous private memory exist.
 *
 * A page of an anonymous private mapping that is neither present nor
 * swapped out was never written, or was given back (MADV_DONTNEED): it
 * reads as zeroes, and zeroes are no pointer. The scan reads only the
 * pages that exist, found with PAGEMAP_SCAN, which skips whole page
 * tables that are absent: a reservation of 64 GiB that holds a few pages
 * (libzmalloc's sample heap, an arena reserved ahead) costs what those
 * pages cost, not a read of 64 GiB of zeroes, which would also fill the
 * target's page tables with zero-page entries.
 *
 * File mappings are not concerned (an absent page there reads as the
 * file), nor shared ones (another process may hold the page). Where the
 * ioctl is missing (Linux before 6.7), every page counts as present.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "pagemap_scan.h"
#include "zscan_int.h"

#define ZS_PRESENT_VEC 1024 /* regions per ioctl */
/* Below this a mapping is read whole: one ioctl costs about a read. */
#define ZS_PRESENT_MIN (1ULL << 20)

int zs_present_open(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

int zs_present_add(int fd, uint64_t lo, uint64_t hi, struct zs_ranges *out,
		   uint64_t *absent)
{
	struct page_region v[ZS_PRESENT_VEC];
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.vec = (uintptr_t)v,
		.vec_len = ZS_PRESENT_VEC,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};
	uint64_t at = lo, got = 0;
	long n;
	int err;

	if (fd < 0 || hi - lo < ZS_PRESENT_MIN)
		return zs_ranges_add(out, lo, hi);
	while (at < hi) {
		a.start = at;
		a.end = hi;
		n = ioctl(fd, PAGEMAP_SCAN, &a);
		if (n < 0) {
			/* Unknown from here on: read it all. */
			return zs_ranges_add(out, at, hi);
		}
		for (long i = 0; i < n; i++) {
			err = zs_ranges_add(out, v[i].start, v[i].end);
			if (err)
				return err;
			got += v[i].end - v[i].start;
		}
		if (a.walk_end <= at)
			return zs_ranges_add(out, at, hi);
		at = a.walk_end;
	}
	if (absent)
		*absent += (hi - lo) - got;
	return 0;
}
