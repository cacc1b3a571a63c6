/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * top.c - "ztrace top": a full-screen live view with ncurses, redrawn
 * every second (-i): used_memory, RSS and live bytes as figures and as
 * sparklines of their history, the allocation size histogram, and the
 * stacks holding the most, from the kernel's per-stack totals.
 *
 * Keys (read when stdin is readable, through the session's input hook):
 * s cycles the sort (live bytes, live blocks, allocations), p pauses the
 * view (tracing goes on), q quits.
 */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <ncurses.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hist_render.h"
#include "leaks.h"
#include "modes.h"
#include "output.h"
#include "profile.h"
#include "report.h"
#include "session.h"

#define TOP_HISTORY 512
#define TOP_LABEL 26 /* columns before a sparkline */

enum top_sort { TOP_BY_BYTES, TOP_BY_BLOCKS, TOP_BY_ALLOCS, TOP_NSORTS };

static const char *const sort_names[TOP_NSORTS] = { "live bytes", "live blocks",
						    "allocs" };

struct top_series {
	double v[TOP_HISTORY];
	unsigned int n; /* samples so far; the last is v[(n - 1) % H] */
};

static struct {
	bool active; /* the curses screen is up */
	bool paused;
	bool utf8;
	enum top_sort sort;
	struct top_series used, rss, live;
	struct zt_profile prof;
	struct zt_session *s;
} top;

static void series_push(struct top_series *sr, double v)
{
	sr->v[sr->n++ % TOP_HISTORY] = v;
}

static void sparkline(int y, int x, int width, const struct top_series *sr)
{
	static const char *const bars[] = { "\u2581", "\u2582", "\u2583",
					    "\u2584", "\u2585", "\u2586",
					    "\u2587", "\u2588" };
	static const char ascii[] = "_.-~=+*#";
	unsigned int n = sr->n < TOP_HISTORY ? sr->n : TOP_HISTORY, i, k;
	double lo = 0, hi = 0, v;
	int level;

	if ((unsigned int)width < n)
		n = width;
	for (i = 0; i < n; i++) {
		v = sr->v[(sr->n - n + i) % TOP_HISTORY];
		if (!i || v < lo)
			lo = v;
		if (!i || v > hi)
			hi = v;
	}
	for (i = 0; i < n; i++) {
		k = (sr->n - n + i) % TOP_HISTORY;
		level = hi > lo ? (int)((sr->v[k] - lo) / (hi - lo) * 7.999) :
				  0;
		if (top.utf8)
			mvaddstr(y, x + i, bars[level]);
		else
			mvaddch(y, x + i, ascii[level]);
	}
}

static int by_sort(const void *a, const void *b)
{
	const struct zt_prof_stack *x = a, *y = b;
	__u64 kx = x->live_bytes, ky = y->live_bytes;

	if (top.sort == TOP_BY_BLOCKS) {
		kx = x->live_blocks;
		ky = y->live_blocks;
	} else if (top.sort == TOP_BY_ALLOCS) {
		kx = x->allocs;
		ky = y->allocs;
	}
	if (kx != ky)
		return kx < ky ? 1 : -1;
	return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static void figure(int y, const char *name, __s64 v, bool valid,
		   const struct top_series *sr)
{
	char buf[32];

	if (valid)
		mvprintw(y, 0, "%-12s %12s", name,
			 fmt_size(buf, sizeof(buf), v < 0 ? 0 : v));
	else
		mvprintw(y, 0, "%-12s %12s", name, "n/a");
	sparkline(y, TOP_LABEL, COLS - TOP_LABEL - 1, sr);
}

static int draw_hist(int y, int rows)
{
	const struct zt_hist_slot *h = top.s->cur.hist[ZT_HIST_ALLOC];
	struct hist_span sp = HIST_SPAN(h, count, count, bytes);
	int b, first = sp.first, last = sp.last, width = COLS - 44, i, n;
	__u64 max = sp.max_count, lo, hi;
	char a[32], c[32];

	attron(A_BOLD);
	mvprintw(y++, 0, "Allocations by requested size, since attach");
	attroff(A_BOLD);
	if (first < 0) {
		mvprintw(y++, 2, "(none yet)");
		return y;
	}
	if (last - first + 1 > rows)
		first = last - rows + 1;
	for (b = first; b <= last; b++) {
		hist_bucket_range(b, &lo, &hi);
		fmt_size(a, sizeof(a), lo);
		mvprintw(y, 2, "[%s, %s)", a, fmt_size(c, sizeof(c), hi));
		mvprintw(y, 26, "%10llu ", (unsigned long long)h[b].count);
		n = width > 0 ? (int)(h[b].count * width / max) : 0;
		for (i = 0; i < n; i++)
			addch('#');
		y++;
	}
	return y;
}

static void draw_stack(int y, const struct zt_prof_stack *r)
{
	const struct zt_sym_stack *st = r->st;
	const struct zt_frame *f;
	char buf[64];
	const char *file;
	int i;

	mvprintw(y, 0, "%12llu %9llu %9llu  ",
		 (unsigned long long)r->live_bytes,
		 (unsigned long long)r->live_blocks,
		 (unsigned long long)r->allocs);
	if (!st || !st->nframes) {
		addstr("[stack not recorded]");
		return;
	}
	f = &st->frames[0];
	addstr(profile_frame_name(st, 0, buf, sizeof(buf)));
	if (f->file) {
		file = strrchr(f->file, '/');
		printw(" (%s:%d)", file ? file + 1 : f->file, f->line);
	}
	for (i = 1; i < st->nframes && getcurx(stdscr) < COLS - 4; i++) {
		addstr(" < ");
		addstr(profile_frame_name(st, i, buf, sizeof(buf)));
	}
}

static void draw(void)
{
	struct zt_session *s = top.s;
	const struct zt_snapshot *n = &s->cur;
	int y, rows, i, hist_rows;

	erase();
	attron(A_REVERSE);
	mvprintw(0, 0, " ztrace top: PID %d (%s), %.0f s, sort: %s%s",
		 s->target.pid, s->target.comm,
		 (n->mono_ns - s->attach_ns) / 1e9, sort_names[top.sort],
		 top.paused ? "  [PAUSED]" : "");
	for (i = getcurx(stdscr); i < COLS; i++)
		addch(' ');
	attroff(A_REVERSE);
	figure(2, "used_memory", n->used_memory, !n->used_memory_err,
	       &top.used);
	figure(3, "RSS", n->rss, !n->rss_err, &top.rss);
	figure(4, "live bytes", n->d.live_bytes, true, &top.live);
	mvprintw(5, 0,
		 "live blocks %lld, allocs %llu, frees %llu, reallocs %llu",
		 (long long)n->d.live_blocks, (unsigned long long)n->d.allocs,
		 (unsigned long long)n->d.frees,
		 (unsigned long long)n->c.reallocs);
	if (!n->used_memory_err && !n->rss_err && n->used_memory > 0)
		printw(", RSS/used_memory %.2f",
		       (double)n->rss / n->used_memory);
	printw(report_incomplete(n) ? ", INCOMPLETE: drops" : ", drops none");
	hist_rows = (LINES - 12) / 2;
	y = draw_hist(7, hist_rows > 3 ? hist_rows : 3) + 1;
	attron(A_BOLD);
	mvprintw(y++, 0, "%12s %9s %9s  %s", "LIVE BYTES", "BLOCKS", "ALLOCS",
		 "STACK (allocating function first)");
	attroff(A_BOLD);
	rows = LINES - y - 1;
	for (i = 0; i < rows && (size_t)i < top.prof.n; i++)
		draw_stack(y + i, &top.prof.v[i]);
	attron(A_REVERSE);
	mvprintw(LINES - 1, 0,
		 " s: sort (bytes, blocks, allocs)  p: pause  q: quit ");
	attroff(A_REVERSE);
	refresh();
}

static void top_start(void)
{
	setlocale(LC_ALL, "");
	top.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	initscr();
	cbreak();
	noecho();
	nodelay(stdscr, TRUE);
	keypad(stdscr, TRUE);
	curs_set(0);
	top.active = true;
}

static void top_report(struct zt_session *s, bool final)
{
	const struct zt_snapshot *n = &s->cur;

	top.s = s;
	if (final) {
		if (top.active)
			endwin();
		top.active = false;
		profile_free(&top.prof);
		return;
	}
	if (!top.active)
		top_start();
	if (!top.paused) {
		series_push(&top.used, n->used_memory_err ? 0 : n->used_memory);
		series_push(&top.rss, n->rss_err ? 0 : n->rss);
		series_push(&top.live, n->d.live_bytes);
		profile_free(&top.prof);
		if (!profile_collect(s, 0, false, &top.prof))
			qsort(top.prof.v, top.prof.n, sizeof(*top.prof.v),
			      by_sort);
	}
	draw();
}

static int top_input(struct zt_session *s)
{
	char c;
	int ch;

	if (!top.active) {
		/* Before the screen is up: q still quits. */
		if (read(STDIN_FILENO, &c, 1) != 1)
			return -1;
		return c == 'q' || c == 'Q';
	}
	while ((ch = getch()) != ERR) {
		switch (ch) {
		case 'q':
		case 'Q':
			return 1;
		case 's':
		case 'S':
			top.sort = (top.sort + 1) % TOP_NSORTS;
			qsort(top.prof.v, top.prof.n, sizeof(*top.prof.v),
			      by_sort);
			break;
		case 'p':
		case 'P':
			top.paused = !top.paused;
			break;
		}
	}
	draw();
	return 0;
}

static const struct zt_mode_ops top_ops = {
	.stacks = true,
	.report = top_report,
	.refresh = leaks_refresh,
	.input = top_input,
};

int do_top(int argc, char **argv)
{
	int err = parse_options(argc, argv, ZT_MODE_TOP);

	if (err)
		return err > 0 ? 0 : 2;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		p_err("ztrace top needs a terminal: run it in one, or use 'ztrace leaks -i 1' for reports");
		return 2;
	}
	if (env.interval <= 0)
		env.interval = 1;
	return session_run(&top_ops);
}
