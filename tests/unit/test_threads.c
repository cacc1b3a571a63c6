/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_threads.c - used_memory stays exact across threads: blocks freed by
 * a thread that did not allocate them, blocks handed through a queue, more
 * threads than the first counter chunk has slots, and the counter chain
 * read the way a tracer outside the process reads it; and a thread that
 * used a copy of the library outlives its dlclose().
 *
 * Worker threads never call cmocka's asserts (they longjmp to the main
 * thread's frame); they count their failures in thread_errors instead.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "zm_test.h"
#include "zmalloc_counters.h"

/* The first chunk of the chain, exported by the library. */
extern struct zmalloc_counter_chunk zm_counters;

static unsigned int thread_errors;

static void thread_error(void)
{
	__atomic_add_fetch(&thread_errors, 1, __ATOMIC_RELAXED);
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t tid;

	assert_int_equal(pthread_attr_init(&attr), 0);
	assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
	assert_int_equal(pthread_create(&tid, &attr, fn, arg), 0);
	pthread_attr_destroy(&attr);
	return tid;
}

static struct zmalloc_counter_slot *
chunk_slots(const struct zmalloc_counter_chunk *c)
{
	return (struct zmalloc_counter_slot *)(c + 1);
}

struct chain_stats {
	int64_t sum; /* of every claimed slot */
	uint32_t chunks; /* in the chain */
	uint32_t nused; /* slots claimed over the chain */
};

/*
 * Walks the chain as zmalloc_counters.h tells an outside reader to: check
 * each header, sum slots [0, nused), follow next. Checks on the way that
 * slots past nused were never written.
 */
static struct chain_stats read_chain(void)
{
	const struct zmalloc_counter_chunk *c = &zm_counters;
	struct chain_stats st = { 0, 0, 0 };

	while (c) {
		const struct zmalloc_counter_slot *slots = chunk_slots(c);
		uint32_t i;

		assert_int_equal(c->magic, ZMALLOC_COUNTERS_MAGIC);
		assert_int_equal(c->version, ZMALLOC_COUNTERS_VERSION);
		assert_true(c->nused <= c->nslots);
		for (i = 0; i < c->nslots; i++) {
			if (i < c->nused) {
				st.sum += slots[i].bytes;
				continue;
			}
			assert_int_equal(slots[i].bytes, 0);
			assert_int_equal(slots[i].owned, 0);
		}
		st.chunks++;
		st.nused += c->nused;
		c = (const struct zmalloc_counter_chunk *)(uintptr_t)c->next;
	}
	return st;
}

static void check_chain_sum(void)
{
	struct chain_stats st = read_chain();

	assert_true(st.sum >= 0);
	assert_int_equal((size_t)st.sum, zmalloc_used_memory());
}

/* ----------------------------------------- blocks freed by another thread */

#define XF_THREADS 4
#define XF_BLOCKS 500

struct xf_worker {
	int id;
	pthread_barrier_t *barrier;
	void **mine; /* XF_BLOCKS blocks this thread allocates */
	void **theirs; /* the blocks of the next thread, freed here */
};

static size_t xf_size(int id, int i)
{
	return (size_t)(id * 37 + i * 13) % 3000 + 1;
}

static void *xf_main(void *arg)
{
	struct xf_worker *w = arg;
	int i;

	for (i = 0; i < XF_BLOCKS; i++) {
		w->mine[i] = i % 2 ? zmalloc(xf_size(w->id, i)) :
				     zcalloc(xf_size(w->id, i));
		memset(w->mine[i], w->id, xf_size(w->id, i));
	}
	pthread_barrier_wait(w->barrier); /* the main thread counts */
	pthread_barrier_wait(w->barrier);
	for (i = 0; i < XF_BLOCKS; i++) {
		unsigned char *b = w->theirs[i];

		if (b[0] != (unsigned char)((w->id + 1) % XF_THREADS))
			thread_error();
		if (i % 3 == 0)
			zfree(b);
		else if (i % 3 == 1)
			zfree_with_size(b, zmalloc_usable_size(b));
		else
			zfree_usable(b, NULL);
	}
	return NULL;
}

