/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pprof.c - the heap as a gzipped pprof profile (profile.proto of
 * github.com/google/pprof), laid out as Go's runtime writes its heap
 * profiles (runtime/pprof writeHeapProto):
 *
 *   sample types  alloc_objects/count, alloc_space/bytes,
 *                 inuse_objects/count, inuse_space/bytes
 *   period type   space/bytes; period 1 when every allocation is traced,
 *                 else the mean sampling interval, the values then being
 *                 the scaled estimates
 *   each sample   its stack, leaf first, and a numeric label "bytes": the
 *                 average size of the stack's allocations
 *
 * Mappings carry their build ids, functions their file, locations their
 * line. Field numbers below are those of profile.proto.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "export.h"
#include "intern.h"
#include "output.h"
#include "pb.h"
#include "profile.h"
#include "symbolize.h"
#include "ztrace_types.h"

/* message Profile */
#define P_SAMPLE_TYPE 1
#define P_SAMPLE 2
#define P_MAPPING 3
#define P_LOCATION 4
#define P_FUNCTION 5
#define P_STRING_TABLE 6
#define P_TIME_NANOS 9
#define P_DURATION_NANOS 10
#define P_PERIOD_TYPE 11
#define P_PERIOD 12
#define P_COMMENT 13
/* message ValueType */
#define VT_TYPE 1
#define VT_UNIT 2
/* message Sample */
#define S_LOCATION_ID 1
#define S_VALUE 2
#define S_LABEL 3
/* message Label */
#define L_KEY 1
#define L_NUM 3
/* message Mapping */
#define M_ID 1
#define M_MEMORY_START 2
#define M_MEMORY_LIMIT 3
#define M_FILE_OFFSET 4
#define M_FILENAME 5
#define M_BUILD_ID 6
#define M_HAS_FUNCTIONS 7
#define M_HAS_FILENAMES 8
#define M_HAS_LINE_NUMBERS 9
/* message Location */
#define LOC_ID 1
#define LOC_MAPPING_ID 2
#define LOC_ADDRESS 3
#define LOC_LINE 4
/* message Line */
#define LN_FUNCTION_ID 1
#define LN_LINE 2
/* message Function */
#define F_ID 1
#define F_NAME 2
#define F_SYSTEM_NAME 3
#define F_FILENAME 4

struct pprof {
	struct pb_buf out; /* the Profile message */
	struct intern strings; /* string_table; index 0 is "" */
	struct intern funcs; /* "name\1file" -> function id - 1 */
	struct intern locs; /* "ip" -> location id - 1 */
	const struct zt_profile *p;
};

static long str(struct pprof *pp, const char *s)
{
	long i = intern(&pp->strings, s ? s : "");

	if (i < 0)
		pp->out.err = -ENOMEM;
	return i < 0 ? 0 : i;
}

static void value_type(struct pprof *pp, int field, const char *type,
		       const char *unit)
{
	struct pb_buf m;

	pb_init(&m);
	pb_int(&m, VT_TYPE, str(pp, type));
	pb_int(&m, VT_UNIT, str(pp, unit));
	pb_message(&pp->out, field, &m);
	pb_free(&m);
}

static __u64 mapping_of(const struct zt_profile *p, __u64 ip)
{
	size_t lo = 0, hi = p->nmaps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ip < p->maps[mid].start)
			hi = mid;
		else if (ip >= p->maps[mid].limit)
			lo = mid + 1;
		else
			return mid + 1;
	}
	return 0;
}

static __u64 function_id(struct pprof *pp, const struct zt_frame *f)
{
	char key[1024];
	struct pb_buf m;
	long i;

	snprintf(key, sizeof(key), "%s\1%s", f->func, f->file ? f->file : "");
	i = intern(&pp->funcs, key);
	if (i < 0) {
		pp->out.err = -ENOMEM;
		return 0;
	}
	if (!intern_added(&pp->funcs, i))
		return i + 1;
	pb_init(&m);
	pb_uint(&m, F_ID, i + 1);
	pb_int(&m, F_NAME, str(pp, f->func));
	pb_int(&m, F_SYSTEM_NAME, str(pp, f->func));
	pb_int(&m, F_FILENAME, str(pp, f->file));
	pb_message(&pp->out, P_FUNCTION, &m);
	pb_free(&m);
	return i + 1;
}

static __u64 location_id(struct pprof *pp, const struct zt_frame *f)
{
	struct pb_buf m, line;
	char key[32];
	long i;

	snprintf(key, sizeof(key), "%llx", (unsigned long long)f->ip);
	i = intern(&pp->locs, key);
	if (i < 0) {
		pp->out.err = -ENOMEM;
		return 0;
	}
	if (!intern_added(&pp->locs, i))
		return i + 1;
	pb_init(&m);
	pb_uint(&m, LOC_ID, i + 1);
	pb_uint(&m, LOC_MAPPING_ID, mapping_of(pp->p, f->ip));
	pb_uint(&m, LOC_ADDRESS, f->ip);
	if (f->func) {
		pb_init(&line);
		pb_uint(&line, LN_FUNCTION_ID, function_id(pp, f));
		pb_int(&line, LN_LINE, f->line);
		pb_message(&m, LOC_LINE, &line);
		pb_free(&line);
	}
	pb_message(&pp->out, P_LOCATION, &m);
	pb_free(&m);
	return i + 1;
}

