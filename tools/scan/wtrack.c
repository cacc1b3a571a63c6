/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wtrack.c - the write tracker of the concurrent mode: which pages of the
 * target were written since a moment of our choosing, so that the stop
 * rescans those only.
 *
 * A page the tracker cannot vouch for counts as written. Two backends,
 * chosen once per context, the first that works:
 *
 *   soft-dirty  "4" into /proc/PID/clear_refs clears the soft-dirty bit
 *               of every page, and the first write sets it again (pagemap
 *               bit 55). Needs CONFIG_MEM_SOFT_DIRTY.
 *   uffd-wp     a userfaultfd in asynchronous write-protect mode (Linux
 *               6.7): the mappings are registered with it and
 *               write-protected; the first write to a page faults, and the
 *               kernel resolves the fault itself by clearing the page's
 *               uffd-wp bit. PAGEMAP_SCAN on /proc/PID/pagemap lists the
 *               pages without it.
 *
 * Without either, nothing is tracked and the stop rescans all memory.
 *
 * What is tracked: the private mappings that the pass reads as roots,
 * except stacks (the stop rescans their live part anyway). Not shared
 * mappings: another process writes them through its own page tables,
 * where no bit of ours shows it. Nor, inside a tracked mapping, a private
 * file page that was never copied on write: it shows the file, which a
 * write(2) elsewhere changes (PAGE_IS_FILE; soft-dirty: pagemap bit 61).
 * Both count as written. No backend sees writes that bypass the page
 * tables: DMA, or io_uring, into buffers pinned before the arming.
 *
 * The userfaultfd. A userfaultfd works on the mm of the process that
 * called userfaultfd(2), so the target must make it: one thread is
 * stopped (the others run on), made to call userfaultfd(O_CLOEXEC |
 * O_NONBLOCK | UFFD_USER_MODE_ONLY) (inject.c), the new fd is copied into
 * the scanner with pidfd_getfd(2), then closed in the target by a second
 * injected call, and the thread resumes. The target keeps no descriptor;
 * ours holds the registrations, and when it is closed (zscan_ctx_free(),
 * or the scanner's death) the kernel unregisters every range and drops
 * the write-protection. UFFD_USER_MODE_ONLY keeps the call allowed where
 * vm.unprivileged_userfaultfd is 0; it only concerns faults that wait for
 * a handler, and an asynchronous fault never waits, so the kernel's own
 * writes (read(2) into a buffer) are tracked like the target's. The
 * registration fails with EBUSY where the target uses a userfaultfd of
 * its own, and EINVAL where a mapping cannot be tracked: those stay
 * untracked.
 *
 * Between the two injected calls (one pidfd_getfd) the fd is in the
 * target's table: a SIGKILL of the scanner then leaves it there, and a
 * fork by another thread then gives the child a copy (closed at exec),
 * which keeps the registrations alive until the child closes it. Before
 * the close, kcmp(2) checks that the number still names our file: a
 * thread of the target that closed it and opened another file meanwhile
 * keeps that file.
 *
 * Arming, each scan, while the target runs: every trackable mapping is
 * registered (again: a no-op where it is ours already) and
 * write-protected, ZS_WT_CHUNK bytes per ioctl, since each holds the
 * target's mmap lock and its mmap(2) and munmap(2) wait.
 *
 * At the stop, PAGEMAP_SCAN reports a page that was written, a private
 * file page not copied, and any page of a mapping that is not
 * write-protect-capable any more (the inverted PAGE_IS_WPALLOWED): a
 * mapping the target replaced with munmap and mmap, or moved with mremap,
 * is not registered. Then each tracked range is registered again, which
 * fails (EBUSY) where the target's own userfaultfd holds a part of it
 * now: counted as written whole. In that order: registering first would
 * make a replacement look tracked.
 *
 * Precleaning (zs_wtrack_written() with rearm), while the target runs:
 * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING lists the written pages and
 * write-protects them again in one walk, under the page table lock, so
 * that no write between the two goes unseen. The write-protect ioctls do
 * not check whose userfaultfd a mapping is registered with (measured on
 * 6.18: UFFDIO_WRITEPROTECT through one userfaultfd protects a range
 * another one registered), so the walk is limited to ranges still ours,
 * checked as at the stop just before; a replacement registered by the
 * target's own userfaultfd within those microseconds is the residue.
 *
 * What the target can notice while a context lives: "uw" in the VmFlags
 * of its tracked mappings (smaps); a minor fault at the first write to a
 * page after each arming, as with soft-dirty; transparent huge pages of
 * tracked mappings split at their first write, and not collapsed again;
 * EBUSY from its own UFFDIO_REGISTER over a tracked range; a new brk or
 * mmap area next to a tracked mapping kept as a mapping of its own. When
 * the context is freed, the kernel walks the tracked mappings to
 * unprotect them, with the target's mmap lock held for writing
 * (milliseconds per GiB).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/kcmp.h>
#include <linux/userfaultfd.h>

#include "pagemap_scan.h"
#include "zscan_int.h"

/* Linux 6.7 uapi, missing from older headers (Debian 12 has 6.1's). */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define ZS_PM_SOFT_DIRTY (1ULL << 55)
#define ZS_PM_FILE (1ULL << 61) /* file page, or shared anonymous */
#define ZS_PM_ENTRIES 8192
#define ZS_WT_VEC 4096 /* regions per PAGEMAP_SCAN */
/* Write-protected per ioctl: each holds the target's mmap lock. */
#define ZS_WT_CHUNK (64ULL << 20)
#define ZS_WT_TRIES 16 /* threads tried for the injection */
#define ZS_WHY 192

const char *zscan_tracker_name(unsigned int tracker)
{
	static const char *const names[] = {
		[ZSCAN_TRACK_NONE] = "none",
		[ZSCAN_TRACK_SOFT_DIRTY] = "soft-dirty",
		[ZSCAN_TRACK_UFFD_WP] = "uffd-wp",
	};

	return tracker < ZSCAN_NR_TRACKERS ? names[tracker] : "?";
}

void zs_wtrack_init(struct zs_wtrack *t, pid_t pid)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->uffd = -1;
	t->pagemap = -1;
}

