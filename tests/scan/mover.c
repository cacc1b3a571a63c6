/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mover.c - a target for the write tracker's tests (tools/scan/wtrack.c):
 * a pointer that only the stop's rescan of written pages can find.
 *
 *   mover [-su] [-m MIB] [-r GIB]
 *
 * One block, "moved", is held only through one word, the slot, of a
 * private mapping of its own; the other candidates are MIB mebibytes of
 * 4 KiB blocks on a list held from a global: an idle heap. Lines on stdin:
 *
 *   hide     the slot holds the block's address inverted: nothing points
 *            to the block ("hidden")
 *   reveal   one store of the address into the slot, whose page a running
 *            pass has read already: only the stop can see it ("revealed")
 *   remap    the slot's mapping replaced by a private mapping of a file
 *            that holds the address, and not touched: a page that no
 *            write of the target made ("remapped")
 *   scribble a word that is no pointer stored into every heap block: a
 *            write to every page of the heap ("scribbled")
 *   ping     "pong"
 *
 * With -r, the slot is one page in the middle of GIB gibibytes of
 * anonymous memory reserved and never touched elsewhere: the scanner
 * reads the pages that exist only (tools/scan/present.c).
 *
 * End of input exits 0. -s installs a seccomp filter that allows every
 * call: the scanner cannot make a thread run one, so it has no write
 * tracker. -u registers the slot's mapping with a userfaultfd of the
 * target's own (write-protect mode, nothing protected): the scanner's
 * registration gets EBUSY there, and a write-protection of it by the
 * scanner would hang the next store.
 *
 * As in leaky.c, no stray copy of the address is left: it is kept
 * inverted, printed with write(2), stored by a few instructions that
 * clear their register, and the dead stack is scrubbed.
 */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "put.h"
#include "zmalloc.h"

/*
 * The slot's mapping fills one page table: with no neighbour in it, its
 * replacement has no page table at all until touched, and only the
 * mapping itself says it is new.
 */
#define SLOT_MAP (2 << 20)
#define SLOT_OFF (16 * 1024)
#define HEAP_BLOCK 4080 /* with glibc's header, a chunk of 4 KiB */

void *g_chain; /* extern: a root, the idle heap's list */
static uint64_t g_inv; /* ~address of the moved block */
static char *g_map; /* the slot's mapping */
static size_t g_slot_off = SLOT_OFF; /* the slot in it */
static int g_file = -1; /* what "remap" maps */

static void put(const char *s)
{
	put_bytes(s, strlen(s));
}

static void die(const char *what)
{
	char line[128];

	snprintf(line, sizeof(line), "mover: %s failed\n", what);
	if (write(2, line, strlen(line)) < 0)
		_exit(1);
	exit(1);
}

/* *slot = ~g_inv, the address in no register afterwards. */
__attribute__((noinline)) static void store_address(uint64_t *slot)
{
#if defined(__x86_64__)
	asm volatile("movq %1, %%rax\n\t"
		     "notq %%rax\n\t"
		     "movq %%rax, (%0)\n\t"
		     "xorl %%eax, %%eax"
		     :
		     : "r"(slot), "m"(g_inv)
		     : "rax", "memory");
#else
	*(volatile uint64_t *)slot = ~g_inv;
#endif
}

static uint64_t *slot(void)
{
	return (uint64_t *)(g_map + g_slot_off);
}

__attribute__((noinline)) static void scrub_stack(void)
{
	volatile char buf[65536];

	memset((char *)buf, 0, sizeof(buf));
	asm volatile("" : : "r"(buf) : "memory");
}

