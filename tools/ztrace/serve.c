/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * serve.c - "ztrace serve": a Prometheus exporter. Traces one or more
 * processes (-p PID, repeated, or --all: every process that maps
 * libzmalloc, rescanned every few seconds) and serves their figures on
 * /metrics in the Prometheus text exposition format, labelled by pid and
 * comm, through libmicrohttpd.
 *
 * With --sample each target is traced on its sampled probe only (see
 * --sample in ztrace(8)): every figure but used_memory and RSS is then an
 * estimate, under the same metric names, with ztrace_samples_total and
 * ztrace_live_samples beside them to say how many samples are behind it.
 *
 * Threads: libmicrohttpd answers requests in its own thread; the main
 * thread waits for signals, drops targets that exited and, with --all,
 * attaches to new ones. The target list is under one mutex, held by a
 * scrape for the time it reads the maps.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "elf_info.h"
#include "estimate.h"
#include "hist_render.h"
#include "modes.h"
#include "options.h"
#include "output.h"
#include "procfs.h"
#include "probes.h"
#include "report.h"
#include "sample_control.h"
#include "target.h"
#include "used_memory.h"
#include "zmalloc_probes.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:9464"
#define SERVE_RESCAN_NS 5000000000ULL
#define SERVE_MAX_PIDS 256
/* Buckets shown: le = 2^b - 1 up to 1 TiB; +Inf holds the rest. */
#define SERVE_HIST_BUCKETS 41

struct serve_target {
	struct zt_target t;
	struct zt_probes p;
	struct zt_used_memory um;
	struct zt_sample_ctl sc; /* --sample */
};

static struct {
	pthread_mutex_t lock;
	struct serve_target **v;
	size_t n;
	size_t cap;
	pid_t pids[SERVE_MAX_PIDS];
	int npids;
	bool all;
	const char *listen;
	__u64 scrapes;
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER, .listen = SERVE_DEFAULT_LISTEN };

/* ------------------------------------------------------------ targets */
static bool serve_has(pid_t pid)
{
	size_t i;

	for (i = 0; i < srv.n; i++)
		if (srv.v[i]->t.pid == pid)
			return true;
	return false;
}

static void target_destroy(struct serve_target *st)
{
	probes_destroy(&st->p);
	if (env.sample)
		sample_ctl_restore(&st->sc, &st->t);
	target_close(&st->t);
	free(st);
}

static int serve_attach(pid_t pid)
{
	struct serve_target *st, **v;
	int err;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	target_init(&st->t);
	probes_init(&st->p);
	err = target_open_pid(&st->t, pid);
	if (!err && env.sample) {
		sample_ctl_init(&st->sc, &st->t, false);
		sample_ctl_read(&st->sc, &st->t); /* drops before now */
		if (env.sample_bytes)
			err = sample_ctl_set(&st->sc, &st->t, env.sample_bytes);
	}
	if (!err)
		err = probes_open(&st->p, st->t.pid, st->t.probe_path, false,
				  false);
	if (err)
		goto out_destroy;
	used_memory_init(&st->um, &st->t);
	pthread_mutex_lock(&srv.lock);
	if (srv.n == srv.cap) {
		size_t cap = srv.cap ? srv.cap * 2 : 8;

		v = realloc(srv.v, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&srv.lock);
			err = -ENOMEM;
			goto out_destroy;
		}
		srv.v = v;
		srv.cap = cap;
	}
	srv.v[srv.n++] = st;
	pthread_mutex_unlock(&srv.lock);
	p_info("serving PID %d (%s), probes in %s", st->t.pid, st->t.comm,
	       st->t.probe_path);
	return 0;
out_destroy:
	target_destroy(st);
	return err;
}

/* Forget the targets that exited; their series leave /metrics. */
static void serve_reap(void)
{
	struct serve_target *st;
	struct pollfd pfd;
	size_t i = 0;

	pthread_mutex_lock(&srv.lock);
	while (i < srv.n) {
		st = srv.v[i];
		pfd.fd = st->t.pidfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 0) <= 0) {
			i++;
			continue;
		}
		p_info("PID %d (%s) exited: no longer served", st->t.pid,
		       st->t.comm);
		target_destroy(st);
		srv.v[i] = srv.v[--srv.n];
	}
	pthread_mutex_unlock(&srv.lock);
}

