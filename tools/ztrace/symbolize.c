/* SPDX-License-Identifier: BSD-3-Clause */
/* symbolize.c - libdwfl symbolizer (see symbolize.h). */
#include <errno.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "symbolize.h"
#include "target.h"

static char *debuginfo_path;

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

int symbolizer_init(struct zt_symbolizer *s, const struct zt_target *t,
		    size_t max_stack_ids)
{
	memset(s, 0, sizeof(*s));
	s->pid = t->pid;
	s->cache = calloc(max_stack_ids, sizeof(*s->cache));
	if (!s->cache)
		return -ENOMEM;
	s->ncache = max_stack_ids;
	s->dwfl = dwfl_begin(&proc_callbacks);
	if (!s->dwfl) {
		p_err("cannot start libdwfl: %s", dwfl_errmsg(-1));
		free(s->cache);
		s->cache = NULL;
		return -ENOMEM;
	}
	return 0;
}

int symbolizer_refresh(struct zt_symbolizer *s, const struct zt_target *t)
{
	__u64 base;
	int err;

	if (!t->probes_in_exe)
		target_probe_mapping(t, &base, &s->lib_lo, &s->lib_hi);
	dwfl_report_begin(s->dwfl);
	err = dwfl_linux_proc_report(s->dwfl, s->pid);
	dwfl_report_end(s->dwfl, NULL, NULL);
	if (err) {
		if (err > 0)
			err = -err;
		return err;
	}
	s->reported = true;
	return 0;
}

static void frame_fill(struct zt_symbolizer *s, struct zt_frame *f, __u64 ip,
		       bool is_return)
{
	/* A return address points after the call: look up the call. */
	Dwarf_Addr pc = is_return ? ip - 1 : ip;
	Dwfl_Module *mod;
	const char *name, *file;
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwfl_Line *line;
	int lineno = 0;

	f->ip = ip;
	if (!s->reported)
		return;
	mod = dwfl_addrmodule(s->dwfl, pc);
	if (!mod)
		return;
	name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	if (name) {
		const char *slash = strrchr(name, '/');

		f->module = strdup(slash ? slash + 1 : name);
	}
	name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
	if (name) {
		f->func = strdup(name);
		f->offset = off + (is_return ? 1 : 0);
	}
	line = dwfl_module_getsrc(mod, pc);
	if (line) {
		file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		if (file) {
			f->file = strdup(file);
			f->line = lineno;
		}
	}
}

static bool is_allocator_frame(const struct zt_symbolizer *s,
			       const struct zt_frame *f)
{
	if (s->lib_hi && f->ip >= s->lib_lo && f->ip < s->lib_hi)
		return true;
	/*
	 * Statically linked: every function of the library that holds a probe
	 * site, or calls one that does, is a zm_ one (test_probes checks the
	 * sites), found in the executable's symbol table.
	 */
	return f->func && !strncmp(f->func, "zm_", 3);
}

static void frame_free(struct zt_frame *f)
{
	free(f->func);
	free(f->file);
	free(f->module);
}

static struct zt_sym_stack *symbolize_new(struct zt_symbolizer *s,
					  const __u64 *ips, int n, bool alive)
{
	struct zt_sym_stack *st;
	int i, k = 0, dropped = 0;
	bool top = true;

	st = calloc(1, sizeof(*st) + n * sizeof(st->frames[0]));
	if (!st)
		return NULL;
	for (i = 0; i < n; i++) {
		struct zt_frame *f = &st->frames[k];

		frame_fill(s, f, ips[i], i > 0);
		if (top && is_allocator_frame(s, f) && i < n - 1) {
			frame_free(f);
			memset(f, 0, sizeof(*f));
			dropped++;
			continue;
		}
		top = false;
		k++;
	}
	st->nframes = k;
	st->dropped = dropped;
	st->resolved = alive && s->reported;
	return st;
}

bool symbolized(const struct zt_symbolizer *s, __u32 stack_id)
{
	return stack_id < s->ncache && s->cache[stack_id] &&
	       s->cache[stack_id]->resolved;
}

static void stack_free(struct zt_sym_stack *st)
{
	int i;

	if (!st)
		return;
	for (i = 0; i < st->nframes; i++)
		frame_free(&st->frames[i]);
	free(st);
}

const struct zt_sym_stack *symbolize(struct zt_symbolizer *s, __u32 stack_id,
				     const __u64 *ips, int n, bool alive)
{
	struct zt_sym_stack *st;

	if (stack_id >= s->ncache)
		return NULL;
	st = s->cache[stack_id];
	if (st && (st->resolved || !alive))
		return st;
	st = symbolize_new(s, ips, n, alive);
	if (!st)
		return s->cache[stack_id];
	stack_free(s->cache[stack_id]);
	s->cache[stack_id] = st;
	return st;
}

void symbolizer_free(struct zt_symbolizer *s)
{
	size_t i;

	for (i = 0; s->cache && i < s->ncache; i++)
		stack_free(s->cache[i]);
	free(s->cache);
	if (s->dwfl)
		dwfl_end(s->dwfl);
	memset(s, 0, sizeof(*s));
}