static void test_threads_cross_thread_free_exact(void **state)
{
	static void *blocks[XF_THREADS][XF_BLOCKS];
	struct xf_worker w[XF_THREADS];
	pthread_t tid[XF_THREADS];
	pthread_barrier_t barrier;
	size_t start = zmalloc_used_memory(), sum = 0;
	int t, i;

	thread_errors = 0;
	pthread_barrier_init(&barrier, NULL, XF_THREADS + 1);
	for (t = 0; t < XF_THREADS; t++) {
		w[t].id = t;
		w[t].barrier = &barrier;
		w[t].mine = blocks[t];
		w[t].theirs = blocks[(t + 1) % XF_THREADS];
		tid[t] = start_thread(xf_main, &w[t]);
	}
	pthread_barrier_wait(&barrier);
	for (t = 0; t < XF_THREADS; t++)
		for (i = 0; i < XF_BLOCKS; i++)
			sum += zmalloc_size(blocks[t][i]);
	assert_int_equal(zmalloc_used_memory(), start + sum);
	check_chain_sum();
	pthread_barrier_wait(&barrier);
	for (t = 0; t < XF_THREADS; t++)
		pthread_join(tid[t], NULL);
	pthread_barrier_destroy(&barrier);
	assert_int_equal(thread_errors, 0);
	assert_int_equal(zmalloc_used_memory(), start);
	check_chain_sum();
}

/* ------------------------------------------ blocks handed through a queue */

#define Q_PRODUCERS 2
#define Q_CONSUMERS 2
#define Q_ITEMS 3000 /* per producer */
#define Q_LEN 64

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void *items[Q_LEN];
	unsigned int head, tail; /* head - tail items queued */
};

static struct queue q = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.not_empty = PTHREAD_COND_INITIALIZER,
	.not_full = PTHREAD_COND_INITIALIZER,
};