/* Files already looked at by --all: whether each has zmalloc probes. */
struct probe_file {
	dev_t dev;
	ino_t ino;
	bool probes;
};

static struct probe_file *files;
static size_t nfiles, cap_files;

static bool file_has_probes(pid_t pid, const char *path)
{
	char buf[PATH_MAX + 32];
	struct probe_file *f;
	struct stat st;
	size_t i;

	snprintf(buf, sizeof(buf), "/proc/%d/root%s", pid, path);
	if (stat(buf, &st))
		return false;
	for (i = 0; i < nfiles; i++)
		if (files[i].dev == st.st_dev && files[i].ino == st.st_ino)
			return files[i].probes;
	if (nfiles == cap_files) {
		size_t cap = cap_files ? cap_files * 2 : 64;

		f = realloc(files, cap * sizeof(*f));
		if (!f)
			return false;
		files = f;
		cap_files = cap;
	}
	f = &files[nfiles++];
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->probes = !elf_has_usdt_provider(buf, ZMALLOC_PROBE_PROVIDER);
	return f->probes;
}

static int map_has_probes(const struct zt_map *m, void *ctx)
{
	pid_t pid = *(pid_t *)ctx;

	if (m->path[0] != '/' || m->perms[2] != 'x')
		return 0;
	return file_has_probes(pid, m->path) ? 1 : 0;
}

