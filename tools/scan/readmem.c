/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * readmem.c - reading the target's memory with process_vm_readv.
 *
 * One call moves megabytes, or up to ZS_IOV_MAX separate pieces, so the
 * cost per byte is a copy. A read stops at the first page that cannot be
 * read (unmapped meanwhile, PROT_NONE, a hole in a file mapping): that
 * page is zeroed, counted, and the read goes on after it.
 *
 * A fork snapshot is read through /proc/PID/mem instead (memfd >= 0):
 * process_vm_readv pins the pages it copies, and pinning an anonymous
 * page shared copy-on-write makes the kernel unshare it first, i.e. copy
 * every page of the snapshot into a new one (measured: 617 ms per GiB,
 * against 270 ms through /proc/PID/mem, which only takes a reference).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

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

static ssize_t read_one(pid_t pid, int memfd, void *buf, uint64_t addr,
			size_t len)
{
	struct iovec l = { buf, len };
	struct iovec r = { (void *)(uintptr_t)addr, len };
	ssize_t got;

	if (memfd < 0)
		return process_vm_readv(pid, &l, 1, &r, 1, 0);
	got = pread(memfd, buf, len, (off_t)addr);
	if (got == 0)
		errno = EIO; /* past the end: an unmapped page */
	return got ? got : -1;
}

int zs_read(pid_t pid, int memfd, uint64_t addr, void *buf, size_t len,
	    uint64_t *bad, struct zs_ranges *badr)
{
	uint8_t *p = buf;
	uint64_t skip;
	ssize_t got;
	int err;

	while (len) {
		got = read_one(pid, memfd, p, addr, len);
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

int zs_readv(pid_t pid, int memfd, const struct iovec *remote, size_t n,
	     void *buf, uint64_t *bad, struct zs_ranges *badr)
{
	struct iovec l;
	uint8_t *p = buf;
	size_t i, k, total, done;
	ssize_t got;
	int err;

	if (memfd >= 0) {
		/* No scatter read in /proc/PID/mem: piece by piece. */
		for (i = 0; i < n; i++) {
			err = zs_read(pid, memfd, (uintptr_t)remote[i].iov_base,
				      p, remote[i].iov_len, bad, badr);
			if (err)
				return err;
			p += remote[i].iov_len;
		}
		return 0;
	}
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
			err = zs_read(pid, -1, (uintptr_t)r->iov_base + done,
				      p + done, r->iov_len - done, bad, badr);
			if (err)
				return err;
			done = 0;
			p += r->iov_len;
		}
	}
	return 0;
}

int zs_read_pieces(pid_t pid, int memfd, const struct iovec *local,
		   const struct iovec *remote, size_t n, uint64_t *bad,
		   struct zs_ranges *badr)
{
	size_t i, k, total, done;
	ssize_t got;
	int err;

	for (i = 0; i < n; i += k) {
		k = n - i < ZS_IOV_MAX ? n - i : ZS_IOV_MAX;
		total = 0;
		for (size_t j = 0; j < k; j++)
			total += remote[i + j].iov_len;
		got = memfd < 0 ? process_vm_readv(pid, &local[i], k,
						   &remote[i], k, 0) :
				  0;
		if (got < 0 && errno == ESRCH)
			return -ESRCH;
		if (got < 0 && errno != EFAULT && errno != EIO)
			return -errno;
		if (got == (ssize_t)total)
			continue;
		/* Partial, or /proc/PID/mem: piece by piece, page by page. */
		done = got > 0 ? got : 0;
		for (size_t j = i; j < i + k; j++) {
			if (done >= remote[j].iov_len) {
				done -= remote[j].iov_len;
				continue;
			}
			err = zs_read(pid, memfd,
				      (uintptr_t)remote[j].iov_base + done,
				      (uint8_t *)local[j].iov_base + done,
				      remote[j].iov_len - done, bad, badr);
			if (err)
				return err;
			done = 0;
		}
	}
	return 0;
}