void zs_wtrack_free(struct zs_wtrack *t)
{
	if (t->uffd >= 0)
		close(t->uffd);
	if (t->pagemap >= 0)
		close(t->pagemap);
	t->uffd = t->pagemap = -1;
	zs_ranges_free(&t->tracked);
	free(t->vec);
	t->vec = NULL;
	t->kind = ZSCAN_TRACK_NONE;
	t->chosen = false;
}

/* What the pass reads as a root and a bit of ours can vouch for. */
static bool trackable(const struct zs_map *m)
{
	if (m->flags & (ZS_M_SHARED | ZS_M_DEVICE | ZS_M_STACKLIKE))
		return false;
	if (!(m->flags & ZS_M_READ))
		return false;
	return (m->flags & ZS_M_WRITE) || (m->flags & ZS_M_ANON);
}

static int open_pagemap(struct zs_wtrack *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)t->pid);
	t->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (t->pagemap < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return 0;
}

/* ------------------------------------------------------- soft-dirty */

/*
 * A kernel without CONFIG_MEM_SOFT_DIRTY takes the "4" and never sets the
 * bit. A page of a new mapping is soft-dirty where the feature exists:
 * try one of our own.
 */
static bool soft_dirty_supported(void)
{
	static int known = -1;
	uint64_t ent = 0;
	volatile char *p;
	int fd;

	if (known >= 0)
		return known;
	known = 0;
	p = mmap(NULL, ZS_PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &ent, 8, (off_t)((uintptr_t)p / ZS_PAGE * 8)) ==
		    8)
			known = !!(ent & ZS_PM_SOFT_DIRTY);
		close(fd);
	}
	munmap((void *)p, ZS_PAGE);
	return known;
}

