/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_proc.c - the /proc and sysconf readers against what /proc itself
 * says: RSS, smaps fields of a child frozen on a pipe and of the calling
 * process, the machine's memory size, fields of /proc/self/stat, and the
 * fragmentation ratio.
 *
 * A running process changes its own figures, so a figure of the caller is
 * compared only once two reads of /proc around the library's read agree.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "zm_test.h"

#define STABLE_TRIES 50
#define CHILD_DIRTY (1 << 20)

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned long long proc_field(const char *path, const char *field)
{
	unsigned long long v = 0;

	assert_int_equal(zm_test_proc_field(path, field, &v), 0);
	return v;
}

static void test_proc_rss_matches_status(void **state)
{
	int tries;

	for (tries = 0; tries < STABLE_TRIES; tries++) {
		size_t a = zmalloc_get_rss(), b;
		unsigned long long vmrss;

		vmrss = proc_field("/proc/self/status", "VmRSS:");
		b = zmalloc_get_rss();
		if (a != b)
			continue;
		assert_true(a > 0);
		assert_int_equal(a % page_size(), 0);
		assert_int_equal(a, vmrss);
		return;
	}
	fail_msg("RSS never held still over %d tries", STABLE_TRIES);
}

/*
 * Compares the library's figure for field of /proc/self/smaps (read as pid
 * -1 or as getpid()) with smaps_rollup's, once two rollup reads around it
 * agree. Only fields counted in whole pages sum exactly: smaps rounds each
 * mapping's Pss down to a kB, smaps_rollup rounds the total once.
 */
static void check_self_smap_field(const char *field, long pid)
{
	int tries;

	for (tries = 0; tries < STABLE_TRIES; tries++) {
		unsigned long long a, b;
		size_t got;

		a = proc_field("/proc/self/smaps_rollup", field);
		got = zmalloc_get_smap_bytes_by_field((char *)field, pid);
		b = proc_field("/proc/self/smaps_rollup", field);
		if (a != b)
			continue;
		assert_int_equal(got, a);
		return;
	}
	fail_msg("%s never held still over %d tries", field, STABLE_TRIES);
}

static void test_proc_smap_self(void **state)
{
	check_self_smap_field("Rss:", -1);
	check_self_smap_field("Rss:", (long)getpid());
	check_self_smap_field("Private_Dirty:", -1);
	check_self_smap_field("Swap:", -1);
}

/*
 * A child that dirties CHILD_DIRTY bytes, says so, and waits on a pipe;
 * then it is stopped with SIGSTOP, since a child under valgrind still runs
 * valgrind's own code while it waits.
 */
static pid_t start_frozen_child(int *go_fd)
{
	int ready[2], go[2], status;
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static void *dirty; /* reachable: valgrind reports no leak */

		close(ready[0]);
		close(go[1]);
		dirty = mmap(NULL, CHILD_DIRTY, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dirty == MAP_FAILED)
			_exit(2);
		memset(dirty, 0x77, CHILD_DIRTY);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	while (waitpid(pid, &status, WUNTRACED) < 0)
		assert_int_equal(errno, EINTR);
	assert_true(WIFSTOPPED(status));
	*go_fd = go[1];
	return pid;
}

