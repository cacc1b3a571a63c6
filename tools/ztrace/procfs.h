/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * procfs.h - what ztrace reads from /proc/PID: existence, name, RSS and the
 * memory mappings. Functions return 0 or -errno.
 */
#ifndef ZT_PROCFS_H
#define ZT_PROCFS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct zt_map {
	__u64 start;
	__u64 end;
	__u64 offset;
	__u64 inode;
	char perms[5];
	char path[PATH_MAX]; /* empty for anonymous mappings */
};

/* The callback returns 0 to go on, 1 to stop (returned), or -errno. */
typedef int (*zt_map_fn)(const struct zt_map *m, void *ctx);

bool proc_alive(pid_t pid);
int proc_comm(pid_t pid, char *buf, size_t len);
/* The process (thread group) that thread PID belongs to. */
pid_t proc_tgid(pid_t pid);
/* /proc/PID/statm opened, to be read by proc_rss_fd(); or -errno. */
int proc_statm_open(pid_t pid);
/* Resident bytes from an open /proc/PID/statm, read again from its start. */
int proc_rss_fd(int fd, __u64 *bytes);
int proc_maps_foreach(pid_t pid, zt_map_fn fn, void *ctx);

#endif /* ZT_PROCFS_H */