/* A stack that was not recorded: one location named for it. */
static __u64 unknown_location(struct pprof *pp)
{
	static const struct zt_frame f = { .func = "[stack not recorded]" };

	return location_id(pp, &f);
}

static void sample(struct pprof *pp, const struct zt_prof_stack *r)
{
	uint64_t locs[ZT_MAX_STACK_DEPTH], vals[4];
	struct pb_buf m, label;
	size_t n = 0;
	int i;

	for (i = 0; r->st && i < r->st->nframes; i++)
		locs[n++] = location_id(pp, &r->st->frames[i]);
	if (!n)
		locs[n++] = unknown_location(pp);
	vals[0] = r->allocs;
	vals[1] = r->alloc_bytes;
	vals[2] = r->live_blocks;
	vals[3] = r->live_bytes;
	pb_init(&m);
	pb_packed(&m, S_LOCATION_ID, locs, n);
	pb_packed(&m, S_VALUE, vals, 4);
	if (r->allocs && r->alloc_bytes / r->allocs) {
		pb_init(&label);
		pb_int(&label, L_KEY, str(pp, "bytes"));
		pb_int(&label, L_NUM, r->alloc_bytes / r->allocs);
		pb_message(&m, S_LABEL, &label);
		pb_free(&label);
	}
	pb_message(&pp->out, P_SAMPLE, &m);
	pb_free(&m);
}

static void mapping(struct pprof *pp, size_t i)
{
	const struct zt_prof_mapping *map = &pp->p->maps[i];
	struct pb_buf m;

	pb_init(&m);
	pb_uint(&m, M_ID, i + 1);
	pb_uint(&m, M_MEMORY_START, map->start);
	pb_uint(&m, M_MEMORY_LIMIT, map->limit);
	pb_uint(&m, M_FILE_OFFSET, map->offset);
	pb_int(&m, M_FILENAME, str(pp, map->path));
	pb_int(&m, M_BUILD_ID, str(pp, map->build_id));
	pb_bool(&m, M_HAS_FUNCTIONS, 1);
	pb_bool(&m, M_HAS_FILENAMES, 1);
	pb_bool(&m, M_HAS_LINE_NUMBERS, 1);
	pb_message(&pp->out, P_MAPPING, &m);
	pb_free(&m);
}

static void comments(struct pprof *pp)
{
	const struct zt_profile *p = pp->p;
	uint64_t c[2];
	char buf[160];
	size_t n = 0;

	snprintf(buf, sizeof(buf), "ztrace: PID %d (%s)", p->pid, p->comm);
	c[n++] = str(pp, buf);
	if (p->incomplete)
		c[n++] = str(
			pp,
			"INCOMPLETE: some events were not recorded, see ztrace's drop counters");
	pb_packed(&pp->out, P_COMMENT, c, n);
}

static void profile(struct pprof *pp)
{
	const struct zt_profile *p = pp->p;
	size_t i;

	str(pp, ""); /* string 0 */
	value_type(pp, P_SAMPLE_TYPE, "alloc_objects", "count");
	value_type(pp, P_SAMPLE_TYPE, "alloc_space", "bytes");
	value_type(pp, P_SAMPLE_TYPE, "inuse_objects", "count");
	value_type(pp, P_SAMPLE_TYPE, "inuse_space", "bytes");
	for (i = 0; i < p->nmaps; i++)
		mapping(pp, i);
	for (i = 0; i < p->n; i++)
		if (p->v[i].allocs || p->v[i].live_blocks)
			sample(pp, &p->v[i]);
	pb_int(&pp->out, P_TIME_NANOS, p->time_ns);
	pb_int(&pp->out, P_DURATION_NANOS, p->duration_ns);
	value_type(pp, P_PERIOD_TYPE, "space", "bytes");
	pb_int(&pp->out, P_PERIOD, p->period);
	comments(pp);
	for (i = 0; i < pp->strings.n; i++)
		pb_string(&pp->out, P_STRING_TABLE, pp->strings.strs[i]);
}

static int write_gz(const struct pb_buf *b, const char *path)
{
	char tmp[4096];
	FILE *f;
	gzFile gz;
	int err = 0;

	f = export_open(path, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	gz = gzdopen(dup(fileno(f)), "wb");
	if (!gz)
		err = -ENOMEM;
	else if (b->len && gzwrite(gz, b->data, b->len) != (int)b->len)
		err = -EIO;
	if (gz && gzclose(gz) != Z_OK && !err)
		err = -EIO;
	return export_commit(f, tmp, path, err);
}

int pprof_write(const struct zt_profile *p, const char *path)
{
	struct pprof pp = { .p = p };
	int err;

	pb_init(&pp.out);
	intern_init(&pp.strings);
	intern_init(&pp.funcs);
	intern_init(&pp.locs);
	profile(&pp);
	err = pp.out.err;
	if (err)
		p_err("cannot build the pprof profile: %s", strerror(-err));
	else
		err = write_gz(&pp.out, path);
	intern_free(&pp.locs);
	intern_free(&pp.funcs);
	intern_free(&pp.strings);
	pb_free(&pp.out);
	return err;
}
