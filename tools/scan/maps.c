/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * maps.c - which memory of the target is a root, and which pages it wrote.
 *
 * A root is any mapping the process can store a pointer in: every
 * writable one (heap, data, bss, anonymous, shared memory, stacks) and the
 * private anonymous ones it made read-only after writing them. Code and
 * read-only file data cannot hold a pointer to a block allocated at run
 * time. Device mappings are not read (a read may have side effects or
 * hang; memcheck skips them too) and are counted apart. A writable mapping
 * that is not readable is a root that cannot be scanned: it is counted as
 * unreadable, which withholds every verdict of lost.
 *
 * Below a thread's stack pointer (less the red zone) its stack is dead:
 * memcheck does not scan it either, and stale copies there would hide
 * leaks. Only mappings that look like a stack get this: [stack], or an
 * anonymous mapping right above a PROT_NONE guard (glibc's thread stacks);
 * a thread running on a stack inside another mapping keeps that mapping
 * whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zscan_int.h"

#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_ENTRIES 8192

static int add_map(struct zs_maps *maps, uint64_t lo, uint64_t hi,
		   unsigned int flags)
{
	struct zs_map *m;
	size_t cap;

	if (maps->n == maps->cap) {
		cap = maps->cap ? maps->cap * 2 : 256;
		m = realloc(maps->m, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		maps->m = m;
		maps->cap = cap;
	}
	maps->m[maps->n].lo = lo;
	maps->m[maps->n].hi = hi;
	maps->m[maps->n].flags = flags;
	maps->n++;
	return 0;
}

int zs_maps_add(struct zs_maps *maps, const struct zs_map *m)
{
	return add_map(maps, m->lo, m->hi, m->flags);
}

static unsigned int parse_flags(const char *perms, unsigned long inode,
				const char *path)
{
	unsigned int f = 0;

	if (perms[0] == 'r')
		f |= ZS_M_READ;
	if (perms[1] == 'w')
		f |= ZS_M_WRITE;
	if (perms[3] == 's')
		f |= ZS_M_SHARED;
	/* Not [vdso], [vvar] and the like: the kernel's, never pointers. */
	if (inode == 0 &&
	    (!*path || !strcmp(path, "[heap]") || !strcmp(path, "[stack]") ||
	     !strncmp(path, "[anon:", 6)))
		f |= ZS_M_ANON;
	if (!strcmp(path, "[stack]"))
		f |= ZS_M_STACKLIKE;
	if (!strncmp(path, "/dev/", 5) && strncmp(path, "/dev/zero", 9) &&
	    strncmp(path, "/dev/shm/", 9))
		f |= ZS_M_DEVICE;
	return f;
}

/* The VmFlags line of smaps: "wf" is MADV_WIPEONFORK. */
static unsigned int vm_flags(const char *line)
{
	const char *p = line + strlen("VmFlags:");

	for (; *p; p++)
		if (p[0] == 'w' && p[1] == 'f' &&
		    (p[2] == ' ' || p[2] == '\n' || !p[2]) && p[-1] == ' ')
			return ZS_M_WIPE;
	return 0;
}

static int read_maps(pid_t pid, const char *file, struct zs_maps *maps)
{
	char path[64], line[4096], perms[8], *name;
	unsigned long long lo, hi, off;
	unsigned long inode;
	unsigned int dmaj, dmin, f;
	uint64_t prev_hi = 0;
	bool prev_guard = false;
	int n, err = 0;
	FILE *fp;

	memset(maps, 0, sizeof(*maps));
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fp = fopen(path, "re");
	if (!fp)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (!strncmp(line, "VmFlags:", 8) && maps->n) {
			maps->m[maps->n - 1].flags |= vm_flags(line);
			continue;
		}
		n = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %lu %n", &lo, &hi,
			   perms, &off, &dmaj, &dmin, &inode, &n) < 7)
			continue;
		name = line + n;
		name[strcspn(name, "\n")] = '\0';
		f = parse_flags(perms, inode, name);
		if ((f & ZS_M_ANON) && (f & ZS_M_WRITE) && prev_guard &&
		    prev_hi == lo)
			f |= ZS_M_STACKLIKE;
		prev_guard = !strncmp(perms, "---p", 4);
		prev_hi = hi;
		err = add_map(maps, lo, hi, f);
		if (err)
			break;
	}
	fclose(fp);
	if (!err && !maps->n)
		err = -ESRCH; /* a zombie has no maps */
	if (err)
		zs_maps_free(maps);
	return err;
}