static int soft_dirty_clear(pid_t pid)
{
	char path[64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (write(fd, "4", 1) != 1)
		err = -errno;
	close(fd);
	return err;
}

/* Adds the soft-dirty or file pages of [lo, hi) to out. */
static int soft_dirty_in(struct zs_wtrack *t, uint64_t lo, uint64_t hi,
			 struct zs_ranges *out)
{
	uint64_t pg = lo / ZS_PAGE, last = (hi + ZS_PAGE - 1) / ZS_PAGE;
	uint64_t *pm = t->vec;
	size_t want;
	ssize_t got;
	int err;

	while (pg < last) {
		want = last - pg < ZS_PM_ENTRIES ? last - pg : ZS_PM_ENTRIES;
		got = pread(t->pagemap, pm, want * 8, (off_t)(pg * 8));
		if (got <= 0) {
			/* Unknown: count the rest as written. */
			return zs_ranges_add(out, pg * ZS_PAGE, hi);
		}
		want = got / 8;
		for (size_t i = 0; i < want; i++) {
			if (!(pm[i] & (ZS_PM_SOFT_DIRTY | ZS_PM_FILE)))
				continue;
			err = zs_ranges_add(out, (pg + i) * ZS_PAGE,
					    (pg + i + 1) * ZS_PAGE);
			if (err)
				return err;
		}
		pg += want;
	}
	return 0;
}

/* ---------------------------------------------------------- uffd-wp */

/*
 * Can this kernel do it at all? Asked of a userfaultfd of our own, so
 * that an old kernel costs the target no stop.
 */
static int uffd_supported(char *why)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC,
	};
	int fd, err = 0;

	fd = (int)syscall(SYS_userfaultfd,
			  O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		err = -errno;
		snprintf(why, ZS_WHY, "userfaultfd() fails: %s%s",
			 strerror(errno),
			 errno == ENOSYS ? " (CONFIG_USERFAULTFD)" : "");
		return err;
	}
	if (ioctl(fd, UFFDIO_API, &api) ||
	    !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		err = -EOPNOTSUPP;
		snprintf(why, ZS_WHY,
			 "this kernel has no asynchronous userfaultfd "
			 "write-protection (Linux 6.7)");
	}
	close(fd);
	return err;
}

/* Does the target's fd tfd still name our file fd? */
static bool same_file(pid_t pid, int fd, int tfd)
{
	long r = syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd, tfd);

	/* Without kcmp (CONFIG_KCMP), trust the short window. */
	return r == 0 || (r < 0 && (errno == ENOSYS || errno == EPERM));
}

/*
 * In the stopped thread th: userfaultfd(), pidfd_getfd() of it into
 * t->uffd, close() of it. The thread stays stopped; *why says what failed.
 */
static int uffd_take(struct zs_wtrack *t, struct zs_thread *th, uint64_t gadget,
		     const struct zscan_opts *o, char *why)
{
	uint64_t a[6] = { O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY };
	int pidfd, fd, tfd, err, cerr;
	pid_t child;
	long ret;

	err = zs_inject(th, gadget, SYS_userfaultfd, a, 0, &ret, &child);
	if (err) {
		snprintf(why, ZS_WHY, "cannot make it call userfaultfd(): %s",
			 strerror(-err));
		return err;
	}
	if (ret < 0) {
		snprintf(why, ZS_WHY, "its userfaultfd() fails: %s%s",
			 strerror((int)-ret),
			 ret == -EPERM ? " (a security policy)" : "");
		return (int)ret;
	}
	tfd = (int)ret;
	pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, tfd, 0);
	err = fd < 0 ? -errno : 0;
	if (pidfd >= 0)
		close(pidfd);
	ret = 0;
	cerr = 0;
	if (fd < 0 || same_file(t->pid, fd, tfd)) {
		a[0] = (uint64_t)tfd;
		cerr = zs_inject(th, gadget, SYS_close, a, 0, &ret, &child);
	}
	if (cerr || ret < 0)
		zs_log(o,
		       "could not close fd %d, a userfaultfd that process %d "
		       "was made to open: %s",
		       tfd, (int)t->pid, strerror(cerr ? -cerr : (int)-ret));
	if (err) {
		snprintf(why, ZS_WHY, "cannot take its userfaultfd: %s",
			 strerror(-err));
		return err;
	}
	t->uffd = fd;
	return 0;
}

