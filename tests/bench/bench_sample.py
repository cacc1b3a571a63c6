#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
#
# bench_sample.py - what production tracing costs: the same malloc-heavy
# work (bench_sample_work: zmalloc/zfree of a mixed size, 1 and 2 threads)
# untraced, under exact "ztrace leaks", and under "ztrace leaks --sample" at
# the target's default rate (one sample per 512 KiB), side by side in one
# run, interleaved, medians of REPS. ztrace attaches with -p before the
# work starts and reports after it ends, so only the work is timed.
#
# Measured: the work's wall time and CPU time (getrusage inside the
# target: the library's sampling, the uprobes and the BPF programs are all
# charged to it), ztrace's own CPU time over the work (/proc/PID/schedstat),
# and the BPF programs' run time (bpf_prog_info run_time_ns, with
# kernel.bpf_stats_enabled=1 for the run). The CPU cost of sampled tracing
# per allocated byte is then scaled to 100 MiB/s of allocation.
#
# Goals (issue 4): sampled slowdown under 1.02x; at 100 MiB/s of
# allocation, under 0.1% of one CPU.
#
# Usage: bench_sample.py ZTRACE WORK [OPS [REPS]]

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ZTRACE, WORK = (os.path.abspath(a) for a in sys.argv[1:3])
OPS = int(sys.argv[3]) if len(sys.argv) > 3 else 20000000
REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
EXACT_OPS = OPS // 10  # exact tracing is ~50x slower per event
RATE = 100 << 20  # the allocation rate the CPU share is stated at
STATS = "/proc/sys/kernel/bpf_stats_enabled"
TMP = tempfile.mkdtemp(prefix="zt-bench-sample-")
CONFIGS = [("untraced", None), ("exact", ["leaks"]),
           ("sampled", ["leaks", "--sample"])]


def read_line(f, pattern, what):
    rx = re.compile(pattern)
    while True:
        line = f.readline()
        if not line:
            sys.exit("bench_sample: %s ended before %r" % (what, pattern))
        m = rx.search(line)
        if m:
            return m


def sched_ns(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        return int(f.read().split()[0])


def run(threads, config, args):
    ops = EXACT_OPS if config == "exact" else OPS
    w = subprocess.Popen([WORK, str(threads), str(ops)], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pid = int(read_line(w.stdout, r"ready pid=(\d+)", "the work").group(1))
    z = None
    out = os.path.join(TMP, "%s-%d.json" % (config, time.monotonic_ns()))
    if args:
        z = subprocess.Popen([ZTRACE] + args + ["--json", "-o", out, "-p",
                                                str(pid)],
                             text=True, stderr=subprocess.PIPE)
        read_line(z.stderr, r"tracing PID", "ztrace")
        z0 = sched_ns(z.pid)
    w.stdin.write("go\n")
    w.stdin.flush()
    m = read_line(w.stdout, r"ops=(\d+) bytes=(\d+) wall_ns=(\d+) "
                  r"cpu_ns=(\d+)", "the work")
    r = dict(zip(("ops", "bytes", "wall_ns", "cpu_ns"),
                 (int(g) for g in m.groups())))
    r["ztrace_ns"] = r["bpf_ns"] = r["bpf_cnt"] = r["samples"] = 0
    if z:
        r["ztrace_ns"] = sched_ns(z.pid) - z0
        z.send_signal(signal.SIGINT)
        z.communicate(timeout=120)
        with open(out) as f:
            doc = [json.loads(line) for line in f if line.strip()][-1]
        r["bpf_ns"] = doc["bpf"]["run_time_ns"]
        r["bpf_cnt"] = doc["bpf"]["run_cnt"]
        if doc.get("sampled"):
            r["samples"] = doc["events"]["samples"]
    w.stdin.write("go\n")
    w.stdin.flush()
    w.communicate(timeout=60)
    return r


def median(rs, key, per=None):
    return statistics.median(r[key] / r[per] if per else r[key] for r in rs)


def report(threads, res):
    base = res["untraced"]
    b_wall = median(base, "wall_ns", "ops")
    b_cpu = median(base, "cpu_ns", "ops")
    print("\n%d thread%s: %d allocations and frees per run (exact: %d)" %
          (threads, "s" if threads > 1 else "", OPS, EXACT_OPS))
    print("  %-9s %11s %11s %9s %9s %10s %9s %10s" %
          ("config", "wall ns/op", "cpu ns/op", "wall", "cpu", "alloc MB/s",
           "samples", "bpf ns/run"))
    for config, _ in CONFIGS:
        rs = res[config]
        wall = median(rs, "wall_ns", "ops")
        cpu = median(rs, "cpu_ns", "ops")
        mbs = median(rs, "bytes") / median(rs, "wall_ns") * 1e9 / 1e6
        runs = median(rs, "bpf_cnt")
        print("  %-9s %11.1f %11.1f %8.3fx %8.3fx %10.0f %9d %10s" %
              (config, wall, cpu, wall / b_wall, cpu / b_cpu, mbs,
               median(rs, "samples"),
               "%.0f" % (median(rs, "bpf_ns") / runs) if runs else "-"))
    s = res["sampled"]
    target = median(s, "cpu_ns", "bytes") - median(base, "cpu_ns", "bytes")
    ztrace = median(s, "ztrace_ns", "bytes")
    bpf = median(s, "bpf_ns", "bytes")
    share = lambda per_byte: 100.0 * per_byte * RATE / 1e9
    print("  sampled tracing at 100 MiB/s of allocation (share of one CPU):")
    print("    target, all of it (sampling, uprobes, BPF)  %7.4f%%" %
          share(target))
    print("      of which the BPF programs                 %7.4f%%" %
          share(bpf))
    print("    ztrace's own process                        %7.4f%%  "
          "(mostly its one-time symbolizing of the first stacks)" %
          share(ztrace))
    print("    total                                       %7.4f%%  "
          "(goal < 0.1%%)" % share(target + ztrace))
    print("  sampled slowdown: %.3fx wall, %.3fx CPU  (goal < 1.02x); "
          "exact: %.2fx wall" %
          (median(s, "wall_ns", "ops") / b_wall,
           median(s, "cpu_ns", "ops") / b_cpu,
           median(res["exact"], "wall_ns", "ops") / b_wall))
    return share(target + ztrace)


def main():
    old = open(STATS).read().strip()
    with open(STATS, "w") as f:
        f.write("1")
    try:
        print("bench_sample: zmalloc + zfree of a mixed size (16 B - 4 KiB), "
              "-p attach, median of %d interleaved runs" % REPS)
        for threads in (1, 2):
            res = {c: [] for c, _ in CONFIGS}
            for _ in range(REPS):
                for config, args in CONFIGS:
                    res[config].append(run(threads, config, args))
            report(threads, res)
    finally:
        with open(STATS, "w") as f:
            f.write(old)


if __name__ == "__main__":
    main()