static void q_put(void *p)
{
	pthread_mutex_lock(&q.lock);
	while (q.head - q.tail == Q_LEN)
		pthread_cond_wait(&q.not_full, &q.lock);
	q.items[q.head++ % Q_LEN] = p;
	pthread_cond_signal(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
}

static void *q_get(void)
{
	void *p;

	pthread_mutex_lock(&q.lock);
	while (q.head == q.tail)
		pthread_cond_wait(&q.not_empty, &q.lock);
	p = q.items[q.tail++ % Q_LEN];
	pthread_cond_signal(&q.not_full);
	pthread_mutex_unlock(&q.lock);
	return p;
}

/* Each item starts with its length, the rest is that byte repeated. */
static void *q_producer(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg, i;

	for (i = 0; i < Q_ITEMS; i++) {
		size_t n = sizeof(n) + 1 +
			   (seed = seed * 1103515245 + 12345) % 2000;
		unsigned char *p;

		p = i % 2 ? zmalloc(n) : ztrycalloc(n);
		if (!p) {
			thread_error();
			continue;
		}
		memset(p, (int)(n & 0xff), n);
		memcpy(p, &n, sizeof(n));
		q_put(p);
	}
	return NULL;
}

static void *q_consumer(void *arg)
{
	unsigned int i, per = (unsigned int)(uintptr_t)arg;

	for (i = 0; i < per; i++) {
		unsigned char *p = q_get();
		size_t n = 0;

		memcpy(&n, p, sizeof(n));
		if (n <= sizeof(n) || n > 3000 ||
		    p[n - 1] != (unsigned char)(n & 0xff))
			thread_error();
		if (i % 4 == 0)
			p = zrealloc(p, n + 500); /* another thread's block */
		if (i % 2)
			zfree(p);
		else
			zfree_usable(p, NULL);
	}
	return NULL;
}

static void test_threads_queue_handoff_exact(void **state)
{
	pthread_t prod[Q_PRODUCERS], cons[Q_CONSUMERS];
	size_t start = zmalloc_used_memory();
	unsigned int per = Q_ITEMS * Q_PRODUCERS / Q_CONSUMERS;
	int t;

	thread_errors = 0;
	for (t = 0; t < Q_CONSUMERS; t++)
		cons[t] = start_thread(q_consumer, (void *)(uintptr_t)per);
	for (t = 0; t < Q_PRODUCERS; t++)
		prod[t] = start_thread(q_producer, (void *)(uintptr_t)(t + 1));
	for (t = 0; t < Q_PRODUCERS; t++)
		pthread_join(prod[t], NULL);
	for (t = 0; t < Q_CONSUMERS; t++)
		pthread_join(cons[t], NULL);
	assert_int_equal(thread_errors, 0);
	assert_int_equal(q.head, Q_ITEMS * Q_PRODUCERS);
	assert_int_equal(q.tail, q.head);
	assert_int_equal(zmalloc_used_memory(), start);
	check_chain_sum();
}

/* ------------------------------------ more threads than the first chunk */

#define MANY_CONCURRENT 100 /* alive at once: past the first chunk */
#define MANY_LATER 50 /* then in batches, reusing given-back slots */
#define MANY_BATCH 10
#define MANY_THREADS (MANY_CONCURRENT + MANY_LATER)
#define MANY_MAX_BLOCKS 9

struct many_worker {
	int id;
	pthread_barrier_t *barrier; /* NULL: exit at once */
	void *left[MANY_MAX_BLOCKS];
	int nleft;
};

/*
 * Thread id allocates id % 7 + 3 blocks and frees id % 3 of them itself:
 * it exits owing the rest, which the main thread frees later.
 */
static void *many_main(void *arg)
{
	struct many_worker *w = arg;
	int n = w->id % 7 + 3, k;

	for (k = 0; k < n; k++) {
		w->left[k] = zmalloc((size_t)(w->id * 24 + k * 100 + 1));
		if (!w->left[k])
			thread_error();
	}
	for (k = 0; k < w->id % 3; k++)
		zfree(w->left[--n]);
	w->nleft = n;
	if (w->barrier) {
		pthread_barrier_wait(w->barrier); /* all alive */
		pthread_barrier_wait(w->barrier); /* main has looked */
	}
	return NULL;
}

static void test_threads_many_threads_exact(void **state)
{
	static struct many_worker w[MANY_THREADS];
	pthread_t tid[MANY_THREADS];
	pthread_barrier_t barrier;
	size_t start = zmalloc_used_memory(), sum = 0;
	unsigned long long nthreads = 0;
	struct chain_stats st;
	int t, b, k;

	/* Main thread holds a slot of its own from here on. */
	zfree(zmalloc(1));
	assert_true(zm_counters.nslots < MANY_CONCURRENT + 2);
	thread_errors = 0;
	memset(w, 0, sizeof(w));
	pthread_barrier_init(&barrier, NULL, MANY_CONCURRENT + 1);
	for (t = 0; t < MANY_CONCURRENT; t++) {
		w[t].id = t;
		w[t].barrier = &barrier;
		tid[t] = start_thread(many_main, &w[t]);
	}
	pthread_barrier_wait(&barrier);
	assert_int_equal(zm_test_proc_field("/proc/self/status",
					    "Threads:", &nthreads),
			 0);
	assert_true(nthreads >= MANY_CONCURRENT + 1);
	/* 100 workers, the main thread and the shared slot, all claimed. */
	st = read_chain();
	assert_true(st.chunks >= 2);
	assert_true(st.nused >= MANY_CONCURRENT + 2);
	assert_int_equal(zm_counters.nused, zm_counters.nslots);
	assert_int_equal((size_t)st.sum, zmalloc_used_memory());
	pthread_barrier_wait(&barrier);
	for (t = 0; t < MANY_CONCURRENT; t++)
		pthread_join(tid[t], NULL);
	pthread_barrier_destroy(&barrier);
	/* The rest start in batches and take over the given-back slots. */
	for (b = MANY_CONCURRENT; b < MANY_THREADS; b += MANY_BATCH) {
		for (t = b; t < b + MANY_BATCH; t++) {
			w[t].id = t;
			tid[t] = start_thread(many_main, &w[t]);
		}
		for (t = b; t < b + MANY_BATCH; t++)
			pthread_join(tid[t], NULL);
	}
	assert_int_equal(thread_errors, 0);
	for (t = 0; t < MANY_THREADS; t++) {
		assert_int_equal(w[t].nleft, t % 7 + 3 - t % 3);
		for (k = 0; k < w[t].nleft; k++)
			sum += zmalloc_size(w[t].left[k]);
	}
	assert_int_equal(zmalloc_used_memory(), start + sum);
	check_chain_sum();
	for (t = 0; t < MANY_THREADS; t++)
		for (k = 0; k < w[t].nleft; k++)
			zfree(w[t].left[k]);
	assert_int_equal(zmalloc_used_memory(), start);
	check_chain_sum();
}

/* ------------------------------------------------ the outside reader */

static void *one_block_main(void *arg)
{
	*(void **)arg = zmalloc(12345);
	return NULL;
}

/*
 * The chain as an outside reader sees it: a well-formed header, and a sum
 * that follows every allocation and free to the byte, including blocks of
 * exited threads.
 */
static void test_threads_counter_chain_readable(void **state)
{
	size_t start = zmalloc_used_memory();
	void *mine, *theirs = NULL;
	pthread_t tid;

	assert_int_equal(zm_counters.magic, ZMALLOC_COUNTERS_MAGIC);
	assert_int_equal(zm_counters.version, ZMALLOC_COUNTERS_VERSION);
	assert_true(zm_counters.nused >= 1);
	assert_int_equal((size_t)read_chain().sum, start);
	mine = zmalloc(1000);
	assert_int_equal((size_t)read_chain().sum, start + zmalloc_size(mine));
	tid = start_thread(one_block_main, &theirs);
	pthread_join(tid, NULL);
	assert_non_null(theirs);
	assert_int_equal((size_t)read_chain().sum,
			 start + zmalloc_size(mine) + zmalloc_size(theirs));
	check_chain_sum();
	zfree(theirs);
	zfree(mine);
	assert_int_equal((size_t)read_chain().sum, start);
	check_chain_sum();
}

/* SRC copied to a new file (a new inode: dlopen() loads it again). */
static int copy_library(const char *src, char *dst)
{
	char buf[65536];
	ssize_t got;
	int in, out, err = 0;

	in = open(src, O_RDONLY | O_CLOEXEC);
	out = mkstemp(dst);
	if (in < 0 || out < 0)
		err = -1;
	while (!err && (got = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)got) != got)
			err = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

struct unloaded {
	void *(*alloc)(size_t);
	void (*release)(void *);
	pthread_barrier_t used, unloaded;
};

static void *use_then_wait(void *arg)
{
	struct unloaded *u = arg;

	u->release(u->alloc(100)); /* claims a counter slot: a key destructor */
	pthread_barrier_wait(&u->used);
	pthread_barrier_wait(&u->unloaded);
	return NULL;
}

/*
 * The child: a thread uses a copy of the library, the copy is closed, and
 * the thread exits. The library's per-thread destructors run at that exit,
 * so its code must still be there (it is linked -z nodelete).
 */
static int unload_under_thread(const char *path)
{
	struct unloaded u;
	pthread_t tid;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return 2;
	u.alloc = (void *(*)(size_t))dlsym(h, "zm_malloc");
	u.release = (void (*)(void *))dlsym(h, "zm_free");
	if (!u.alloc || !u.release)
		return 3;
	pthread_barrier_init(&u.used, NULL, 2);
	pthread_barrier_init(&u.unloaded, NULL, 2);
	if (pthread_create(&tid, NULL, use_then_wait, &u))
		return 4;
	pthread_barrier_wait(&u.used);
	if (dlclose(h))
		return 5;
	pthread_barrier_wait(&u.unloaded);
	pthread_join(tid, NULL);
	return 0;
}

static void test_threads_outlive_dlclose(void **state)
{
	char path[] = "/tmp/zm-test-dlclose-XXXXXX";
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(
		copy_library(ZM_TEST_BUILD_DIR "/libzmalloc.so.1", path), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unload_under_thread(path));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_counter_chain_readable),
		cmocka_unit_test(test_threads_cross_thread_free_exact),
		cmocka_unit_test(test_threads_queue_handoff_exact),
		cmocka_unit_test(test_threads_many_threads_exact),
		cmocka_unit_test(test_threads_outlive_dlclose),
	};

	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
