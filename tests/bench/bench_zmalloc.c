/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_zmalloc - ns per allocate+free pair, zmalloc against its backend.
 *
 * One process loads every contender side by side and runs them in
 * interleaved rounds, so that the machine's noise falls on all of them
 * alike; each figure is the median over the rounds.
 *
 *   malloc           glibc malloc+free, the libc backend bare
 *   zmalloc          libzmalloc (libc backend), probes compiled in, idle
 *   zmalloc-noprobes libzmalloc (libc backend), probes compiled out
 *   mallocx          jemalloc mallocx+dallocx, the jemalloc backend bare
 *   zmalloc-je       libzmalloc (jemalloc backend), probes idle
 *   zmalloc-sampling libzmalloc (libc backend) with sampling on at the
 *                    default rate, as a sampling tracer turns it on (its
 *                    semaphore raised), but no tracer: the library's own
 *                    share of production tracing, without the kernel's
 *
 * The cost of sampling on is a per cent or less, under the difference
 * between two copies of a library: it is measured in the one copy, its
 * semaphore raised and lowered between short rounds (TOGGLE_OPS pairs,
 * on-off then off-on, TOGGLE_ROUNDS times), the median of the ratios.
 *
 * The work: a ring of live blocks; each step frees the oldest and allocates
 * a new one of a size drawn from a fixed mix (most small, some medium, a
 * few large, like a key-value server's), and writes its first byte.
 *
 * usage: bench_zmalloc BUILD_DIR [PAIRS_PER_ROUND] [ROUNDS]
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 512
#define NSIZES 4096
#define MAX_CONTENDERS 6
#define MAX_ROUNDS 64
#define TOGGLE_ROUNDS 301
#define TOGGLE_OPS 50000

struct contender {
	const char *name;
	void *handle;
	char path[4096];
	void *(*alloc)(size_t);
	void (*release)(void *);
	double ns[2][MAX_ROUNDS]; /* [threads - 1][round] */
};

struct worker {
	struct contender *c;
	long pairs;
	unsigned seed;
	double ns;
};

static size_t sizes[NSIZES];

static void *(*je_mallocx)(size_t, int);
static void (*je_dallocx)(void *, int);

static void *bare_mallocx(size_t n)
{
	return je_mallocx(n, 0);
}

static void bare_dallocx(void *p)
{
	je_dallocx(p, 0);
}

/* 70% 8..128 bytes, 25% 129..4096, 5% 4097..65536. */
static void make_size_mix(void)
{
	unsigned seed = 42;
	int i;

	for (i = 0; i < NSIZES; i++) {
		unsigned r = rand_r(&seed) % 100, x = rand_r(&seed);

		if (r < 70)
			sizes[i] = 8 + x % 121;
		else if (r < 95)
			sizes[i] = 129 + x % 3968;
		else
			sizes[i] = 4097 + x % 61440;
	}
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	void *ring[RING] = { 0 };
	unsigned idx = w->seed;
	double start;
	long i;

	start = now_ns();
	for (i = 0; i < w->pairs; i++) {
		unsigned slot = i % RING;
		char *p;

		if (ring[slot])
			w->c->release(ring[slot]);
		p = w->c->alloc(sizes[idx++ % NSIZES]);
		p[0] = (char)i;
		ring[slot] = p;
	}
	w->ns = (now_ns() - start) / w->pairs;
	for (i = 0; i < RING; i++)
		if (ring[i])
			w->c->release(ring[i]);
	return NULL;
}

/* Mean ns per pair over the threads of one round. */
static double run_round(struct contender *c, int threads, long pairs)
{
	struct worker w[2];
	pthread_t tid[2];
	int t;

	for (t = 0; t < threads; t++) {
		w[t] = (struct worker){ .c = c,
					.pairs = pairs,
					.seed = t * 997 };
		pthread_create(&tid[t], NULL, run_worker, &w[t]);
	}
	for (t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	return threads == 1 ? w[0].ns : (w[0].ns + w[1].ns) / 2;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	double tmp[MAX_ROUNDS];

	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* The address of a local symbol of a loaded library, from its .symtab. */
static void *local_symbol(void *handle, const char *path, const char *name)
{
	struct link_map *lm;
	Elf_Scn *scn = NULL;
	void *addr = NULL;
	GElf_Shdr shdr;
	Elf *elf;
	int fd;

	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) ||
	    elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && !addr && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		size_t i;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB)
			continue;
		data = elf_getdata(scn, NULL);
		for (i = 0; data && i < shdr.sh_size / shdr.sh_entsize; i++) {
			GElf_Sym sym;

			if (gelf_getsym(data, (int)i, &sym) &&
			    !strcmp(elf_strptr(elf, shdr.sh_link, sym.st_name),
				    name)) {
				addr = (char *)lm->l_addr + sym.st_value;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return addr;
}

static int load_zmalloc(struct contender *c, const char *name,
			const char *build, const char *variant)
{
	char path[4096];
	void *h;

	snprintf(path, sizeof(path), "%s/%s/libzmalloc.so.1", build, variant);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr,
			"bench_zmalloc: cannot load %s: %s\n"
			"Build it first: make bench\n",
			path, dlerror());
		return -1;
	}
	c->name = name;
	c->handle = h;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->alloc = (void *(*)(size_t))dlsym(h, "zm_malloc");
	c->release = (void (*)(void *))dlsym(h, "zm_free");
	if (!c->alloc || !c->release) {
		fprintf(stderr, "bench_zmalloc: %s lacks zm_malloc/zm_free\n",
			path);
		return -1;
	}
	return 0;
}

/*
 * jemalloc's TLS cannot be dlopen()ed, so the bench links it, after libc
 * so that plain malloc stays glibc's; load_libc_malloc() checks that.
 */
static int load_jemalloc(struct contender *c)
{
	je_mallocx = (void *(*)(size_t, int))dlsym(RTLD_DEFAULT, "mallocx");
	je_dallocx = (void (*)(void *, int))dlsym(RTLD_DEFAULT, "dallocx");
	c->name = "mallocx";
	c->alloc = bare_mallocx;
	c->release = bare_dallocx;
	return je_mallocx && je_dallocx ? 0 : -1;
}

static int load_libc_malloc(struct contender *c)
{
	Dl_info info;

	c->name = "malloc";
	c->alloc = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
	c->release = (void (*)(void *))dlsym(RTLD_DEFAULT, "free");
	if (!dladdr((void *)c->alloc, &info) ||
	    !strstr(info.dli_fname, "libc.so")) {
		fprintf(stderr, "bench_zmalloc: malloc is not glibc's here\n");
		return -1;
	}
	return 0;
}

static unsigned short *sampling_semaphore;

/*
 * A copy of the libc build (so that its semaphore is its own), with the
 * sample_alloc semaphore raised as a tracer's attach raises it.
 */
static int load_sampling(struct contender *c)
{
	unsigned short *sem = local_symbol(c->handle, c->path,
					   "zmalloc_sample_alloc_semaphore");

	sampling_semaphore = sem;
	if (!sem) {
		fprintf(stderr,
			"bench_zmalloc: no sample_alloc semaphore in %s\n",
			c->path);
		return -1;
	}
	(*sem)++;
	return 0;
}

/* Sampling on over off in C's one copy; the quartiles in q[3]. */
static void sampling_toggled(struct contender *c, int threads, double *q)
{
	static double r[TOGGLE_ROUNDS];
	double ns[2];
	int k, j, on;

	for (k = 0; k < TOGGLE_ROUNDS; k++) {
		for (j = 0; j < 2; j++) {
			on = k % 2 ? !j : j;
			__atomic_store_n(sampling_semaphore, on,
					 __ATOMIC_RELAXED);
			ns[on] = run_round(c, threads, TOGGLE_OPS);
		}
		r[k] = ns[1] / ns[0];
	}
	__atomic_store_n(sampling_semaphore, 1, __ATOMIC_RELAXED);
	qsort(r, TOGGLE_ROUNDS, sizeof(*r), cmp_double);
	for (k = 0; k < 3; k++)
		q[k] = r[TOGGLE_ROUNDS * (k + 1) / 4];
}

static void print_ratio(const char *what, struct contender *a,
			struct contender *b, int t, int rounds)
{
	double ra = median(a->ns[t], rounds), rb = median(b->ns[t], rounds);

	printf("  %-44s %6.3fx  (%.1f / %.1f ns)\n", what, ra / rb, ra, rb);
}

int main(int argc, char **argv)
{
	struct contender c[MAX_CONTENDERS] = { 0 };
	long pairs = argc > 2 ? atol(argv[2]) : 2000000;
	int rounds = argc > 3 ? atoi(argv[3]) : 11;
	double q[3];
	int i, t, r;

	if (argc < 2 || pairs <= 0 || rounds <= 0 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: bench_zmalloc BUILD_DIR "
				"[PAIRS_PER_ROUND] [ROUNDS<=64]\n");
		return 2;
	}
	if (load_libc_malloc(&c[0]) ||
	    load_zmalloc(&c[5], "zmalloc-sampling", argv[1],
			 "bench-sampling") ||
	    load_sampling(&c[5]) ||
	    load_zmalloc(&c[1], "zmalloc", argv[1], "libc") ||
	    load_zmalloc(&c[2], "zmalloc-noprobes", argv[1], "libc-noprobes") ||
	    load_jemalloc(&c[3]) ||
	    load_zmalloc(&c[4], "zmalloc-je", argv[1], "jemalloc"))
		return 1;
	make_size_mix();

	printf("bench_zmalloc: %ld allocate+free pairs per thread per round, "
	       "%d interleaved rounds, median ns per pair\n",
	       pairs, rounds);
	for (t = 0; t < 2; t++) {
		for (r = 0; r < rounds; r++)
			for (i = 0; i < MAX_CONTENDERS; i++)
				c[i].ns[t][r] = run_round(&c[i], t + 1, pairs);
		printf("\n%d thread%s:\n", t + 1, t ? "s" : "");
		for (i = 0; i < MAX_CONTENDERS; i++)
			printf("  %-18s %7.1f ns/pair\n", c[i].name,
			       median(c[i].ns[t], rounds));
		print_ratio("idle probes: zmalloc / zmalloc-noprobes "
			    "(goal <= 1.05)",
			    &c[1], &c[2], t, rounds);
		print_ratio("libc backend: zmalloc / malloc (goal <= 1.10)",
			    &c[1], &c[0], t, rounds);
		print_ratio("jemalloc backend: zmalloc-je / mallocx", &c[4],
			    &c[3], t, rounds);
		sampling_toggled(&c[5], t + 1, q);
		printf("  %-44s %6.3fx  (quartiles %.3f-%.3f)\n",
		       "sampling on, no tracer: on / off, toggled", q[1], q[0],
		       q[2]);
	}
	return 0;
}