/* --all: attach to every process with zmalloc probes not served yet. */
static void serve_scan(void)
{
	struct dirent *de;
	pid_t pid, self = getpid();
	bool known;
	DIR *d;

	d = opendir("/proc");
	if (!d) {
		p_err("cannot list /proc: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		pthread_mutex_lock(&srv.lock);
		known = serve_has(pid);
		pthread_mutex_unlock(&srv.lock);
		if (pid == self || known)
			continue;
		if (proc_maps_foreach(pid, map_has_probes, &pid) == 1)
			serve_attach(pid);
	}
	closedir(d);
}

/* ------------------------------------------------------------ metrics */
struct serve_snap {
	pid_t pid;
	char labels[128]; /* pid="..",comm=".." */
	struct zt_snapshot s;
	struct zt_estimates e; /* --sample: the snapshot's estimates */
	__u64 mean_bytes; /* --sample: the rate in effect, or 0 */
};

static void label_value(char *out, size_t len, const char *v)
{
	size_t k = 0;

	for (; *v && k + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			out[k++] = '\\';
			out[k++] = *v;
		} else if (*v == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else {
			out[k++] = *v;
		}
	}
	out[k] = '\0';
}

/*
 * A histogram of one target: exact, or with --sample its estimate (count
 * the estimated blocks, bytes the estimated requested bytes).
 */
static void hist_slots(const struct serve_snap *n, int kind,
		       struct zt_hist_slot *out)
{
	int skind = kind == ZT_HIST_ALLOC ? ZT_SHIST_ALLOC : ZT_SHIST_FREE;
	int b;

	for (b = 0; b < ZT_HIST_BUCKETS; b++) {
		const struct zt_sample_slot *in = &n->s.shist[skind][b];

		if (!env.sample) {
			out[b] = n->s.hist[kind][b];
			continue;
		}
		out[b].count = est_count((__s64)in->count_milli);
		out[b].bytes = in->weight;
		out[b].frag = 0;
	}
}

static int snap_one(struct serve_target *st, struct serve_snap *out)
{
	char comm[80];
	int err;

	memset(out, 0, sizeof(*out));
	err = collect_counters(&st->p, &out->s);
	if (err)
		return err;
	out->s.used_memory_err =
		used_memory_read(&st->um, &st->t, &out->s.used_memory);
	out->s.rss_err = target_rss(&st->t, &out->s.rss);
	if (env.sample) {
		estimate_totals(&out->s, &out->e);
		if (!sample_ctl_read(&st->sc, &st->t))
			out->mean_bytes = st->sc.mean_bytes;
	}
	out->pid = st->t.pid;
	label_value(comm, sizeof(comm), st->t.comm);
	snprintf(out->labels, sizeof(out->labels), "pid=\"%d\",comm=\"%s\"",
		 st->t.pid, comm);
	return 0;
}

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric's value for one target; false: none (no sample shown). */
typedef bool (*value_fn)(const struct serve_snap *n, double *v);

static bool v_used(const struct serve_snap *n, double *v)
{
	*v = n->s.used_memory;
	return !n->s.used_memory_err;
}

static bool v_rss(const struct serve_snap *n, double *v)
{
	*v = n->s.rss;
	return !n->s.rss_err;
}

static bool v_frag(const struct serve_snap *n, double *v)
{
	const struct zt_snapshot *s = &n->s;

	if (s->used_memory_err || s->rss_err || s->used_memory <= 0)
		return false;
	*v = (double)s->rss / s->used_memory;
	return true;
}

#define SERVE_VALUE(fn, expr)                                 \
	static bool fn(const struct serve_snap *n, double *v) \
	{                                                     \
		const struct zt_snapshot *s = &n->s;          \
                                                              \
		(void)s;                                      \
		*v = (expr);                                  \
		return true;                                  \
	}

/* Exact figures, or with --sample their estimates (see estimate.h). */
SERVE_VALUE(v_live_bytes, env.sample ? n->e.live_bytes : s->d.live_bytes)
SERVE_VALUE(v_live_blocks,
	    env.sample ? (double)n->e.live_blocks : (double)s->d.live_blocks)
SERVE_VALUE(v_allocs, env.sample ? n->e.allocs : s->d.allocs)
SERVE_VALUE(v_frees, env.sample ? n->e.frees : s->d.frees)
SERVE_VALUE(v_ooms, s->c.ooms)
SERVE_VALUE(v_complete, !report_incomplete(s))
/* Exact mode only: sampled mode does not see these. */
SERVE_VALUE(v_live_usable, s->d.live_usable)
SERVE_VALUE(v_reallocs, s->c.reallocs)
SERVE_VALUE(v_untracked, s->c.untracked_frees)
SERVE_VALUE(v_missed, s->c.missed_frees)
/* --sample only: what the estimates rest on. */
SERVE_VALUE(v_samples, n->e.alloc_samples)
SERVE_VALUE(v_live_samples, n->e.live_samples)

static bool v_mean_bytes(const struct serve_snap *n, double *v)
{
	*v = n->mean_bytes;
	return n->mean_bytes != 0;
}

#define SERVE_EXACT 1U
#define SERVE_SAMPLED 2U
#define SERVE_BOTH (SERVE_EXACT | SERVE_SAMPLED)

struct serve_metric {
	const char *name;
	const char *type;
	const char *help;
	value_fn fn;
	unsigned int modes; /* SERVE_EXACT, SERVE_SAMPLED: where it is shown */
};

static const struct serve_metric metrics[] = {
	{ "ztrace_used_memory_bytes", "gauge",
	  "zmalloc_used_memory() of the process, read from outside it", v_used,
	  SERVE_BOTH },
	{ "ztrace_rss_bytes", "gauge", "Resident set size of the process",
	  v_rss, SERVE_BOTH },
	{ "ztrace_fragmentation_ratio", "gauge", "RSS divided by used_memory",
	  v_frag, SERVE_BOTH },
	{ "ztrace_live_bytes", "gauge",
	  "Requested bytes of the blocks allocated since attach and still live (estimated with --sample)",
	  v_live_bytes, SERVE_BOTH },
	{ "ztrace_live_usable_bytes", "gauge",
	  "Usable bytes of the blocks allocated since attach and still live",
	  v_live_usable, SERVE_EXACT },
	{ "ztrace_live_blocks", "gauge",
	  "Blocks allocated since attach and still live (estimated with --sample)",
	  v_live_blocks, SERVE_BOTH },
	{ "ztrace_allocations_total", "counter",
	  "Allocations since attach (estimated with --sample)", v_allocs,
	  SERVE_BOTH },
	{ "ztrace_frees_total", "counter",
	  "Frees since attach (estimated with --sample)", v_frees, SERVE_BOTH },
	{ "ztrace_reallocs_total", "counter", "Reallocs since attach",
	  v_reallocs, SERVE_EXACT },
	{ "ztrace_ooms_total", "counter", "Failed allocations since attach",
	  v_ooms, SERVE_BOTH },
	{ "ztrace_untracked_frees_total", "counter",
	  "Frees of blocks allocated before attach or not tracked", v_untracked,
	  SERVE_EXACT },
	{ "ztrace_missed_frees_total", "counter",
	  "Frees seen late: an address reused while still tracked", v_missed,
	  SERVE_EXACT },
	{ "ztrace_complete", "gauge",
	  "1 when nothing was dropped since attach, else 0", v_complete,
	  SERVE_BOTH },
	{ "ztrace_samples_total", "counter",
	  "Samples since attach, behind every estimate", v_samples,
	  SERVE_SAMPLED },
	{ "ztrace_live_samples", "gauge",
	  "Samples still live, behind the live estimates", v_live_samples,
	  SERVE_SAMPLED },
	{ "ztrace_sample_mean_bytes", "gauge",
	  "Mean bytes allocated between samples in the process", v_mean_bytes,
	  SERVE_SAMPLED },
};

static void write_simple(FILE *f, const struct serve_metric *m,
			 const struct serve_snap *v, size_t n)
{
	double x;
	size_t i;

	if (!(m->modes & (env.sample ? SERVE_SAMPLED : SERVE_EXACT)))
		return;
	family(f, m->name, m->type, m->help);
	for (i = 0; i < n; i++)
		if (m->fn(&v[i], &x))
			fprintf(f, "%s{%s} %.17g\n", m->name, v[i].labels, x);
}

static void write_hist(FILE *f, const char *name, const char *help, int kind,
		       const struct serve_snap *v, size_t n)
{
	char bucket[96];
	__u64 cum;
	size_t i;
	int b;

	family(f, name, "histogram", help);
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (i = 0; i < n; i++) {
		struct zt_hist_slot h[ZT_HIST_BUCKETS], t;

		hist_slots(&v[i], kind, h);
		t = hist_total(h);
		cum = 0;
		for (b = 0; b < SERVE_HIST_BUCKETS; b++) {
			cum += h[b].count;
			fprintf(f, "%s{%s,le=\"%llu\"} %llu\n", bucket,
				v[i].labels, (1ULL << b) - 1,
				(unsigned long long)cum);
		}
		fprintf(f, "%s{%s,le=\"+Inf\"} %llu\n", bucket, v[i].labels,
			(unsigned long long)t.count);
		fprintf(f, "%s_sum{%s} %llu\n", name, v[i].labels,
			(unsigned long long)t.bytes);
		fprintf(f, "%s_count{%s} %llu\n", name, v[i].labels,
			(unsigned long long)t.count);
	}
}

static void write_drops(FILE *f, const struct serve_snap *v, size_t n)
{
	static const char *const reasons[] = {
		"live_map_full", "live_map_error",    "stack_collision",
		"stack_error",	 "stack_totals_full", "args_unreadable",
		"prog_missed",
	};
	size_t i, r;

	family(f, "ztrace_drops_total", "counter",
	       "Events ztrace could not record, by reason");
	for (i = 0; i < n; i++) {
		const struct zt_counters *c = &v[i].s.c;
		__u64 val[] = {
			c->drop_live_full,	 c->drop_live_error,
			c->drop_stack_collision, c->drop_stack_error,
			c->drop_totals_full,	 c->drop_args,
			v[i].s.prog_missed,
		};

		for (r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
			fprintf(f,
				"ztrace_drops_total{%s,reason=\"%s\"} %llu\n",
				v[i].labels, reasons[r],
				(unsigned long long)val[r]);
	}
}

static int write_metrics(FILE *f)
{
	struct serve_snap *v;
	size_t i, n = 0;

	pthread_mutex_lock(&srv.lock);
	v = calloc(srv.n ? srv.n : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&srv.lock);
		return -ENOMEM;
	}
	for (i = 0; i < srv.n; i++)
		if (!snap_one(srv.v[i], &v[n]))
			n++;
	srv.scrapes++;
	pthread_mutex_unlock(&srv.lock);

	family(f, "ztrace_targets", "gauge", "Processes ztrace serves");
	fprintf(f, "ztrace_targets %zu\n", n);
	for (i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		write_simple(f, &metrics[i], v, n);
	write_hist(f, "ztrace_allocation_size_bytes",
		   "Requested sizes of the blocks allocated since attach",
		   ZT_HIST_ALLOC, v, n);
	write_hist(f, "ztrace_free_size_bytes",
		   "Requested sizes of the tracked blocks freed since attach",
		   ZT_HIST_FREE, v, n);
	write_drops(f, v, n);
	free(v);
	return 0;
}

/* --------------------------------------------------------------- http */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
			     const char *type, char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned int status,
				  const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", body,
		     strlen(body));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	char *body = NULL;
	size_t len = 0;
	FILE *f;
	int err;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "ztrace serve: only GET /metrics\n");
	if (!strcmp(url, "/"))
		return reply_text(c, MHD_HTTP_OK,
				  "ztrace serve: metrics on /metrics\n");
	if (strcmp(url, "/metrics"))
		return reply_text(
			c, MHD_HTTP_NOT_FOUND,
			"ztrace serve: not found; metrics are on /metrics\n");
	f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	err = write_metrics(f);
	if (fclose(f) || err) {
		free(body);
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "ztrace serve: out of memory\n");
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		     body, len);
}