static void map_slot(void)
{
	char *r = mmap(NULL, 3 * SLOT_MAP, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (r == MAP_FAILED)
		die("mmap");
	a = ((uintptr_t)r + SLOT_MAP - 1) & ~((uintptr_t)SLOT_MAP - 1);
	if (munmap(r, 3 * SLOT_MAP))
		die("munmap");
	g_map = mmap((void *)a, SLOT_MAP, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (g_map != (void *)a)
		die("mmap of the slot");
	madvise(g_map, SLOT_MAP, MADV_NOHUGEPAGE);
	memset(g_map, 1, SLOT_MAP); /* present, and not a pointer */
}

/* -r: a reservation of GIB, with the slot's page its only one. */
static void map_sparse(long gib)
{
	size_t len = (size_t)gib << 30;

	g_map = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g_map == MAP_FAILED)
		die("mmap of the reservation");
	g_slot_off = len / 2 + SLOT_OFF;
}

/* The file "remap" maps: the address at the slot's offset. */
__attribute__((noinline)) static void write_file(void)
{
	uint64_t word[1];

	store_address(word);
	if (pwrite(g_file, word, sizeof(word), SLOT_OFF) != sizeof(word))
		die("pwrite");
	*(volatile uint64_t *)word = 0;
}

static void remap(void)
{
	write_file();
	if (mmap(g_map, SLOT_MAP, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED, g_file, 0) != g_map)
		die("mmap of the file");
}

static void own_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)g_map, .len = SLOT_MAP },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int fd = (int)syscall(SYS_userfaultfd,
			      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) ||
	    ioctl(fd, UFFDIO_REGISTER, &reg))
		die("own userfaultfd");
}

static void allow_all_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 1, .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		die("seccomp");
}

__attribute__((noinline)) static void build(long mib)
{
	char line[128];
	void *p;

	p = zcalloc(64);
	g_inv = ~(uint64_t)(uintptr_t)p;
	snprintf(line, sizeof(line), "cand %#llx 64 %zu moved still\n",
		 (unsigned long long)~g_inv, zmalloc_usable_size(p));
	put(line);
	p = NULL;
	for (long i = 0; i < mib * 256; i++) {
		void **b = zcalloc(HEAP_BLOCK);

		b[0] = g_chain;
		g_chain = b;
		snprintf(line, sizeof(line), "cand %p %d %zu heap still\n",
			 (void *)b, HEAP_BLOCK, zmalloc_usable_size(b));
		put(line);
	}
	memset(line, 0, sizeof(line));
}

static void scribble(void)
{
	for (void **b = g_chain; b; b = *b)
		b[1] = (void *)(uintptr_t)0x5a5a5a5a5a5a5a5aULL;
}

static void serve(void)
{
	char line[64];
	ssize_t r;

	while ((r = read(0, line, sizeof(line) - 1)) > 0) {
		line[r] = '\0';
		if (!strncmp(line, "hide", 4)) {
			*slot() = g_inv;
			put("hidden\n");
		} else if (!strncmp(line, "reveal", 6)) {
			store_address(slot());
			put("revealed\n");
		} else if (!strncmp(line, "remap", 5)) {
			remap();
			put("remapped\n");
		} else if (!strncmp(line, "scribble", 8)) {
			scribble();
			put("scribbled\n");
		} else if (!strncmp(line, "ping", 4)) {
			put("pong\n");
		}
		scrub_stack();
	}
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/mover.XXXXXX", line[64];
	bool seccomp = false, uffd = false;
	long mib = 0, gib = 0;
	int opt;

	while ((opt = getopt(argc, argv, "m:r:su")) != -1) {
		switch (opt) {
		case 'm':
			mib = strtol(optarg, NULL, 10);
			break;
		case 'r':
			gib = strtol(optarg, NULL, 10);
			break;
		case 's':
			seccomp = true;
			break;
		case 'u':
			uffd = true;
			break;
		default:
			fprintf(stderr,
				"usage: mover [-su] [-m MIB] [-r GIB]\n");
			return 2;
		}
	}
	g_file = mkstemp(path);
	if (g_file < 0 || unlink(path) || ftruncate(g_file, SLOT_MAP))
		die("the file");
	if (gib)
		map_sparse(gib);
	else
		map_slot();
	if (uffd)
		own_uffd();
	build(mib);
	*slot() = g_inv;
	scrub_stack();
	if (seccomp)
		allow_all_seccomp();
	snprintf(line, sizeof(line), "ready %d\n", (int)getpid());
	put(line);
	serve();
	return 0;
}
