#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
#
# run_export_tests.py - ztrace's exports on real processes: the pprof
# profile read back by Go's own decoder (go tool pprof -raw), folded stacks,
# the SVG flame graph parsed and rendered (rsvg-convert), /metrics of
# "ztrace serve" over real HTTP on 127.0.0.1 checked by promtool, "ztrace
# top" driven under tmux, and what "make install-ztrace" puts in place
# (man pages, bash completion). The workload is tests/bpf/zt_workload,
# whose allocations are known in advance.
#
# Usage: run_export_tests.py ZTRACE WORKLOAD LIBDIR [CASE...]
#
# A case skips only when this system cannot run BPF or lacks a tool; with
# ZTRACE_REQUIRE_BPF=1 it fails instead ("make deps" installs every tool).
# The last line is "N passed, N failed, N skipped".

import gzip
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ztest import Skip, check, eq, run_cases, within  # noqa: E402

ZTRACE, WORKLOAD, LIBDIR = (os.path.abspath(a) for a in sys.argv[1:4])
ONLY = sys.argv[4:]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = tempfile.mkdtemp(prefix="zt-export-tests-")


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip("%s is not installed: run make deps" % tool)
    return path


def out_path(name):
    return os.path.join(TMP, name)


# zt_workload basic, by allocating function: (allocs, bytes, live blocks,
# live bytes) as the kernel's per-stack totals count them. "cmd" runs it
# under ztrace; "pid" attaches at its first sync point (after pre_alloc).
SIZES = [(8, 10), (24, 20), (100, 30), (1000, 5), (4096, 3), (70000, 2)]
BY_FUNC = {
    "alloc_one": (sum(n for _, n in SIZES), sum(s * n for s, n in SIZES),
                  0, 0),
    "leak_alpha": (3, 3000, 3, 3000),
    "leak_beta": (5, 320, 5, 320),
    "realloc_source": (4, 64, 0, 0),
    "realloc_grow": (4, 80000, 4, 80000),
    "realloc_edges": (1, 200, 0, 0),
    "thread_main": (50, 12800, 0, 0),
    "leak_in_thread": (2, 10000, 2, 10000),
}
BY_FUNC_CMD = dict(BY_FUNC, pre_alloc=(7, 336, 0, 0))
LEAKS = {f: v[3] for f, v in BY_FUNC.items() if v[3]}
LIVE_BYTES = sum(LEAKS.values())
LIVE_BLOCKS = sum(v[2] for v in BY_FUNC.values())


def sync_used(text, name):
    m = re.findall(r"ZT_SYNC %s used_memory=(\d+)" % name, text)
    check(m, "workload never reached sync point %s: %r" % (name, text))
    return int(m[-1])


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True,
                         text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    check(m, "no build id in %s" % path)
    return m.group(1)