/* HOST:PORT or [HOST6]:PORT, numeric; a socket bound and listening. */
static int listen_socket(const char *spec)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
					      AI_PASSIVE };
	char host[256];
	const char *port = strrchr(spec, ':');
	struct addrinfo *ai;
	int fd, one = 1, err;
	size_t hl;

	if (!port || !port[1] || port - spec >= (long)sizeof(host)) {
		p_err("invalid --listen '%s': give HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464",
		      spec);
		return -EINVAL;
	}
	hl = port - spec;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	err = getaddrinfo(host[0] ? host : NULL, port + 1, &hints, &ai);
	if (err) {
		p_err("invalid --listen '%s': %s; give a numeric address and port",
		      spec, gai_strerror(err));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out_err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64))
		goto out_err;
	freeaddrinfo(ai);
	return fd;
out_err:
	err = -errno;
	p_err("cannot listen on %s: %s; pick another address or port with --listen",
	      spec, strerror(-err));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return err;
}

/* ------------------------------------------------------------ options */
static void serve_help(void)
{
	fprintf(stderr,
		"Usage: ztrace serve [--listen HOST:PORT] -p PID [-p PID...]\n"
		"       ztrace serve [--listen HOST:PORT] --all\n"
		"\n"
		"Serve the figures of one or more processes on /metrics, in the\n"
		"Prometheus text format, labelled by pid and comm: used_memory,\n"
		"RSS, their ratio, live bytes and blocks, allocation and free\n"
		"counts, the size histograms and every drop counter.\n"
		"\n"
		"  -l, --listen HOST:PORT  address to serve on (default %s)\n"
		"  -p, --pid PID        a process to trace; repeat, or PID,PID...\n"
		"  -a, --all            every process that maps libzmalloc, looked\n"
		"                       for again every 5 s\n"
		"      --max-blocks N   size each live table for N blocks (default %u;\n"
		"                       %u samples with --sample)\n"
		"      --sample[=BYTES] production mode: trace the sampled probe only,\n"
		"                       about one block per BYTES allocated (default:\n"
		"                       each process's own rate); every figure but\n"
		"                       used_memory and RSS is then an estimate, with\n"
		"                       ztrace_samples_total and ztrace_live_samples\n"
		"  -v, --verbose        libbpf messages (twice: debug)\n"
		"  -h, --help           this text\n"
		"\nSee ztrace(8).\n",
		SERVE_DEFAULT_LISTEN, ZT_DEFAULT_MAX_BLOCKS,
		ZT_DEFAULT_MAX_SAMPLES);
}

