/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * leaky.c - a program that builds each kind of leak on purpose, for the
 * scanner and for valgrind to judge alike.
 *
 *   leaky wait   build, print the candidates, then wait on stdin: a line
 *                "ping" is answered "pong", end of file exits
 *   leaky exit   build, print the candidates, exit with everything in
 *                place (what valgrind's leak check sees at exit)
 *
 * SIGUSR1 prints "usr1", to show a signal is not lost while scanned.
 * LEAKY_WAIT_GO=1 prints "waiting PID" first and builds nothing until a
 * line "go" arrives on stdin: time for a tracer to attach with -p.
 * LEAKY_WRITE_ONLY=1 adds a writable mapping that cannot be read: a root
 * the scanner cannot scan.
 *
 * Each candidate is printed as "cand ADDR REQ USABLE TAG EXPECT": the
 * block, its requested and usable bytes, what it is, and its class by
 * memcheck's rules. This list stands in for ztrace's map of live blocks.
 *
 * So that the state at exit is the state scanned, nothing here keeps a
 * stray copy of a pointer: the list of candidates holds addresses
 * inverted (~addr, never a user address), output goes through write(2)
 * (stdio would allocate), the builders run in frames that die, and the
 * dead stack is scrubbed. Sizes are multiples of 16, so that glibc's
 * usable size is the request plus 8 and no chunk header of the allocator
 * falls inside a requested extent.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "put.h"
#include "zmalloc.h"

#define MAX_CANDS 64

struct cand {
	uint64_t inv; /* ~addr */
	size_t req;
	const char *tag;
	const char *expect;
};

static struct cand cands[MAX_CANDS];
static int ncands;

/* The roots the program keeps; extern, or the compiler drops them. */
void *g_held; /* global -> block -> child */
char *g_interior; /* global -> 40 bytes into a block */
void *g_outside; /* global -> libc malloc block -> block */
static volatile uint64_t g_reg_inv; /* the register thread's block, ~addr */
static volatile int g_reg_ready;

static void *alloc(size_t req, const char *tag, const char *expect)
{
	void *p = zcalloc(req);

	cands[ncands].inv = ~(uint64_t)(uintptr_t)p;
	cands[ncands].req = req;
	cands[ncands].tag = tag;
	cands[ncands].expect = expect;
	ncands++;
	return p;
}

/* A list whose head pointer is dropped: head definite, tail indirect. */
__attribute__((noinline)) static void build_lost_list(void)
{
	void **head = alloc(48, "list-head", "definitely");
	void **n1 = alloc(48, "list-tail", "indirectly");
	void **n2 = alloc(48, "list-tail", "indirectly");
	void **n3 = alloc(48, "list-tail", "indirectly");

	head[0] = n1;
	n1[0] = n2;
	n2[0] = n3;
}

/* A cycle nothing points to: the lower address leads, definite. */
__attribute__((noinline)) static void build_cycle(void)
{
	void **a = alloc(80, "cycle", "?");
	void **b = alloc(80, "cycle", "?");
	struct cand *ca = &cands[ncands - 2], *cb = &cands[ncands - 1];

	a[2] = b;
	b[3] = a;
	ca->expect = (uintptr_t)a < (uintptr_t)b ? "definitely" : "indirectly";
	cb->expect = (uintptr_t)a < (uintptr_t)b ? "indirectly" : "definitely";
}

/* A lost block with an interior pointer into another: both lost. */
__attribute__((noinline)) static void build_lost_interior(void)
{
	void **l = alloc(48, "lost-to-interior", "definitely");
	char *m = alloc(96, "interior-of-lost", "indirectly");

	l[1] = m + 16;
}

/* Reached only through an interior pointer; its child only through it. */
__attribute__((noinline)) static void build_interior(void)
{
	void **p = alloc(160, "interior", "possibly");
	void **c = alloc(48, "child-of-possible", "possibly");

	p[8] = c; /* not at offset 40, where the interior pointer lands */
	g_interior = (char *)p + 40;
}

__attribute__((noinline)) static void build_held(void)
{
	void **p = alloc(96, "global", "still");
	void **c = alloc(64, "child-of-global", "still");

	p[1] = c;
	g_held = p;
}

/* A block held only from memory that is not a candidate (pre-attach). */
__attribute__((noinline)) static void build_outside(void)
{
	void **o = calloc(4, sizeof(void *));

	o[2] = alloc(128, "held-by-non-candidate", "still");
	g_outside = o;
}

/*
 * A thread that allocates a block and keeps it only in r12, asleep in
 * pause(2) (the kernel saves r12 across it): a root only as a register.
 */
static void *reg_thread(void *arg)
{
#if defined(__x86_64__)
	register uint64_t r12 asm("r12") = (uint64_t)(uintptr_t)zcalloc(208);

	g_reg_inv = ~r12;
	__atomic_store_n(&g_reg_ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		long nr = SYS_pause;

		asm volatile("syscall"
			     : "+a"(nr), "+r"(r12)
			     :
			     : "rcx", "r11", "rdi", "rsi", "rdx", "memory");
	}
#else
	/* Elsewhere: spin with the pointer in a register. */
	uint64_t r = (uint64_t)(uintptr_t)zcalloc(208);

	g_reg_inv = ~r;
	__atomic_store_n(&g_reg_ready, 1, __ATOMIC_RELEASE);
	for (;;)
		asm volatile("" : "+r"(r));
#endif
	return arg;
}

/* Zero the dead stack below us, where the builders left copies. */
__attribute__((noinline)) static void scrub_stack(void)
{
	volatile char buf[65536];

	memset((char *)buf, 0, sizeof(buf));
	asm volatile("" : : "r"(buf) : "memory");
}

/* Shows that a signal sent while the scanner held us was not lost. */
static void on_usr1(int sig)
{
	(void)sig;
	if (write(1, "usr1\n", 5) != 5)
		_exit(2);
}

__attribute__((noinline)) static void print_cands(void)
{
	char line[256];
	int len;

	for (int i = 0; i < ncands; i++) {
		uint64_t a = ~cands[i].inv;

		len = snprintf(line, sizeof(line), "cand %#llx %zu %zu %s %s\n",
			       (unsigned long long)a, cands[i].req,
			       zmalloc_usable_size((void *)(uintptr_t)a),
			       cands[i].tag, cands[i].expect);
		put_bytes(line, (size_t)len);
		a = 0;
	}
	len = snprintf(line, sizeof(line), "ready %d\n", (int)getpid());
	put_bytes(line, (size_t)len);
}

static void wait_go(void)
{
	char line[64], buf[64];
	ssize_t r;
	int len;

	len = snprintf(line, sizeof(line), "waiting %d\n", (int)getpid());
	put_bytes(line, (size_t)len);
	while ((r = read(0, buf, sizeof(buf))) > 0)
		if (r >= 2 && !memcmp(buf, "go", 2))
			return;
	exit(1);
}

__attribute__((noinline)) static void serve(void)
{
	char buf[256];
	ssize_t r;

	while ((r = read(0, buf, sizeof(buf))) > 0)
		if (r >= 4 && !memcmp(buf, "ping", 4))
			put_bytes("pong\n", 5);
}

int main(int argc, char **argv)
{
	void *volatile on_stack;
	pthread_t t;

	if (argc != 2 || (strcmp(argv[1], "wait") && strcmp(argv[1], "exit"))) {
		fprintf(stderr, "usage: leaky wait|exit\n");
		return 2;
	}
	signal(SIGUSR1, on_usr1);
	if (getenv("LEAKY_WAIT_GO"))
		wait_go();
	if (getenv("LEAKY_WRITE_ONLY") &&
	    mmap(NULL, 65536, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
		    MAP_FAILED)
		return 1;
	build_lost_list();
	build_cycle();
	build_lost_interior();
	build_interior();
	build_held();
	build_outside();
	on_stack = alloc(112, "stack", "still");
	if (pthread_create(&t, NULL, reg_thread, NULL)) {
		fprintf(stderr, "leaky: cannot create a thread\n");
		return 1;
	}
	while (!__atomic_load_n(&g_reg_ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	cands[ncands].inv = g_reg_inv;
	cands[ncands].req = 208;
	cands[ncands].tag = "register";
	cands[ncands].expect = "still";
	ncands++;
	scrub_stack();
	print_cands();
	scrub_stack();
	if (!strcmp(argv[1], "exit"))
		exit(0); /* on_stack, the globals, r12: all still in place */
	serve();
	(void)on_stack;
	return 0;
}
