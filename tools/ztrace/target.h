/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * target.h - the traced process: found by PID (target.c) or started by
 * ztrace (spawn.c), and the file holding its zmalloc probes (libzmalloc.so,
 * or the executable itself when statically linked). Functions return 0 or
 * -errno and print what failed.
 */
#ifndef ZT_TARGET_H
#define ZT_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

struct zt_target {
	pid_t pid;
	char comm[32];
	char probe_path[PATH_MAX]; /* the file with the probes, to open */
	char map_path[PATH_MAX]; /* the same file, as the target maps it */
	bool probes_in_exe; /* statically linked */
	int pidfd; /* readable once the process has exited */
	int statm_fd; /* /proc/PID/statm, opened by the first target_rss() */

	/* A command ztrace started (spawn.c). */
	bool spawned;
	bool released; /* the child has been let go to execve() */
	bool traced; /* ptrace-seized for its exit event */
	bool exited; /* reaped */
	bool status_known; /* wstatus is valid: reaped, or stopped at exit */
	bool at_exit; /* stopped at its exit event, its memory intact */
	int held_status; /* a stop spawn_hold() saw first, for spawn_wait() */
	int go_fd; /* write end: a byte lets the child execve() */
	int wstatus;
	char exe[PATH_MAX];
};

void target_init(struct zt_target *t);
void target_close(struct zt_target *t);

/*
 * The target's resident bytes. Its statm stays open: a refresh reads it
 * again instead of opening it again, most of what reading it cost.
 */
int target_rss(struct zt_target *t, __u64 *bytes);

/* -p PID: check the process and find its probe file. */
int target_open_pid(struct zt_target *t, pid_t pid);
/* Whether the probe file is mapped yet, and its load base and range. */
int target_probe_mapping(const struct zt_target *t, __u64 *base, __u64 *lo,
			 __u64 *hi);

/* -- CMD: see spawn.c. */
int spawn_prepare(struct zt_target *t, char **argv);
int spawn_start(struct zt_target *t, char **argv);
int spawn_release(struct zt_target *t);
void spawn_abort(struct zt_target *t);

/*
 * Reap or resume the child after SIGCHLD. on_exit() runs while the child is
 * stopped at its exit, its memory still readable. Returns 1 once the child
 * has been reaped, else 0, or -errno.
 */
int spawn_wait(struct zt_target *t, void (*on_exit)(void *ctx), void *ctx);
int spawn_exit_code(const struct zt_target *t);
/* Stop the seized command for a reader (see spawn.c), and let it go. */
int spawn_hold(struct zt_target *t);
void spawn_unhold(struct zt_target *t);

#endif /* ZT_TARGET_H */
