/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flamegraph.c - live bytes by stack as a self-contained interactive SVG
 * flame graph, in the manner of Brendan Gregg's flamegraph.pl: the root
 * ("all") at the bottom, each frame as wide as the live bytes below it,
 * callers under callees, siblings in alphabetical order. The script and
 * style are embedded, nothing is fetched: hovering a frame shows its
 * function, bytes and share; clicking one zooms to it; "Reset zoom" or
 * clicking the root goes back.
 *
 * Each frame is a <g class="f"> with data-name, data-bytes, data-depth and
 * data-x / data-w (its start and width as fractions of the whole), so that
 * the script and a test read the layout back without guessing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "output.h"
#include "profile.h"

#define FG_WIDTH 1200
#define FG_PAD 10
#define FG_FRAME 16
#define FG_TOP 50
#define FG_BOTTOM 34
#define FG_FONT 12
#define FG_CHAR (FG_FONT * 0.59)
#define FG_MIN_PX 0.1 /* narrower frames are left out, as flamegraph.pl */

struct fg_node {
	const char *name; /* points into a zt_folded string */
	size_t len;
	__u64 bytes;
	struct fg_node *child;
	size_t nchild;
	size_t cap;
};

static struct fg_node *fg_child(struct fg_node *n, const char *name, size_t len)
{
	struct fg_node *c;
	size_t i;

	for (i = 0; i < n->nchild; i++)
		if (n->child[i].len == len &&
		    !memcmp(n->child[i].name, name, len))
			return &n->child[i];
	if (n->nchild == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 4;

		c = realloc(n->child, cap * sizeof(*c));
		if (!c)
			return NULL;
		n->child = c;
		n->cap = cap;
	}
	c = &n->child[n->nchild++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->len = len;
	return c;
}

static int fg_add(struct fg_node *root, const char *stack, __u64 bytes,
		  int *depth)
{
	struct fg_node *n = root;
	const char *p = stack, *semi;
	int d = 0;

	root->bytes += bytes;
	while (*p) {
		semi = strchr(p, ';');
		if (!semi)
			semi = p + strlen(p);
		n = fg_child(n, p, semi - p);
		if (!n)
			return -ENOMEM;
		n->bytes += bytes;
		d++;
		p = *semi ? semi + 1 : semi;
	}
	if (d > *depth)
		*depth = d;
	return 0;
}

static void fg_free(struct fg_node *n)
{
	size_t i;

	for (i = 0; i < n->nchild; i++)
		fg_free(&n->child[i]);
	free(n->child);
}

static void xml_text(FILE *f, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)s[i] >= 0x20)
				fputc(s[i], f);
		}
	}
}

/* flamegraph.pl's "mem" palette: greens, stable per name. */
static void fg_color(const char *name, size_t len, int *r, int *g, int *b)
{
	unsigned int h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	*r = 0;
	*g = 190 + h % 50;
	*b = (h >> 8) % 190;
}

struct fg_ctx {
	FILE *f;
	__u64 total;
	int height;
};

static void fg_frame(struct fg_ctx *c, const struct fg_node *n, int depth,
		     __u64 offset)
{
	double span = FG_WIDTH - 2 * FG_PAD;
	double fx = c->total ? (double)offset / c->total : 0;
	double fw = c->total ? (double)n->bytes / c->total : 1;
	double x = FG_PAD + fx * span, w = fw * span;
	double y = c->height - FG_BOTTOM - (depth + 1) * FG_FRAME;
	size_t chars = w / FG_CHAR, i;
	__u64 off = offset;
	int r, g, b;

	if (w < FG_MIN_PX)
		return;
	fg_color(n->name, n->len, &r, &g, &b);
	fprintf(c->f, "<g class=\"f\" data-name=\"");
	xml_text(c->f, n->name, n->len);
	fprintf(c->f,
		"\" data-bytes=\"%llu\" data-depth=\"%d\" data-x=\"%.9f\" data-w=\"%.9f\"><title>",
		(unsigned long long)n->bytes, depth, fx, fw);
	xml_text(c->f, n->name, n->len);
	fprintf(c->f, " (%llu bytes, %.2f%%)</title>",
		(unsigned long long)n->bytes, 100 * fw);
	fprintf(c->f,
		"<rect x=\"%.3f\" y=\"%.1f\" width=\"%.3f\" height=\"%d\" rx=\"2\" fill=\"rgb(%d,%d,%d)\"/>",
		x, y, w, FG_FRAME - 1, r, g, b);
	fprintf(c->f, "<text x=\"%.3f\" y=\"%.1f\">", x + 3,
		y + FG_FRAME - 4.5);
	if (chars > 3 && n->len > chars - 1) {
		xml_text(c->f, n->name, chars - 3);
		fputs("..", c->f);
	} else if (chars > 3) {
		xml_text(c->f, n->name, n->len);
	}
	fprintf(c->f, "</text></g>\n");
	for (i = 0; i < n->nchild; i++) {
		fg_frame(c, &n->child[i], depth + 1, off);
		off += n->child[i].bytes;
	}
}

static const char fg_style[] =
	"<style type=\"text/css\">\n"
	"text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n"
	".f text { pointer-events: none; }\n"
	".f:hover rect { stroke: #000; stroke-width: 0.5; cursor: pointer; }\n"
	"#title { font-size: 17px; text-anchor: middle; }\n"
	"#reset { cursor: pointer; }\n"
	"</style>\n";