int zs_maps_read(pid_t pid, struct zs_maps *maps)
{
	return read_maps(pid, "maps", maps);
}

int zs_maps_read_smaps(pid_t pid, struct zs_maps *maps)
{
	return read_maps(pid, "smaps", maps);
}

void zs_maps_free(struct zs_maps *maps)
{
	free(maps->m);
	maps->m = NULL;
	maps->n = maps->cap = 0;
}

/* The lowest stack pointer of any thread inside [lo, hi), or hi. */
static uint64_t lowest_sp(const struct zs_world *w, uint64_t lo, uint64_t hi)
{
	uint64_t low = hi;

	for (size_t i = 0; i < w->n; i++) {
		uint64_t sp = w->th[i].sp;

		if (!w->th[i].regs_len || sp < lo || sp >= hi)
			continue;
		if (sp < low)
			low = sp;
	}
	return low;
}

int zs_roots(const struct zs_maps *maps, const struct zs_world *w,
	     bool skip_stacks, unsigned int flags, struct zs_ranges *out,
	     struct zscan_stats *st)
{
	const struct zs_map *m;
	uint64_t lo, sp;
	int err;

	for (size_t i = 0; i < maps->n; i++) {
		m = &maps->m[i];
		lo = m->lo;
		if (!(m->flags & ZS_M_WRITE) &&
		    (!(m->flags & ZS_M_ANON) || (m->flags & ZS_M_SHARED)))
			continue; /* code, read-only data */
		if (m->flags & ZS_M_DEVICE) {
			if (st)
				st->device_bytes += m->hi - m->lo;
			continue;
		}
		if (!(m->flags & ZS_M_READ)) {
			if ((m->flags & ZS_M_WRITE) && st)
				st->unreadable_bytes += m->hi - m->lo;
			continue; /* ---p guards hold nothing */
		}
		if ((m->flags & ZS_M_STACKLIKE) &&
		    !(flags & ZSCAN_F_FULL_STACKS)) {
			if (!w) {
				if (skip_stacks)
					continue;
			} else {
				sp = lowest_sp(w, m->lo, m->hi);
				if (sp < m->hi && sp - m->lo > ZS_RED_ZONE)
					lo = (sp - ZS_RED_ZONE) & ~7ULL;
			}
		}
		err = zs_ranges_add(out, lo, m->hi);
		if (err)
			return err;
	}
	return 0;
}

/*
 * A kernel without CONFIG_MEM_SOFT_DIRTY takes the "4" and never sets the
 * bit. A page of a new mapping is soft-dirty where the feature exists:
 * try one of our own.
 */
bool zs_soft_dirty_supported(void)
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
			known = !!(ent & PM_SOFT_DIRTY);
		close(fd);
	}
	munmap((void *)p, ZS_PAGE);
	return known;
}

int zs_soft_dirty_clear(pid_t pid)
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

/* Adds the soft-dirty pages of [lo, hi) to out, reading pagemap. */
static int dirty_in(int fd, uint64_t lo, uint64_t hi, uint64_t *pm,
		    struct zs_ranges *out)
{
	uint64_t pg = lo / ZS_PAGE, last = (hi + ZS_PAGE - 1) / ZS_PAGE;
	size_t want;
	ssize_t got;
	int err;

	while (pg < last) {
		want = last - pg < PM_ENTRIES ? last - pg : PM_ENTRIES;
		got = pread(fd, pm, want * 8, (off_t)(pg * 8));
		if (got <= 0) {
			/* Unknown: count the rest as written. */
			return zs_ranges_add(out, pg * ZS_PAGE, hi);
		}
		want = got / 8;
		for (size_t i = 0; i < want; i++) {
			if (!(pm[i] & PM_SOFT_DIRTY))
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

int zs_soft_dirty(pid_t pid, const struct zs_ranges *within,
		  struct zs_ranges *out)
{
	char path[64];
	uint64_t *pm;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	pm = malloc(PM_ENTRIES * 8);
	if (!pm) {
		err = -ENOMEM;
		goto out_close;
	}
	for (size_t i = 0; i < within->n && !err; i++)
		err = dirty_in(fd, within->r[i].lo, within->r[i].hi, pm, out);
	free(pm);
out_close:
	close(fd);
	return err;
}