/* The threads of the target, up to max: the main thread first. */
static size_t list_threads(pid_t pid, pid_t *tids, size_t max)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *dir;
	pid_t tid;

	tids[n++] = pid;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return n;
	while (n < max && (de = readdir(dir))) {
		tid = (pid_t)strtol(de->d_name, NULL, 10);
		if (tid > 0 && tid != pid)
			tids[n++] = tid;
	}
	closedir(dir);
	return n;
}

/* Makes the target's userfaultfd ours, stopping one thread at a time. */
static int uffd_make(struct zs_wtrack *t, const struct zscan_opts *o,
		     uint64_t *pause_ns, char *why)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC,
	};
	pid_t tids[ZS_WT_TRIES];
	struct zs_world w;
	uint64_t gadget;
	size_t n;
	int err;

	err = zs_find_gadget(t->pid, &gadget);
	if (err) {
		snprintf(why, ZS_WHY, "no syscall instruction found in it: %s",
			 strerror(-err));
		return err;
	}
	err = -EBUSY;
	n = list_threads(t->pid, tids, ZS_WT_TRIES);
	for (size_t i = 0; i < n && (err == -EBUSY || err == -ESRCH); i++) {
		err = zs_world_stop_one(&w, t->pid, tids[i], o);
		if (!err && !zs_thread_injectable(t->pid, &w.th[0]))
			err = -EBUSY;
		if (!err)
			err = uffd_take(t, &w.th[0], gadget, o, why);
		zs_world_resume(&w);
		*pause_ns += w.pause_ns;
		zs_world_free(&w);
	}
	if (err == -EBUSY || err == -ESRCH)
		snprintf(why, ZS_WHY,
			 "no thread of it can run an injected system call (a "
			 "seccomp filter, or inside an rseq critical section)");
	else if (err && !*why)
		snprintf(why, ZS_WHY, "cannot stop a thread of it: %s",
			 strerror(-err));
	if (err)
		return err;
	if (ioctl(t->uffd, UFFDIO_API, &api))
		err = -errno;
	else if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		err = -EOPNOTSUPP;
	if (err) {
		snprintf(why, ZS_WHY, "UFFDIO_API on its userfaultfd fails: %s",
			 strerror(-err));
		close(t->uffd);
		t->uffd = -1;
	}
	return err;
}

/* Does PAGEMAP_SCAN exist? An empty range costs nothing. */
static int pagemap_scan_supported(struct zs_wtrack *t, char *why)
{
	struct pm_scan_arg a = { .size = sizeof(a) };

	if (ioctl(t->pagemap, PAGEMAP_SCAN, &a) < 0) {
		snprintf(why, ZS_WHY, "PAGEMAP_SCAN fails: %s%s",
			 strerror(errno),
			 errno == ENOTTY ? " (Linux 6.7)" : "");
		return -errno;
	}
	return 0;
}

