/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_oom.c - the OOM handler: the default one prints zmalloc's message
 * and aborts, a custom one is called once with the size that failed (the
 * request, or SIZE_MAX for a calloc_num overflow), and the try family never
 * calls it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "zm_test.h"

/* Past the address space: the backend itself fails it (test_realloc.c). */
#define ZM_HUGE ((size_t)1 << 47)
#define ZM_HALF (SIZE_MAX / 2)

#if defined(__SANITIZE_ADDRESS__)
/* ZM_HUGE reaches the backend: ASan must return NULL, not abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

static unsigned int oom_calls;
static size_t oom_size;

static void count_oom(size_t size)
{
	oom_calls++;
	oom_size = size;
}

static int setup_handler(void **state)
{
	oom_calls = 0;
	oom_size = 0;
	zmalloc_set_oom_handler(count_oom);
	return 0;
}

static int teardown_handler(void **state)
{
	zmalloc_set_oom_handler(NULL);
	return 0;
}

/* The last failure called the handler exactly once, with size. */
static void check_oom(size_t size)
{
	assert_int_equal(oom_calls, 1);
	assert_int_equal(oom_size, size);
	oom_calls = 0;
	oom_size = 0;
}

enum oom_way {
	OOM_ZMALLOC,
	OOM_ZCALLOC_NUM_OVERFLOW,
	OOM_RESTORED_DEFAULT,
};

static void oom_child(enum oom_way way)
{
	switch (way) {
	case OOM_ZMALLOC:
		zmalloc(zm_test_opaque(ZM_HALF));
		break;
	case OOM_ZCALLOC_NUM_OVERFLOW:
		zcalloc_num(zm_test_opaque(3), zm_test_opaque(ZM_HALF));
		break;
	case OOM_RESTORED_DEFAULT:
		zmalloc_set_oom_handler(count_oom);
		zmalloc_set_oom_handler(NULL);
		zrealloc(NULL, zm_test_opaque(ZM_HUGE));
		break;
	}
}

/* A line of valgrind's or ASan's own: "==PID==" and their message. */
static bool is_tool_line(const char *line)
{
	const char *p = line + 2;

	if (line[0] != '=' || line[1] != '=' || *p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return p[0] == '=' && p[1] == '=';
}

/*
 * Drops the tools' lines from out, in place: under valgrind the child's
 * stderr also carries its report of the abort, and under ASan its warning
 * that the backend's mapping of ZM_HUGE failed.
 */
static void drop_tool_lines(char *out)
{
	char *line = out, *w = out;

	while (*line) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);

		if (!is_tool_line(line)) {
			memmove(w, line, len);
			w += len;
		}
		line += len;
	}
	*w = '\0';
}

static bool tools_share_stderr(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#else
	return zm_test_under_valgrind();
#endif
}

/*
 * Runs oom_child(way) in a child with its stderr on a pipe; returns what
 * the child wrote there in out and its wait status.
 */
static int run_oom_child(enum oom_way way, char *out, size_t size)
{
	struct rlimit no_core = { 0, 0 };
	size_t got = 0;
	int pfd[2], status;
	ssize_t len;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setrlimit(RLIMIT_CORE, &no_core);
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		oom_child(way);
		_exit(0); /* the handler returned: the test fails */
	}
	close(pfd[1]);
	while (got < size - 1) {
		len = read(pfd[0], out + got, size - 1 - got);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			break;
		got += (size_t)len;
	}
	out[got] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	if (tools_share_stderr())
		drop_tool_lines(out);
	return status;
}

