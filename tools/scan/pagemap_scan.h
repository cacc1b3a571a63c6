/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pagemap_scan.h - the PAGEMAP_SCAN ioctl of /proc/PID/pagemap (Linux
 * 6.7 uapi, <linux/fs.h>), for system headers older than it (Debian 12
 * has 6.1's). On an older kernel the ioctl fails with ENOTTY.
 */
#ifndef ZS_PAGEMAP_SCAN_H
#define ZS_PAGEMAP_SCAN_H

#include <sys/ioctl.h>
#include <linux/fs.h>
#include <linux/types.h>

#ifndef PAGEMAP_SCAN
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

#endif /* ZS_PAGEMAP_SCAN_H */