/* Registers [lo, hi) with our userfaultfd: 0, or the ioctl's -errno. */
static int uffd_register(struct zs_wtrack *t, uint64_t lo, uint64_t hi)
{
	struct uffdio_register reg = {
		.range = { .start = lo, .len = hi - lo },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	/* Again on a range that is ours: a no-op that says it still is. */
	return ioctl(t->uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

static int uffd_protect_range(struct zs_wtrack *t, uint64_t lo, uint64_t hi)
{
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	uint64_t len;

	for (; lo < hi; lo += len) {
		len = hi - lo < ZS_WT_CHUNK ? hi - lo : ZS_WT_CHUNK;
		wp.range.start = lo;
		wp.range.len = len;
		if (ioctl(t->uffd, UFFDIO_WRITEPROTECT, &wp))
			return -errno;
	}
	return 0;
}

/*
 * Write-protects the pages of a mapping that exist. With
 * UFFD_FEATURE_WP_ASYNC the kernel protects the holes of a range too, with
 * a marker in each page table entry: a reservation of 64 GiB would get
 * 128 MiB of page tables. A hole needs none: the page a write puts there
 * comes without the uffd-wp bit, which reads as written.
 */
static int uffd_protect(struct zs_wtrack *t, const struct zs_map *m)
{
	struct zs_ranges have = { 0 };
	int err = 0;

	if (!(m->flags & ZS_M_ANON))
		return uffd_protect_range(t, m->lo, m->hi);
	err = zs_present_add(t->pagemap, m->lo, m->hi, &have, NULL);
	for (size_t i = 0; i < have.n && !err; i++)
		err = uffd_protect_range(t, have.r[i].lo, have.r[i].hi);
	zs_ranges_free(&have);
	return err;
}

/* What a PAGEMAP_SCAN asks for. */
enum pm_query {
	PM_Q_WRITTEN, /* written, or not write-protect-capable */
	PM_Q_REARM, /* written, and write-protected again */
	PM_Q_FOREIGN, /* not write-protect-capable (whole mappings) */
};

/*
 * Adds to out the pages of [lo, hi) that PAGEMAP_SCAN reports for q. With
 * file, a private file page never copied on write counts as written: it
 * costs the kernel a look at each page, so only file mappings ask.
 */
static int pm_scan(struct zs_wtrack *t, uint64_t lo, uint64_t hi,
		   enum pm_query q, bool file, struct zs_ranges *out)
{
	uint64_t written = PAGE_IS_WRITTEN | (file ? PAGE_IS_FILE : 0);
	struct page_region *v = t->vec;
	struct pm_scan_arg a;
	long n;
	int err;

	while (lo < hi) {
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = lo;
		a.end = hi;
		a.vec = (uintptr_t)v;
		a.vec_len = ZS_WT_VEC;
		a.return_mask = PAGE_IS_WPALLOWED;
		if (q == PM_Q_REARM) {
			a.flags = PM_SCAN_WP_MATCHING;
			a.category_anyof_mask = written;
		} else if (q == PM_Q_WRITTEN) {
			a.category_inverted = PAGE_IS_WPALLOWED;
			a.category_anyof_mask = written | PAGE_IS_WPALLOWED;
		} else {
			/* Decided per mapping: the page tables are not walked. */
			a.category_inverted = PAGE_IS_WPALLOWED;
			a.category_mask = PAGE_IS_WPALLOWED;
		}
		n = ioctl(t->pagemap, PAGEMAP_SCAN, &a);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || a.walk_end <= lo || a.walk_end > hi) {
			/* Unknown (or no progress): the rest is written. */
			return zs_ranges_add(out, lo, hi);
		}
		for (long i = 0; i < n; i++) {
			err = zs_ranges_add(out, v[i].start, v[i].end);
			if (err)
				return err;
		}
		lo = a.walk_end;
	}
	return 0;
}

/* ------------------------------------------------------------ common */

static void choose(struct zs_wtrack *t, const struct zscan_opts *o,
		   uint64_t *pause_ns)
{
	char why[ZS_WHY] = "";
	size_t vec;
	int err;

	t->chosen = true;
	t->kind = ZSCAN_TRACK_NONE;
	vec = ZS_WT_VEC * sizeof(struct page_region);
	if (vec < ZS_PM_ENTRIES * 8)
		vec = ZS_PM_ENTRIES * 8;
	if (!t->vec)
		t->vec = malloc(vec);
	err = t->vec ? open_pagemap(t) : -ENOMEM;
	if (err) {
		snprintf(why, ZS_WHY, "cannot open its pagemap: %s",
			 strerror(-err));
		goto out_none;
	}
	if (soft_dirty_supported()) {
		t->kind = ZSCAN_TRACK_SOFT_DIRTY;
		return;
	}
	err = pagemap_scan_supported(t, why);
	if (!err)
		err = uffd_supported(why);
	if (!err)
		err = uffd_make(t, o, pause_ns, why);
	if (!err) {
		t->kind = ZSCAN_TRACK_UFFD_WP;
		return;
	}
out_none:
	zs_log(o,
	       "no write tracking for process %d: no soft-dirty bits "
	       "(CONFIG_MEM_SOFT_DIRTY), and %s; the concurrent scan "
	       "rescans all its memory while it is stopped",
	       (int)t->pid, why);
}

/* The mm our userfaultfd works on is gone (exec): choose again later. */
static void lost_mm(struct zs_wtrack *t)
{
	zs_wtrack_free(t);
}

int zs_wtrack_arm(struct zs_wtrack *t, const struct zs_maps *maps,
		  const struct zscan_opts *o, uint64_t *pause_ns)
{
	uint64_t left = 0;
	size_t nleft = 0;
	int err = 0;

	if (!t->chosen)
		choose(t, o, pause_ns);
	t->tracked.n = 0;
	if (t->kind == ZSCAN_TRACK_SOFT_DIRTY) {
		err = soft_dirty_clear(t->pid);
		if (err) {
			zs_log(o,
			       "cannot clear the soft-dirty bits of process "
			       "%d: %s",
			       (int)t->pid, strerror(-err));
			return err;
		}
	}
	if (t->kind == ZSCAN_TRACK_NONE)
		return 0;
	for (size_t i = 0; i < maps->n && !err; i++) {
		const struct zs_map *m = &maps->m[i];
		int e = 0;

		if (!trackable(m))
			continue;
		if (t->kind == ZSCAN_TRACK_UFFD_WP) {
			e = uffd_register(t, m->lo, m->hi);
			if (!e)
				e = uffd_protect(t, m);
		}
		if (e == -ESRCH) {
			lost_mm(t);
			return 0;
		}
		if (e) {
			left += m->hi - m->lo;
			nleft++;
			continue;
		}
		err = zs_ranges_add(&t->tracked, m->lo, m->hi);
	}
	if (nleft && !t->warned) {
		t->warned = true;
		zs_log(o,
		       "%zu mappings of process %d (%llu KiB) cannot be "
		       "write-protected (its own userfaultfd?): the stop "
		       "rescans them whole",
		       nleft, (int)t->pid, (unsigned long long)(left >> 10));
	}
	return err;
}

bool zs_wtrack_can_rearm(const struct zs_wtrack *t)
{
	return t->kind == ZSCAN_TRACK_UFFD_WP;
}

/*
 * The tracked ranges that are still trackable mappings of maps, into out:
 * the file-backed ones, or the anonymous ones.
 */
static int vouched(struct zs_wtrack *t, const struct zs_maps *maps, bool file,
		   struct zs_ranges *out)
{
	struct zs_ranges now = { 0 };
	int err = 0;

	for (size_t i = 0; i < maps->n && !err; i++) {
		const struct zs_map *m = &maps->m[i];

		if (trackable(m) && !(m->flags & ZS_M_ANON) == file)
			err = zs_ranges_add(&now, m->lo, m->hi);
	}
	zs_ranges_normalize(&now);
	zs_ranges_normalize(&t->tracked);
	if (!err)
		err = zs_ranges_and(&t->tracked, &now, out);
	zs_ranges_free(&now);
	return err;
}

/*
 * Keeps in v the ranges whose every mapping is registered with our
 * userfaultfd. First those not write-protect-capable at all go (a
 * replacement the target made): registering them now would make them
 * look tracked. Then registering the rest again succeeds only where all
 * is ours already, EBUSY where the target's own userfaultfd holds a part.
 */
static int keep_ours(struct zs_wtrack *t, struct zs_ranges *v)
{
	struct zs_ranges foreign = { 0 }, left = { 0 };
	size_t o = 0;
	int err = 0;

	for (size_t i = 0; i < v->n && !err; i++)
		err = pm_scan(t, v->r[i].lo, v->r[i].hi, PM_Q_FOREIGN, false,
			      &foreign);
	zs_ranges_normalize(&foreign);
	if (!err)
		err = zs_ranges_sub(v, &foreign, &left);
	zs_ranges_free(&foreign);
	if (err) {
		zs_ranges_free(&left);
		return err;
	}
	for (size_t i = 0; i < left.n; i++) {
		int e = uffd_register(t, left.r[i].lo, left.r[i].hi);

		if (e == -ESRCH) {
			o = 0;
			lost_mm(t);
			break;
		}
		if (!e)
			left.r[o++] = left.r[i];
	}
	left.n = o;
	zs_ranges_free(v);
	*v = left;
	return 0;
}

/* One kind of tracked mapping: anonymous, or file-backed. */
static int written_kind(struct zs_wtrack *t, const struct zs_maps *maps,
			const struct zs_ranges *within, bool rearm, bool file,
			struct zs_ranges *out, struct zs_ranges *vouch)
{
	bool uffd = t->kind == ZSCAN_TRACK_UFFD_WP;
	struct zs_ranges v = { 0 }, in = { 0 };
	int err;

	err = vouched(t, maps, file, &v);
	if (!err)
		err = zs_ranges_and(within, &v, &in);
	/* Before a rearm: nothing written on ours may go unreported. */
	if (!err && rearm)
		err = keep_ours(t, &in);
	for (size_t i = 0; !err && i < in.n; i++) {
		if (!uffd)
			err = soft_dirty_in(t, in.r[i].lo, in.r[i].hi, out);
		else
			err = pm_scan(t, in.r[i].lo, in.r[i].hi,
				      rearm ? PM_Q_REARM : PM_Q_WRITTEN, file,
				      out);
	}
	/*
	 * After the query at the stop: a part that the target's own
	 * userfaultfd holds now (replaced, then registered by it) is not
	 * ours to vouch for. The query already reported what no userfaultfd
	 * holds, so registering that now hides nothing.
	 */
	if (!err && !rearm && uffd)
		err = keep_ours(t, &in);
	for (size_t i = 0; !err && i < in.n; i++)
		err = zs_ranges_add(vouch, in.r[i].lo, in.r[i].hi);
	zs_ranges_free(&in);
	zs_ranges_free(&v);
	return err;
}

int zs_wtrack_written(struct zs_wtrack *t, const struct zs_maps *maps,
		      const struct zs_ranges *within, bool rearm,
		      struct zs_ranges *out)
{
	struct zs_ranges vouch = { 0 }, rest = { 0 };
	int err;

	if (rearm && !zs_wtrack_can_rearm(t))
		return -EINVAL;
	err = written_kind(t, maps, within, rearm, false, out, &vouch);
	if (!err)
		err = written_kind(t, maps, within, rearm, true, out, &vouch);
	/* Lost meanwhile: the first kind's answer cannot be trusted. */
	if (!err && !rearm && !t->chosen)
		vouch.n = 0;
	zs_ranges_normalize(&vouch);
	if (!err && !rearm)
		err = zs_ranges_sub(within, &vouch, &rest);
	for (size_t i = 0; !err && i < rest.n; i++)
		err = zs_ranges_add(out, rest.r[i].lo, rest.r[i].hi);
	zs_ranges_free(&rest);
	zs_ranges_free(&vouch);
	return err;
}