static int add_pids(const char *arg)
{
	char *end;
	long v;

	do {
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || end == arg || v <= 0 || v > INT_MAX ||
		    (*end && *end != ',')) {
			p_err("invalid -p '%s': give a process id, or several separated by commas",
			      arg);
			return -EINVAL;
		}
		if (srv.npids == SERVE_MAX_PIDS) {
			p_err("too many -p: at most %d processes, or use --all",
			      SERVE_MAX_PIDS);
			return -EINVAL;
		}
		srv.pids[srv.npids++] = v;
		arg = end + (*end == ',');
	} while (*end);
	return 0;
}

static int serve_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "pid", required_argument, NULL, 'p' },
		{ "all", no_argument, NULL, 'a' },
		{ "max-blocks", required_argument, NULL, 'B' },
		{ "sample", optional_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	unsigned long v;
	char *end;
	int opt;

	env.mode_name = argv[0];
	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:p:avh", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			srv.listen = optarg;
			break;
		case 'p':
			if (add_pids(optarg))
				return -EINVAL;
			break;
		case 'a':
			srv.all = true;
			break;
		case 'B':
			errno = 0;
			v = strtoul(optarg, &end, 0);
			if (errno || end == optarg || *end || v < 1 ||
			    v > 1U << 28) {
				p_err("invalid --max-blocks '%s': give a whole number from 1 to %u",
				      optarg, 1U << 28);
				return -EINVAL;
			}
			env.max_blocks = v;
			break;
		case 'S':
			if (parse_sample(optarg))
				return -EINVAL;
			break;
		case 'v':
			env.verbose++;
			break;
		case 'h':
			serve_help();
			return 1;
		default:
			p_err("unknown option for 'ztrace serve': see 'ztrace serve --help'");
			return -EINVAL;
		}
	}
	if (!env.max_blocks)
		env.max_blocks = env.sample ? ZT_DEFAULT_MAX_SAMPLES :
					      ZT_DEFAULT_MAX_BLOCKS;
	if (optind < argc) {
		p_err("ztrace serve takes no command: trace running processes with -p PID or --all");
		return -EINVAL;
	}
	if (!srv.npids == !srv.all) {
		p_err("%s: give -p PID (one or more) or --all, such as 'ztrace serve -p 1234'",
		      srv.all ? "both -p and --all" : "no process to serve");
		return -EINVAL;
	}
	return 0;
}

