/* SPDX-License-Identifier: BSD-3-Clause */
/* procfs.c - /proc/PID readers (see procfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"

bool proc_alive(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	return !access(path, F_OK) && (kill(pid, 0) == 0 || errno == EPERM);
}

int proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

pid_t proc_tgid(pid_t pid)
{
	char path[64], line[128];
	pid_t tgid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

int proc_rss_fd(int fd, __u64 *bytes)
{
	unsigned long long size, resident;
	char buf[128];
	ssize_t n;

	/* At offset 0 the kernel generates the file afresh. */
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EIO;
	*bytes = resident * (__u64)sysconf(_SC_PAGESIZE);
	return 0;
}

int proc_statm_open(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int parse_map_line(const char *line, struct zt_map *m)
{
	unsigned long long start, end, off, inode;
	int pos = 0;

	if (sscanf(line, "%llx-%llx %4s %llx %*x:%*x %llu %n", &start, &end,
		   m->perms, &off, &inode, &pos) < 5)
		return -EIO;
	m->start = start;
	m->end = end;
	m->offset = off;
	m->inode = inode;
	snprintf(m->path, sizeof(m->path), "%s", pos ? line + pos : "");
	m->path[strcspn(m->path, "\n")] = '\0';
	return 0;
}

int proc_maps_foreach(pid_t pid, zt_map_fn fn, void *ctx)
{
	char path[64], line[PATH_MAX + 128];
	struct zt_map m;
	int err = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (parse_map_line(line, &m))
			continue;
		err = fn(&m, ctx);
		if (err)
			break;
	}
	fclose(f);
	return err;
}