static void stop_frozen_child(pid_t pid, int go_fd)
{
	int status;

	assert_int_equal(kill(pid, SIGCONT), 0);
	close(go_fd);
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * The library's sum over smaps equals smaps_rollup's, to the byte, read
 * between two readings of smaps_rollup that agree: the kernel may still
 * settle a page of a freshly stopped child (seen under valgrind).
 */
static size_t check_child_smap_field(pid_t pid, const char *field,
				     size_t (*read)(const char *, long))
{
	unsigned long long before, after;
	char path[64];
	size_t got = 0;
	int tries;

	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", (long)pid);
	for (tries = 0; tries < 10; tries++) {
		before = proc_field(path, field);
		got = read(field, (long)pid);
		after = proc_field(path, field);
		if (before == after)
			break;
		usleep(10000);
	}
	assert_int_equal(before, after);
	assert_int_equal(got, after);
	return got;
}

static size_t smap_field(const char *field, long pid)
{
	return zmalloc_get_smap_bytes_by_field((char *)field, pid);
}

static size_t private_dirty(const char *field, long pid)
{
	(void)field;
	return zmalloc_get_private_dirty(pid);
}

static void test_proc_smap_frozen_child(void **state)
{
	int go_fd;
	pid_t pid = start_frozen_child(&go_fd);
	size_t rss, dirty;

	rss = check_child_smap_field(pid, "Rss:", smap_field);
	dirty = check_child_smap_field(pid, "Private_Dirty:", private_dirty);
	assert_true(dirty >= CHILD_DIRTY);
	assert_true(rss >= dirty);
	stop_frozen_child(pid, go_fd);
}

static void test_proc_smap_missing_is_zero(void **state)
{
	/* Above any pid_max the kernel allows (4194304). */
	assert_int_equal(zmalloc_get_smap_bytes_by_field("Rss:", 0x7fffffff),
			 0);
	assert_int_equal(zmalloc_get_private_dirty(0x7fffffff), 0);
	assert_int_equal(zmalloc_get_smap_bytes_by_field("NoSuchField:", -1),
			 0);
}

/* sysconf's pages times the page size, and exactly /proc/meminfo's. */
static void test_proc_memory_size_exact(void **state)
{
	size_t size = zmalloc_get_memory_size();

	assert_int_equal(size, (size_t)sysconf(_SC_PHYS_PAGES) * page_size());
	assert_int_equal(size, proc_field("/proc/meminfo", "MemTotal:"));
}

/* The first figure of /proc/self/statm: the address space, in pages. */
static unsigned long long statm_pages(void)
{
	char buf[256];
	ssize_t len;
	int fd;

	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(len > 0);
	buf[len] = '\0';
	return strtoull(buf, NULL, 10);
}

static void test_proc_stat_fields(void **state)
{
	long long v = -1;
	unsigned long long threads;
	int tries;

	assert_int_equal(get_proc_stat_ll(4, &v), 1);
	assert_int_equal(v, getppid());
	assert_int_equal(get_proc_stat_ll(5, &v), 1);
	assert_int_equal(v, getpgrp());
	assert_int_equal(get_proc_stat_ll(6, &v), 1);
	assert_int_equal(v, getsid(0));
	threads = proc_field("/proc/self/status", "Threads:");
	assert_int_equal(get_proc_stat_ll(20, &v), 1);
	assert_int_equal(v, threads);
	/* 52, exit_code, is the last field: it ends in a newline. */
	v = -1;
	assert_int_equal(get_proc_stat_ll(52, &v), 1);
	assert_int_equal(v, 0);
	assert_int_equal(get_proc_stat_ll(19, &v), 1);
	assert_int_equal(v, getpriority(PRIO_PROCESS, 0));
	/*
	 * Field 23, vsize in bytes, is statm's first figure in pages. (Not
	 * field 24, rss: on this kernel it is read from the per-CPU counters
	 * another way than statm's and may differ from it by a few pages.)
	 */
	for (tries = 0; tries < STABLE_TRIES; tries++) {
		unsigned long long a = statm_pages(), b;

		assert_int_equal(get_proc_stat_ll(23, &v), 1);
		b = statm_pages();
		if (a != b)
			continue;
		assert_int_equal((unsigned long long)v, a * page_size());
		break;
	}
	assert_true(tries < STABLE_TRIES);
}

/* 1 (pid) and 2 (comm) are not supported; 3 (state) is not a number. */
static void test_proc_stat_unsupported_fields(void **state)
{
	static const int bad[] = { -1, 0, 1, 2, 3, 53, 1000 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long v = 0;

		assert_int_equal(get_proc_stat_ll(bad[i], &v), 0);
	}
}

/* A command name with spaces and parentheses does not shift the fields. */
static void test_proc_stat_comm_with_parens(void **state)
{
	char old[17] = { 0 };
	long long ppid = -1, pgrp = -1;

	assert_int_equal(prctl(PR_GET_NAME, old, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_NAME, ") 1 2 (3) ", 0, 0, 0), 0);
	assert_int_equal(get_proc_stat_ll(4, &ppid), 1);
	assert_int_equal(get_proc_stat_ll(5, &pgrp), 1);
	assert_int_equal(prctl(PR_SET_NAME, old, 0, 0, 0), 0);
	assert_int_equal(ppid, getppid());
	assert_int_equal(pgrp, getpgrp());
}

static void test_proc_fragmentation_ratio(void **state)
{
	void *p = zmalloc(1 << 20);
	size_t used = zmalloc_used_memory();
	float r;

	/* Below 2^24 bytes both figures are exact in a float. */
	assert_true(used >= zmalloc_size(p) && used * 3 < (1 << 24));
	r = zmalloc_get_fragmentation_ratio(used * 3);
	assert_true(r == 3.0f);
	r = zmalloc_get_fragmentation_ratio(used);
	assert_true(r == 1.0f);
	r = zmalloc_get_fragmentation_ratio(0);
	assert_true(r == 0.0f);
	r = zmalloc_get_fragmentation_ratio(123456789);
	assert_true(r == (float)123456789 / (float)used);
	zfree(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_rss_matches_status),
		cmocka_unit_test(test_proc_smap_self),
		cmocka_unit_test(test_proc_smap_frozen_child),
		cmocka_unit_test(test_proc_smap_missing_is_zero),
		cmocka_unit_test(test_proc_memory_size_exact),
		cmocka_unit_test(test_proc_stat_fields),
		cmocka_unit_test(test_proc_stat_unsupported_fields),
		cmocka_unit_test(test_proc_stat_comm_with_parens),
		cmocka_unit_test(test_proc_fragmentation_ratio),
	};

	return cmocka_run_group_tests_name("proc", tests, NULL, NULL);
}