/* --------------------------------------------------------------- main */
static int block_signals(sigset_t *old)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &mask, old))
		return -errno;
	sigdelset(&mask, SIGPIPE);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

static void serve_loop(int sfd)
{
	struct pollfd pfd = { .fd = sfd, .events = POLLIN };
	__u64 next_scan = mono_now_ns() + SERVE_RESCAN_NS;

	struct signalfd_siginfo si;

	for (;;) {
		/* SIGINT, SIGTERM or SIGHUP: consumed, so that it does not
		 * kill ztrace once unblocked on the way out. */
		if (poll(&pfd, 1, 1000) > 0 &&
		    read(sfd, &si, sizeof(si)) == sizeof(si))
			return;
		serve_reap();
		if (srv.all && mono_now_ns() >= next_scan) {
			serve_scan();
			next_scan = mono_now_ns() + SERVE_RESCAN_NS;
		}
	}
}

int do_serve(int argc, char **argv)
{
	struct MHD_Daemon *d = NULL;
	int err, i, lfd, sfd, code = 1;
	sigset_t old;

	err = serve_options(argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	if (probes_check_system())
		return 1;
	sfd = block_signals(&old);
	if (sfd < 0) {
		p_err("cannot set up signal handling: %s", strerror(errno));
		return 1;
	}
	lfd = listen_socket(srv.listen);
	if (lfd < 0)
		goto out_signals;
	for (i = 0; i < srv.npids; i++)
		if (serve_attach(srv.pids[i]))
			goto out_targets;
	if (srv.all)
		serve_scan();
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
		NULL, handle, NULL, MHD_OPTION_LISTEN_SOCKET, lfd,
		MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
	if (!d) {
		p_err("cannot start the HTTP server on %s (libmicrohttpd)",
		      srv.listen);
		goto out_targets;
	}
	p_info("metrics on http://%s/metrics; Ctrl-C to stop", srv.listen);
	serve_loop(sfd);
	code = 0;
	MHD_stop_daemon(d); /* closes the listening socket */
	lfd = -1;
out_targets:
	pthread_mutex_lock(&srv.lock);
	while (srv.n)
		target_destroy(srv.v[--srv.n]);
	free(srv.v);
	pthread_mutex_unlock(&srv.lock);
	free(files);
	if (lfd >= 0)
		close(lfd);
out_signals:
	close(sfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return code;
}
