/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * maps.c - the target's mappings, and which of them are roots.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zscan_int.h"

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
	     bool skip_stacks, unsigned int flags, pid_t pid,
	     struct zs_ranges *out, struct zscan_stats *st)
{
	uint64_t lo, sp, absent = 0;
	const struct zs_map *m;
	int err = 0, pm = -1;

	if (pid > 0)
		pm = zs_present_open(pid); /* < 0: read every page */

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
		if ((m->flags & ZS_M_ANON) && !(m->flags & ZS_M_SHARED))
			err = zs_present_add(pm, lo, m->hi, out, &absent);
		else
			err = zs_ranges_add(out, lo, m->hi);
		if (err)
			break;
	}
	if (pm >= 0)
		close(pm);
	if (st)
		st->absent_bytes += absent;
	return err;
}
