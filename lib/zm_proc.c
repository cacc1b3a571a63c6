/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * zm_proc.c - what /proc and sysconf say of the process and the machine.
 *
 * These readers return 0 (or, for get_proc_stat_ll, a 0 result code) when
 * the figure cannot be read; they never print and never abort.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zmalloc.h"

#define ZM_API __attribute__((visibility("default")))

/* Reads a small /proc file whole into buf; returns its length or -1. */
static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
	ssize_t len, got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((size_t)got < size - 1) {
		len = read(fd, buf + got, size - 1 - got);
		if (len <= 0)
			break;
		got += len;
	}
	close(fd);
	buf[got] = '\0';
	return got > 0 ? got : -1;
}

ZM_API size_t zmalloc_get_rss(void)
{
	unsigned long long size, resident;
	char buf[256];

	/* statm: total and resident pages, the same count as VmRSS. */
	if (read_small_file("/proc/self/statm", buf, sizeof(buf)) < 0)
		return 0;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * Field i of /proc/self/stat, counted from 1 as proc(5) does. The second
 * field, the command name, may hold spaces and parentheses, so counting
 * starts after its last ')'. Returns 1 and sets *res, or returns 0.
 */
ZM_API int get_proc_stat_ll(int i, long long *res)
{
	char buf[4096], *p, *end;
	int field;

	if (i < 3 || read_small_file("/proc/self/stat", buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (field = 2; field < i; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	*res = strtoll(p, &end, 10);
	if (end == p || (*end != ' ' && *end != '\n' && *end != '\0'))
		return 0;
	return 1;
}

/*
 * Sum of one field ("Private_Dirty:", "Rss:", ...) over every mapping in
 * /proc/PID/smaps, in bytes. pid -1 is the calling process.
 */
ZM_API size_t zmalloc_get_smap_bytes_by_field(char *field, long pid)
{
	size_t flen = strlen(field), bytes = 0;
	char path[64], line[1024];
	FILE *fp;

	if (pid == -1)
		snprintf(path, sizeof(path), "/proc/self/smaps");
	else
		snprintf(path, sizeof(path), "/proc/%ld/smaps", pid);
	fp = fopen(path, "re");
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, field, flen) == 0)
			bytes += strtoull(line + flen, NULL, 10) * 1024;
	}
	fclose(fp);
	return bytes;
}

ZM_API size_t zmalloc_get_private_dirty(long pid)
{
	return zmalloc_get_smap_bytes_by_field("Private_Dirty:", pid);
}

ZM_API size_t zmalloc_get_memory_size(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);

	if (pages < 0 || page_size < 0)
		return 0;
	return (size_t)pages * (size_t)page_size;
}