class Workload:
    """zt_workload --wait basic: stops at each sync point for a line."""

    def __init__(self):
        self.p = subprocess.Popen([WORKLOAD, "--wait", "basic"],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        self.pid = int(re.search(r"pid=(\d+)", line).group(1))

    def step(self):
        """Go on to the next sync point; returns its used_memory."""
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        return sync_used(self.p.stdout.readline(), r"\w+")

    def finish(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("go\n")
                self.p.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


# -------------------------------------------------------------- pprof
def pprof_raw(path):
    """go tool pprof -raw, parsed: samples, locations, mappings."""
    go = need("go")
    p = subprocess.run([go, "tool", "pprof", "-raw", "-symbolize=none",
                        path], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=os.environ.get("HOME", TMP)))
    eq(p.returncode, 0, "go tool pprof exit status (%s)" % p.stderr)
    text = p.stdout
    prof = {"text": text, "samples": [], "locs": {}, "maps": {}}
    section = None
    for line in text.splitlines():
        if line.startswith("PeriodType:"):
            prof["period_type"] = line.split(":", 1)[1].strip()
        elif line.startswith("Period:"):
            prof["period"] = int(line.split(":", 1)[1])
        elif line in ("Samples:", "Locations", "Mappings"):
            section = line
        elif section == "Samples:" and re.match(r"^\s*[a-z_]+/", line):
            prof["types"] = line.split()
        elif section == "Samples:" and re.match(r"^\s+\d+(\s+\d+)*:", line):
            vals, locs = line.split(":", 1)
            prof["samples"].append({"values": [int(v) for v in vals.split()],
                                    "locs": [int(v) for v in locs.split()],
                                    "labels": {}})
        elif section == "Samples:" and re.match(r"^\s+\w+:\[", line):
            k, v = line.strip().split(":", 1)
            prof["samples"][-1]["labels"][k] = v
        elif section == "Locations":
            m = re.match(r"^\s+(\d+): (0x[0-9a-f]+) M=(\d+) (\S+) (\S+):(\d+)",
                         line)
            if m:
                prof["locs"][int(m.group(1))] = {
                    "addr": int(m.group(2), 16), "map": int(m.group(3)),
                    "func": m.group(4), "file": m.group(5),
                    "line": int(m.group(6))}
        elif section == "Mappings":
            m = re.match(r"^(\d+): (0x[0-9a-f]+)/(0x[0-9a-f]+)/(0x[0-9a-f]+) "
                         r"(\S+) ([0-9a-f]*)", line)
            if m:
                prof["maps"][int(m.group(1))] = {"path": m.group(5),
                                                 "build_id": m.group(6)}
    check(prof["samples"], "no samples in %r" % text)
    return prof


def by_leaf(prof):
    """{leaf function: [4 values summed]}."""
    by = {}
    for s in prof["samples"]:
        loc = prof["locs"].get(s["locs"][0])
        check(loc, "sample without a symbolized leaf: %r" % s)
        v = by.setdefault(loc["func"], [0, 0, 0, 0])
        for i in range(4):
            v[i] += s["values"][i]
    return by


def check_pprof(prof, want):
    eq(prof["types"], ["alloc_objects/count", "alloc_space/bytes",
                       "inuse_objects/count", "inuse_space/bytes"],
       "sample types")
    eq(prof["period_type"], "space bytes", "period type")
    eq(prof["period"], 1, "period of an exact profile")
    got = {f: tuple(v) for f, v in by_leaf(prof).items()}
    eq(got, want, "values by leaf function")
    for s in prof["samples"]:
        avg = s["values"][1] // s["values"][0] if s["values"][0] else 0
        eq(s["labels"].get("bytes"), "[%d]" % avg if avg else None,
           "bytes label of %r" % s)
    wl = [m for m in prof["maps"].values()
          if os.path.realpath(m["path"]) == os.path.realpath(WORKLOAD)]
    check(wl, "no mapping of the workload: %r" % prof["maps"])
    eq(wl[0]["build_id"], build_id(WORKLOAD), "workload's build id")
    for loc in prof["locs"].values():
        if loc["func"] in want:
            check(loc["file"].endswith("zt_workload.c") and loc["line"] > 0,
                  "leaf location without file:line: %r" % loc)
            check(prof["maps"][loc["map"]]["path"].endswith("zt_workload"),
                  "leaf location in the wrong mapping: %r" % loc)


def test_pprof_record_cmd():
    """record -o heap.pb.gz -- CMD: Go's decoder reads the exact values."""
    path = out_path("heap.pb.gz")
    p = subprocess.run([ZTRACE, "record", "-o", path, "--", WORKLOAD,
                        "basic"], capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    with open(path, "rb") as f:
        eq(f.read(2), b"\x1f\x8b", "gzip magic")
    check_pprof(pprof_raw(path), BY_FUNC_CMD)


def test_pprof_leaks_pid():
    """leaks --pprof -p PID: the same figures as its JSON report."""
    path, jpath = out_path("leaks.pb.gz"), out_path("leaks.json")
    w = Workload()
    z = subprocess.Popen([ZTRACE, "leaks", "--json", "-o", jpath, "--top",
                          "0", "--pprof", path, "-p", str(w.pid)],
                         stderr=subprocess.PIPE, text=True)
    try:
        check("tracing PID" in z.stderr.readline(), "ztrace did not attach")
        w.step()
        z.send_signal(2)
        eq(z.wait(30), 0, "ztrace exit status")
    finally:
        if z.poll() is None:
            z.kill()
        eq(w.finish(), 0, "workload exit status")
    prof = pprof_raw(path)
    check_pprof(prof, {f: v for f, v in BY_FUNC.items()})
    import json
    doc = [json.loads(l) for l in open(jpath) if l.strip()][-1]
    inuse = {f: v[3] for f, v in by_leaf(prof).items() if v[3]}
    js = {}
    for leak in doc["leaks"]["top"]:
        f = leak["frames"][0]["func"]
        js[f] = js.get(f, 0) + leak["bytes"]
    eq(inuse, js, "pprof inuse_space vs the leaks report")


def test_pprof_sampled():
    """record --sample: Go's period (the mean interval), scaled values."""
    path = out_path("sampled.pb.gz")
    p = subprocess.run([ZTRACE, "record", "--sample=4K", "-o", path, "--",
                        WORKLOAD, "basic"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ,
                                            ZMALLOC_SAMPLE_SEED="1"))
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    prof = pprof_raw(path)
    eq(prof["period_type"], "space bytes", "period type")
    eq(prof["period"], 4096, "period: the mean sampling interval")
    # A 70000-byte block is sampled with p = 1 - exp(-70000/4096), its
    # weight 70000 / p: both blocks, scaled to 140000 bytes exactly.
    big = [s for s in prof["samples"] if s["labels"].get("bytes") ==
           "[70000]"]
    eq([s["values"] for s in big], [[2, 140000, 0, 0]], "70000-byte blocks")
    grow = by_leaf(prof).get("realloc_grow")
    check(grow and grow[2] == 4 and abs(grow[3] - 80000) < 8000,
          "realloc_grow's estimate %r, truth 4 blocks, 80000 bytes" % grow)


# ------------------------------------------------------- flame graphs
def test_folded_and_svg():
    """Folded stacks root first; the SVG's widths follow the bytes."""
    rsvg = need("rsvg-convert")
    folded, svg, png = (out_path("heap.folded"), out_path("heap.svg"),
                        out_path("heap.png"))
    p = subprocess.run([ZTRACE, "record", "--folded", folded, "--svg", svg,
                        "--", WORKLOAD, "basic"], capture_output=True,
                       text=True, timeout=60)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    lines = {}
    for line in open(folded):
        stack, n = line.rstrip("\n").rsplit(" ", 1)
        lines[stack] = int(n)
    leaves = {}
    for stack, n in lines.items():
        frames = stack.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
        if frames[-1] in ("leak_alpha", "leak_beta", "realloc_grow"):
            check(frames.index("main") < frames.index("run_basic"),
                  "folded stack not root first: %s" % stack)
        if frames[-1] == "leak_in_thread":
            eq(frames[-2:], ["thread_main", "leak_in_thread"],
               "thread stack root first")
    eq(leaves, LEAKS, "folded live bytes by leaf")

    tree = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    width = float(tree.get("width"))
    frames = []
    for g in tree.iter(ns + "g"):
        if g.get("class") != "f":
            continue
        rect = g.find(ns + "rect")
        frames.append({"name": g.get("data-name"),
                       "bytes": int(g.get("data-bytes")),
                       "depth": int(g.get("data-depth")),
                       "x": float(rect.get("x")),
                       "w": float(rect.get("width")),
                       "title": g.find(ns + "title").text,
                       "label": g.find(ns + "text").text or ""})
    root = [f for f in frames if f["depth"] == 0]
    eq([(f["name"], f["bytes"]) for f in root], [("all", LIVE_BYTES)],
       "root frame")
    span = root[0]["w"]
    eq(round(span), width - 20, "root spans the graph")
    for f in frames:
        check(abs(f["w"] - span * f["bytes"] / LIVE_BYTES) < 0.01,
              "width of %s not in proportion to its bytes" % f)
        check(re.search(r"\(%d bytes, [\d.]+%%\)" % f["bytes"], f["title"]),
              "tooltip of %r" % f)
    leafs = {}
    for f in frames:
        if f["name"] in LEAKS:
            leafs[f["name"]] = leafs.get(f["name"], 0) + f["bytes"]
    eq(leafs, LEAKS, "SVG leaf frames")
    big = [f for f in frames if f["name"] == "realloc_grow"][0]
    check(big["label"] == "realloc_grow", "label %r" % big["label"])
    text = open(svg).read()
    check("<script" in text and "addEventListener('click'" in text,
          "no embedded script")
    check(not re.search(r"(href|src)\s*=", text),
          "the SVG refers to something outside itself")
    # Rendered: the frame of realloc_grow is painted, the margin is not.
    r = subprocess.run([rsvg, "-o", png, svg], capture_output=True,
                       text=True)
    eq(r.returncode, 0, "rsvg-convert (%s)" % r.stderr)
    img = read_png(png)
    eq((img["w"], img["h"]), (int(width), int(float(tree.get("height")))),
       "rendered size")
    y = int(float([g for g in tree.iter(ns + "g")
                   if g.get("data-name") == "realloc_grow"][0]
                  .find(ns + "rect").get("y")) + 2)
    px = img["pixel"](int(big["x"] + big["w"] / 2), y)
    check(px[1] > 150 and px[0] < 60, "realloc_grow's frame not green: %r" %
          (px,))
    eq(img["pixel"](3, y)[:3], (248, 248, 248), "margin pixel")


def read_png(path):
    """A minimal PNG decoder (8-bit RGB or RGBA, not interlaced)."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            check(depth == 8 and ctype in (2, 6) and not inter,
                  "PNG format %d/%d" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return {"w": w, "h": h,
            "pixel": lambda x, y: tuple(rows[y][x * bpp:x * bpp + bpp])}


# --------------------------------------------------------- prometheus
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of the exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        check(m, "unparsable line %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def promtool_check(text):
    promtool = need("promtool")
    p = subprocess.run([promtool, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    eq((p.returncode, p.stdout + p.stderr), (0, ""), "promtool check metrics")


def start_serve(args):
    port = free_port()
    z = subprocess.Popen([ZTRACE, "serve", "--listen", "127.0.0.1:%d" % port]
                         + args, stderr=subprocess.PIPE, text=True)
    err = ""
    while "metrics on" not in err:
        line = z.stderr.readline()
        check(line, "ztrace serve did not start: %r" % err)
        err += line
    return z, "http://127.0.0.1:%d" % port, err


def stop(z):
    z.send_signal(15)
    try:
        return z.wait(20)
    except subprocess.TimeoutExpired:
        z.kill()
        return z.wait()


def test_serve_metrics():
    """serve -p PID: exact figures, a real histogram, promtool agrees."""
    w = Workload()
    z = None
    try:
        z, base, _ = start_serve(["-p", str(w.pid)])
        used = w.step()
        status, ctype, text = get(base + "/metrics")
        eq(status, 200, "GET /metrics")
        check(ctype.startswith("text/plain; version=0.0.4"),
              "content type %r" % ctype)
        promtool_check(text)
        m = parse_metrics(text)
        lab = frozenset({("pid", str(w.pid)), ("comm", "zt_workload")})

        def val(name, extra=()):
            key = (name, lab | frozenset(extra))
            check(key in m, "%s missing: %s" % (name, text[:2000]))
            return m[key]
        eq(val("ztrace_used_memory_bytes"), used, "used_memory")
        check(val("ztrace_rss_bytes") > 0, "RSS")
        eq(round(val("ztrace_fragmentation_ratio"), 6),
           round(val("ztrace_rss_bytes") / used, 6), "fragmentation ratio")
        eq(val("ztrace_live_bytes"), LIVE_BYTES, "live bytes")
        eq(val("ztrace_live_blocks"), LIVE_BLOCKS, "live blocks")
        eq(val("ztrace_allocations_total"), 135, "allocations")
        eq(val("ztrace_frees_total"), 128, "frees")
        eq(val("ztrace_reallocs_total"), 4, "reallocs")
        eq(val("ztrace_drops_total", [("reason", "live_map_full")]), 0,
           "drops")
        eq(m[("ztrace_targets", frozenset())], 1, "targets")
        # The allocation histogram: every block that entered, by size.
        sizes = ([(s, n) for s, n in SIZES] + [(1000, 3), (64, 5),
                 (5000, 2), (16, 4), (20000, 4), (200, 1), (256, 50)])
        prev = -1
        for b in range(41):
            le = (1 << b) - 1
            want = sum(n for s, n in sizes if s <= le)
            got = val("ztrace_allocation_size_bytes_bucket",
                      [("le", str(le))])
            eq(got, want, "bucket le=%d" % le)
            check(got >= prev, "buckets not cumulative")
            prev = got
        count = sum(n for _, n in sizes)
        eq(val("ztrace_allocation_size_bytes_bucket", [("le", "+Inf")]),
           count, "bucket +Inf")
        eq(val("ztrace_allocation_size_bytes_count"), count, "_count")
        eq(val("ztrace_allocation_size_bytes_sum"),
           sum(s * n for s, n in sizes), "_sum")
        eq(get(base + "/nothing")[0], 404, "GET /nothing")
        eq(stop(z), 0, "ztrace serve exit status")
        check(w.p.poll() is None, "the workload did not survive ztrace")
    finally:
        if z and z.poll() is None:
            z.kill()
        eq(w.finish(), 0, "workload exit status")


def test_serve_sampled():
    """serve --sample: estimates under the same names, with their samples;
    the exact-only series absent; the process's rate put back after."""
    env = dict(os.environ, ZMALLOC_SAMPLE_SEED="3")
    w = subprocess.Popen([WORKLOAD, "--wait", "sample"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    z = None

    def step(pattern):
        w.stdin.write("go\n")
        w.stdin.flush()
        while True:
            line = w.stdout.readline()
            check(line, "the workload ended before %r" % pattern)
            if re.search(pattern, line):
                return line

    try:
        pid = int(re.search(r"pid=(\d+)", w.stdout.readline()).group(1))
        z, base, err = start_serve(["--sample=32K", "-p", str(pid)])
        check("serving PID %d" % pid in err, "not serving: %r" % err)
        step(r"ZT_SYNC end")
        status, _, text = get(base + "/metrics")
        eq(status, 200, "GET /metrics")
        promtool_check(text)
        m = parse_metrics(text)
        lab = frozenset({("pid", str(pid)), ("comm", "zt_workload")})

        def val(name, extra=()):
            key = (name, lab | frozenset(extra))
            check(key in m, "%s missing: %s" % (name, text[:2000]))
            return m[key]
        leaked = 256 * 262144 + 512 * 196608  # leak_sample_a and _b
        within(val("ztrace_live_bytes"), leaked, 0.10, "live bytes")
        within(val("ztrace_live_blocks"), 262144 + 196608, 0.10,
               "live blocks")
        eq(val("ztrace_sample_mean_bytes"), 32768, "rate in effect")
        check(val("ztrace_samples_total") > 10000, "samples")
        check(0 < val("ztrace_live_samples") < val("ztrace_samples_total"),
              "live samples")
        blocks = 2796202 + 671088 + 89478 + 22369 + 3355 + 447 + \
            262144 + 196608
        within(val("ztrace_allocation_size_bytes_count"), blocks, 0.10,
               "allocations in the histogram")
        within(val("ztrace_allocations_total"), blocks, 0.10, "allocations")
        for name in ("ztrace_reallocs_total", "ztrace_live_usable_bytes",
                     "ztrace_missed_frees_total"):
            check(not any(k[0] == name for k in m),
                  "%s shown in sampled mode" % name)
        eq(stop(z), 0, "ztrace serve exit status")
        after = step(r"ZT_SYNC after")
        check("sampled=0 " in after and "sample_bytes=524288 " in after,
              "sampling not off, or the rate not put back: %r" % after)
    finally:
        if z and z.poll() is None:
            z.kill()
        if w.poll() is None:
            w.kill()
        w.wait()


def test_serve_several_and_all():
    """-p A -p B, then --all: each process labelled; an exited one leaves."""
    a, b = Workload(), Workload()
    z = None
    try:
        z, base, _ = start_serve(["-p", str(a.pid), "-p", str(b.pid)])
        a.step()
        text = get(base + "/metrics")[2]
        promtool_check(text)
        m = parse_metrics(text)
        for w, live in ((a, LIVE_BYTES), (b, 0)):
            key = ("ztrace_live_bytes", frozenset({("pid", str(w.pid)),
                                                   ("comm", "zt_workload")}))
            eq(m.get(key), live, "live bytes of PID %d" % w.pid)
        eq(stop(z), 0, "ztrace serve exit status")
        z, base, err = start_serve(["--all"])
        pids = set(re.findall(r"serving PID (\d+)", err))
        text = get(base + "/metrics")[2]
        promtool_check(text)
        for w in (a, b):
            check('ztrace_live_bytes{pid="%d"' % w.pid in text,
                  "--all does not serve PID %d: %s" % (w.pid, err))
        b.step()
        eq(b.finish(), 0, "workload exit status")
        end = time.monotonic() + 5
        while ('pid="%d"' % b.pid in get(base + "/metrics")[2] and
               time.monotonic() < end):
            time.sleep(0.2)
        check('pid="%d"' % b.pid not in get(base + "/metrics")[2],
              "an exited process is still served")
        check(pids, "no PIDs served")
        eq(stop(z), 0, "ztrace serve exit status")
    finally:
        if z and z.poll() is None:
            z.kill()
        a.finish()
        b.finish()


# ----------------------------------------------------------- live view
def tmux(*args):
    return subprocess.run(["tmux", "-L", "zt-export-tests"] + list(args),
                          capture_output=True, text=True, timeout=10)


def screen():
    return tmux("capture-pane", "-p", "-t", "zt").stdout


def wait_screen(pattern, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = screen()
        m = re.search(pattern, text, re.M)
        if m:
            return text, m
        time.sleep(0.2)
    raise AssertionError("screen never showed %r:\n%s" % (pattern, screen()))


def first_stack(text):
    rows = text.split("STACK (allocating function first)", 1)[1]
    m = re.search(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\w+)", rows, re.M)
    check(m, "no stack rows:\n%s" % text)
    return m.group(4), [int(m.group(i)) for i in (1, 2, 3)]


def test_top_tmux():
    """top -p PID under tmux: figures, sizes, stacks; s, p and q work."""
    need("tmux")
    w = Workload()
    status = out_path("top.status")
    try:
        cmd = "%s top -p %d; echo $? > %s" % (ZTRACE, w.pid, status)
        r = tmux("new-session", "-d", "-s", "zt", "-x", "160", "-y", "50",
                 "env LANG=C.UTF-8 " + cmd)
        eq(r.returncode, 0, "tmux new-session (%s)" % r.stderr)
        wait_screen(r"ztrace top: PID %d \(zt_workload\)" % w.pid)
        used = w.step()
        text, _ = wait_screen(r"^\s+80000\s+4\s+4\s+realloc_grow")
        check(re.search(r"used_memory\s+%s" %
                        re.escape("%.1f KiB" % (used / 1024)), text),
              "used_memory not shown:\n%s" % text)
        check(re.search(r"live bytes\s+91\.1 KiB \S*[\u2581-\u2588]", text),
              "live bytes and sparkline:\n%s" % text)
        check("live blocks %d, allocs 135, frees 128" % LIVE_BLOCKS in text,
              "counts:\n%s" % text)
        check(re.search(r"\[256 B, 512 B\)\s+50 #+", text),
              "size histogram:\n%s" % text)
        eq(first_stack(text), ("realloc_grow", [80000, 4, 4]),
           "top stack by live bytes")
        for f in LEAKS:
            check(re.search(r"^\s+\d+\s+\d+\s+\d+\s+%s \(zt_workload\.c:\d+\)"
                            % f, text, re.M), "%s not shown" % f)
        tmux("send-keys", "-t", "zt", "s")
        text, _ = wait_screen(r"sort: live blocks")
        eq(first_stack(text), ("leak_beta", [320, 5, 5]), "top by blocks")
        tmux("send-keys", "-t", "zt", "s")
        text, _ = wait_screen(r"sort: allocs")
        eq(first_stack(text), ("thread_main", [0, 0, 50]), "top by allocs")
        tmux("send-keys", "-t", "zt", "p")
        wait_screen(r"\[PAUSED\]")
        tmux("send-keys", "-t", "zt", "q")
        end = time.monotonic() + 10
        while not os.path.exists(status) and time.monotonic() < end:
            time.sleep(0.1)
        eq(open(status).read().strip(), "0", "ztrace top exit status")
        check(w.p.poll() is None, "the workload did not survive ztrace")
    finally:
        tmux("kill-server")
        eq(w.finish(), 0, "workload exit status")


# ------------------------------------------------- install, man, bash
def test_install_man_and_completion():
    """install-ztrace: man pages for each command, bash completion."""
    dest = out_path("destdir")
    p = subprocess.run(["make", "-s", "-C", ROOT, "install-ztrace",
                        "DESTDIR=" + dest, "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=300)
    eq(p.returncode, 0, "make install-ztrace (%s)" % p.stderr[-2000:])
    man8 = os.path.join(dest, "usr/share/man/man8")
    for page in ("ztrace", "ztrace-hist", "ztrace-leaks", "ztrace-stat",
                 "ztrace-record", "ztrace-serve", "ztrace-top"):
        path = os.path.join(man8, page + ".8")
        check(os.path.exists(path), "%s not installed" % path)
        r = subprocess.run(["man", "-l", "-P", "cat", path],
                           capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80"))
        eq(r.returncode, 0, "man %s" % page)
        check("ztrace" in r.stdout, "%s renders nothing" % page)
    comp = os.path.join(dest, "usr/share/bash-completion/completions/ztrace")
    check(os.path.exists(comp), "bash completion not installed")

    def complete(line):
        words = line.split(" ")
        script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; '
                  'COMP_LINE="%s"; COMP_POINT=${#COMP_LINE}; _ztrace; '
                  'printf "%%s\\n" "${COMPREPLY[@]}"' %
                  (comp, " ".join("'%s'" % x for x in words),
                   len(words) - 1, line))
        r = subprocess.run(["bash", "-c", script], capture_output=True,
                           text=True)
        eq(r.returncode, 0, "completion of %r (%s)" % (line, r.stderr))
        return set(r.stdout.split())
    eq(complete("ztrace "), {"hist", "leaks", "stat", "record", "serve",
                             "top", "noop", "help", "--help"}, "commands")
    check({"--pprof", "--folded", "--svg", "--min-age"} <=
          complete("ztrace leaks --"), "leaks options")
    check({"--listen", "--all", "--pid"} <= complete("ztrace serve --"),
          "serve options")
    eq(complete("ztrace noop --"), {"--pid", "--duration", "--sample",
                                    "--verbose", "--help"}, "noop options")
    check(not {"--json", "--top"} & complete("ztrace record --"),
          "record offers what it refuses")
    check(not {"--json", "--output", "--min-age", "--top"} &
          complete("ztrace top --"), "top offers what it refuses")
    check(str(os.getpid()) in complete("ztrace top -p "), "PIDs after -p")


if __name__ == "__main__":
    sys.exit(run_cases(globals(), ONLY))