/* Hover: details; click: zoom to the frame; reset: back to the root. */
static const char fg_script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"'use strict';\n"
	"var W, PAD, CH, details, reset, frames;\n"
	"function init() {\n"
	"  W = +document.documentElement.getAttribute('width');\n"
	"  PAD = 10; CH = 12 * 0.59;\n"
	"  details = document.getElementById('details');\n"
	"  reset = document.getElementById('reset');\n"
	"  frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
	"  frames.forEach(function (g) {\n"
	"    g.addEventListener('mouseover', function () { show(g); });\n"
	"    g.addEventListener('mouseout', function () { details.textContent = ' '; });\n"
	"    g.addEventListener('click', function () { zoom(g); });\n"
	"  });\n"
	"  reset.addEventListener('click', function () { zoom(null); });\n"
	"  zoom(null);\n"
	"}\n"
	"function show(g) {\n"
	"  var b = +g.dataset.bytes, w = +g.dataset.w;\n"
	"  details.textContent = 'Function: ' + g.dataset.name + ', ' +\n"
	"    b.toLocaleString('en-US') + ' bytes (' + (100 * w).toFixed(2) + '%)';\n"
	"}\n"
	"function label(g, w) {\n"
	"  var t = g.querySelector('text'), name = g.dataset.name;\n"
	"  var n = Math.floor(w / CH);\n"
	"  t.textContent = n <= 3 ? '' : name.length <= n - 1 ? name :\n"
	"    name.substring(0, n - 3) + '..';\n"
	"}\n"
	"function zoom(z) {\n"
	"  var x0 = 0, w0 = 1, d0 = 0, span = W - 2 * PAD;\n"
	"  if (z && +z.dataset.depth > 0) {\n"
	"    x0 = +z.dataset.x; w0 = +z.dataset.w; d0 = +z.dataset.depth;\n"
	"  }\n"
	"  reset.style.display = d0 ? 'inline' : 'none';\n"
	"  frames.forEach(function (g) {\n"
	"    var x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.depth;\n"
	"    var r = g.querySelector('rect'), t = g.querySelector('text');\n"
	"    var inside = x >= x0 - 1e-12 && x + w <= x0 + w0 + 1e-12;\n"
	"    var above = x <= x0 + 1e-12 && x + w >= x0 + w0 - 1e-12;\n"
	"    if (d >= d0 && inside) {\n"
	"      var px = PAD + (x - x0) / w0 * span, pw = w / w0 * span;\n"
	"      g.style.display = ''; g.style.opacity = 1;\n"
	"      r.setAttribute('x', px); r.setAttribute('width', pw);\n"
	"      t.setAttribute('x', px + 3); label(g, pw);\n"
	"    } else if (d < d0 && above) {\n"
	"      g.style.display = ''; g.style.opacity = 0.5;\n"
	"      r.setAttribute('x', PAD); r.setAttribute('width', span);\n"
	"      t.setAttribute('x', PAD + 3); label(g, span);\n"
	"    } else {\n"
	"      g.style.display = 'none';\n"
	"    }\n"
	"  });\n"
	"}\n"
	"window.addEventListener('load', init);\n"
	"]]></script>\n";

static void fg_svg(FILE *f, const struct zt_profile *p,
		   const struct fg_node *root, int depth)
{
	struct fg_ctx c = { .f = f, .total = root->bytes };
	char title[160];

	c.height = FG_TOP + (depth + 1) * FG_FRAME + FG_BOTTOM;
	fprintf(f,
		"<?xml version=\"1.0\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
		FG_WIDTH, c.height, FG_WIDTH, c.height);
	fputs(fg_style, f);
	fputs(fg_script, f);
	fprintf(f,
		"<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f8\"/>\n",
		FG_WIDTH, c.height);
	snprintf(title, sizeof(title),
		 "Live bytes by allocating stack: PID %d (%s)", p->pid,
		 p->comm);
	fprintf(f, "<text id=\"title\" x=\"%d\" y=\"24\">", FG_WIDTH / 2);
	xml_text(f, title, strlen(title));
	fprintf(f, "</text>\n");
	fprintf(f,
		"<text id=\"reset\" x=\"%d\" y=\"24\" style=\"display:none\">Reset zoom</text>\n",
		FG_PAD);
	fprintf(f,
		"<text id=\"total\" x=\"%d\" y=\"42\">%llu bytes live in %llu blocks%s</text>\n",
		FG_PAD, (unsigned long long)p->live_bytes,
		(unsigned long long)p->live_blocks,
		p->incomplete ? "; INCOMPLETE: some events were not recorded" :
				"");
	fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", FG_PAD,
		c.height - 12);
	fprintf(f, "<g id=\"frames\">\n");
	fg_frame(&c, root, 0, 0);
	fprintf(f, "</g>\n</svg>\n");
}

int flamegraph_write(const struct zt_profile *p, const char *path)
{
	struct fg_node root = { .name = "all", .len = 3 };
	struct zt_folded *v;
	char tmp[4096];
	size_t n, i;
	int err, depth = 0;
	FILE *f;

	err = folded_build(p, &v, &n);
	for (i = 0; !err && i < n; i++)
		err = fg_add(&root, v[i].stack, v[i].bytes, &depth);
	if (err) {
		p_err("cannot build the flame graph: %s", strerror(-err));
		goto out_free;
	}
	f = export_open(path, tmp, sizeof(tmp));
	if (!f) {
		err = -errno;
		goto out_free;
	}
	fg_svg(f, p, &root, depth);
	err = export_commit(f, tmp, path, ferror(f) ? -EIO : 0);
out_free:
	fg_free(&root);
	folded_free(v, n);
	return err;
}
