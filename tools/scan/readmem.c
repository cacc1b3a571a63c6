/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * readmem.c - reading the target's memory with process_vm_readv.
 *
 * One call moves megabytes, or up to ZS_IOV_MAX separate pieces, so the
 * cost per byte is a copy. A read stops at the first page that cannot be
 * read (unmapped meanwhile, PROT_NONE, a hole in a file mapping): that
 * page is zeroed, counted, and the read goes on after it.
 */
#include <errno.h>
#include <string.h>

#include "zscan_int.h"

static uint64_t next_page(uint64_t a)
{
	return (a | (ZS_PAGE - 1)) + 1;
}

static int note_bad(uint64_t lo, uint64_t hi, uint64_t *bad,
		    struct zs_ranges *badr)
{
	*bad += hi - lo;
	return badr ? zs_ranges_add(badr, lo, hi) : 0;
}

int zs_read(pid_t pid, uint64_t addr, void *buf, size_t len, uint64_t *bad,
	    struct zs_ranges *badr)
{
	struct iovec l, r;
	uint8_t *p = buf;
	uint64_t skip;
	ssize_t got;
	int err;

	while (len) {
		l.iov_base = p;
		l.iov_len = len;
		r.iov_base = (void *)(uintptr_t)addr;
		r.iov_len = len;
		got = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (got < 0 && errno == ESRCH)
			return -ESRCH;
		if (got < 0 && errno != EFAULT && errno != EIO)
			return -errno;
		if (got > 0) {
			p += got;
			addr += got;
			len -= got;
			continue;
		}
		/* Nothing read at addr: skip its page. */
		skip = next_page(addr) - addr;
		if (skip > len)
			skip = len;
		memset(p, 0, skip);
		err = note_bad(addr, addr + skip, bad, badr);
		if (err)
			return err;
		p += skip;
		addr += skip;
		len -= skip;
	}
	return 0;
}

int zs_readv(pid_t pid, const struct iovec *remote, size_t n, void *buf,
	     uint64_t *bad, struct zs_ranges *badr)
{
	struct iovec l;
	uint8_t *p = buf;
	size_t i, k, total, done;
	ssize_t got;
	int err;

	for (i = 0; i < n; i += k) {
		k = n - i < ZS_IOV_MAX ? n - i : ZS_IOV_MAX;
		total = 0;
		for (size_t j = 0; j < k; j++)
			total += remote[i + j].iov_len;
		l.iov_base = p;
		l.iov_len = total;
		got = process_vm_readv(pid, &l, 1, &remote[i], k, 0);
		if (got < 0 && errno == ESRCH)
			return -ESRCH;
		if (got < 0 && errno != EFAULT && errno != EIO)
			return -errno;
		if (got == (ssize_t)total) {
			p += total;
			continue;
		}
		/* A partial read: finish piece by piece, page by page. */
		done = got > 0 ? got : 0;
		for (size_t j = 0; j < k; j++) {
			const struct iovec *r = &remote[i + j];

			if (done >= r->iov_len) {
				done -= r->iov_len;
				p += r->iov_len;
				continue;
			}
			err = zs_read(pid, (uintptr_t)r->iov_base + done,
				      p + done, r->iov_len - done, bad, badr);
			if (err)
				return err;
			done = 0;
			p += r->iov_len;
		}
	}
	return 0;
}