static void check_default_oom(enum oom_way way, size_t size)
{
	char out[65536], want[128];
	int status;

	snprintf(want, sizeof(want),
		 "zmalloc: Out of memory trying to allocate %zu bytes\n", size);
	status = run_oom_child(way, out, sizeof(out));
	assert_string_equal(out, want);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* Runs before any custom handler is set: the library's own default. */
static void test_oom_default_handler_aborts(void **state)
{
	check_default_oom(OOM_ZMALLOC, ZM_HALF);
}

static void test_oom_default_handler_calloc_num_overflow(void **state)
{
	check_default_oom(OOM_ZCALLOC_NUM_OVERFLOW, SIZE_MAX);
}

/* Setting a NULL handler brings the default back; a backend failure. */
static void test_oom_null_handler_restores_default(void **state)
{
	check_default_oom(OOM_RESTORED_DEFAULT, ZM_HUGE);
}

/* Refused by the library (>= SIZE_MAX / 2) and by the backend. */
static void test_oom_handler_zmalloc_size(void **state)
{
	size_t start = zmalloc_used_memory(), u = 9;

	assert_null(zmalloc(zm_test_opaque(ZM_HALF)));
	check_oom(ZM_HALF);
	assert_null(zmalloc(zm_test_opaque(SIZE_MAX)));
	check_oom(SIZE_MAX);
	assert_null(zmalloc(zm_test_opaque(ZM_HUGE)));
	check_oom(ZM_HUGE);
	assert_null(zmalloc_usable(zm_test_opaque(ZM_HALF + 1), &u));
	check_oom(ZM_HALF + 1);
	assert_int_equal(u, 0);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_oom_handler_zcalloc_size(void **state)
{
	size_t start = zmalloc_used_memory(), u = 9;

	assert_null(zcalloc(zm_test_opaque(ZM_HALF + 5)));
	check_oom(ZM_HALF + 5);
	assert_null(zcalloc(zm_test_opaque(ZM_HUGE)));
	check_oom(ZM_HUGE);
	assert_null(zcalloc_usable(zm_test_opaque(SIZE_MAX - 1), &u));
	check_oom(SIZE_MAX - 1);
	assert_int_equal(u, 0);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* The failed realloc reports the new size and leaves the block alone. */
static void test_oom_handler_zrealloc_size(void **state)
{
	size_t start = zmalloc_used_memory(), u = 9, size;
	char *p = zmalloc(64);

	memset(p, 'r', 64);
	size = zmalloc_size(p);
	assert_null(zrealloc(p, zm_test_opaque(ZM_HALF)));
	check_oom(ZM_HALF);
	assert_null(zrealloc(p, zm_test_opaque(ZM_HUGE)));
	check_oom(ZM_HUGE);
	assert_null(zrealloc_usable(p, zm_test_opaque(SIZE_MAX), &u));
	check_oom(SIZE_MAX);
	assert_int_equal(u, 0);
	assert_null(zrealloc(NULL, zm_test_opaque(ZM_HALF + 7)));
	check_oom(ZM_HALF + 7);
	assert_int_equal(zmalloc_size(p), size);
	assert_int_equal(zmalloc_used_memory(), start + size);
	for (u = 0; u < 64; u++)
		assert_int_equal(p[u], 'r');
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

/*
 * Valkey's rule: a product that wraps, or a size of 0, is an OOM of
 * SIZE_MAX; a product that fits but is too large reports the product.
 */
static void test_oom_handler_zcalloc_num_overflow(void **state)
{
	size_t start = zmalloc_used_memory();

	assert_null(zcalloc_num(zm_test_opaque(ZM_HALF), zm_test_opaque(3)));
	check_oom(SIZE_MAX);
	assert_null(
		zcalloc_num(zm_test_opaque(2), zm_test_opaque(ZM_HALF + 1)));
	check_oom(SIZE_MAX);
	assert_null(zcalloc_num(zm_test_opaque(SIZE_MAX), zm_test_opaque(2)));
	check_oom(SIZE_MAX);
	assert_null(zcalloc_num(zm_test_opaque(5), zm_test_opaque(0)));
	check_oom(SIZE_MAX);
	assert_null(zcalloc_num(zm_test_opaque(0), zm_test_opaque(0)));
	check_oom(SIZE_MAX);
	/* 2 * 2^62 = 2^63 does not wrap, but is over SIZE_MAX / 2. */
	assert_null(zcalloc_num(zm_test_opaque(2),
				zm_test_opaque(((size_t)1 << 62))));
	check_oom((size_t)1 << 63);
	assert_null(zcalloc_num(zm_test_opaque(1 << 7),
				zm_test_opaque((size_t)1 << 40)));
	check_oom(ZM_HUGE);
	assert_int_equal(zmalloc_used_memory(), start);
}

static void test_oom_try_family_skips_handler(void **state)
{
	static const size_t huge[] = { ZM_HALF, ZM_HALF + 1, SIZE_MAX,
				       ZM_HUGE };
	size_t start = zmalloc_used_memory(), i;
	void *p = zmalloc(32);

	for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		size_t n = zm_test_opaque(huge[i]), u;

		assert_null(ztrymalloc(n));
		assert_null(ztrycalloc(n));
		assert_null(ztryrealloc(p, n));
		assert_null(ztryrealloc(NULL, n));
		u = 1;
		assert_null(ztrymalloc_usable(n, &u));
		assert_int_equal(u, 0);
		u = 1;
		assert_null(ztrycalloc_usable(n, &u));
		assert_int_equal(u, 0);
		u = 1;
		assert_null(ztryrealloc_usable(p, n, &u));
		assert_int_equal(u, 0);
	}
	assert_int_equal(oom_calls, 0);
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p));
	zfree(p);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* Freeing through zrealloc(p, 0) is not a failure. */
static void test_oom_realloc_zero_skips_handler(void **state)
{
	size_t start = zmalloc_used_memory(), u = 3;
	void *p = zmalloc(100), *q = zmalloc(200);

	assert_null(zrealloc(p, 0));
	assert_null(zrealloc_usable(q, 0, &u));
	assert_int_equal(u, 0);
	assert_int_equal(oom_calls, 0);
	assert_int_equal(zmalloc_used_memory(), start);
}

/* A successful allocation never calls the handler. */
static void test_oom_success_skips_handler(void **state)
{
	size_t start = zmalloc_used_memory();
	void *p = zmalloc(0), *q = zcalloc_num(0, 1), *r = zstrdup("x");

	p = zrealloc(p, 4096);
	assert_non_null(p);
	assert_non_null(q);
	assert_non_null(r);
	assert_int_equal(oom_calls, 0);
	assert_int_equal(zmalloc_used_memory(), start + zmalloc_size(p) +
							zmalloc_size(q) +
							zmalloc_size(r));
	zfree(p);
	zfree(q);
	zfree(r);
	assert_int_equal(zmalloc_used_memory(), start);
}

#define OOM_TEST(f) \
	cmocka_unit_test_setup_teardown(f, setup_handler, teardown_handler)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oom_default_handler_aborts),
		cmocka_unit_test(test_oom_default_handler_calloc_num_overflow),
		cmocka_unit_test(test_oom_null_handler_restores_default),
		OOM_TEST(test_oom_handler_zmalloc_size),
		OOM_TEST(test_oom_handler_zcalloc_size),
		OOM_TEST(test_oom_handler_zrealloc_size),
		OOM_TEST(test_oom_handler_zcalloc_num_overflow),
		OOM_TEST(test_oom_try_family_skips_handler),
		OOM_TEST(test_oom_realloc_zero_skips_handler),
		OOM_TEST(test_oom_success_skips_handler),
	};

	return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
