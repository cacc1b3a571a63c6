#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
#
# run_tests.py - the BPF suite: real programs on real processes. ztrace
# traces tests/bpf/zt_workload, whose every allocation is known in advance
# (EXPECT below mirrors its tables), and each case asserts exact figures
# from ztrace's --json reports.
#
# Usage: run_tests.py ZTRACE WORKLOAD LIBDIR [CASE...]
#
# A case skips only when this system cannot run BPF (not root, no BTF, no
# uprobes); with ZTRACE_REQUIRE_BPF=1 it fails instead. The last line is "N passed, N failed, N skipped".

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ztest import Skip, check, eq, run_cases, within  # noqa: E402

ZTRACE, WORKLOAD, LIBDIR = (os.path.abspath(a) for a in sys.argv[1:4])
ONLY = sys.argv[4:]
LIB = os.path.realpath(os.path.join(LIBDIR, "libzmalloc.so.1"))
STATIC_WORKLOAD = WORKLOAD + "_static"
TMP = tempfile.mkdtemp(prefix="zt-bpf-tests-")


def bucket(size):
    """bpftrace's hist() bucket: 0 for 0, else 1 + floor(log2(size))."""
    return size.bit_length()


def hist_of(pairs):
    """{bucket: [count, bytes]} of (size, blocks) pairs."""
    h = {}
    for size, n in pairs:
        b = h.setdefault(bucket(size), [0, 0])
        b[0] += n
        b[1] += n * size
    return h


# zt_workload basic, as its tables say.
PRE = [(48, 7)]
SIZES = [(8, 10), (24, 20), (100, 30), (1000, 5), (4096, 3), (70000, 2)]
LEAKS = {  # function: (bytes, blocks)
    "leak_alpha": (3000, 3),
    "leak_beta": (320, 5),
    "realloc_grow": (80000, 4),
    "leak_in_thread": (10000, 2),
}
MOVED_FROM = [(16, 4)]
MOVED_TO = [(20000, 4)]
EDGE = [(200, 1)]
SHARED = [(256, 50)]
LEAK_PAIRS = [(1000, 3), (64, 5), (5000, 2)]

ALLOC_AFTER_PRE = (SIZES + LEAK_PAIRS + MOVED_FROM + MOVED_TO + EDGE +
                   SHARED)
FREE_AFTER_PRE = SIZES + MOVED_FROM + EDGE + SHARED
EXPECT = {
    "cmd": {"alloc": hist_of(PRE + ALLOC_AFTER_PRE),
            "free": hist_of(PRE + FREE_AFTER_PRE),
            "allocs": 142, "frees": 128, "reallocs": 4},
    "pid": {"alloc": hist_of(ALLOC_AFTER_PRE),
            "free": hist_of(FREE_AFTER_PRE),
            "allocs": 135, "frees": 128, "reallocs": 4},
}
# zt_workload sample, as its tables say; the --sample tests fix the seed.
SAMPLE_CHURN = [(24, 2796202), (200, 671088), (1500, 89478), (6000, 22369),
                (40000, 3355), (300000, 447)]
SAMPLE_LEAKS = {"leak_sample_a": (256, 262144),  # 64 MiB
                "leak_sample_b": (512, 196608)}  # 96 MiB
# After its last sync point, still traced under -- CMD: allocated and freed.
SAMPLE_AFTER = [(256, 100000)]
SAMPLE_SEED = "1"
# 32 KiB between samples: a 64 MiB group then has about 2048 samples, and
# the relative standard error of its estimate is sqrt(32K / 64M) = 2.2%,
# so 10% is a 4.5-sigma bound. (At the default 512 KiB it would be 8.8%:
# a 10% bound would fail about one run in four, whatever the seed.)
SAMPLE_RATE = 32768
SAMPLE_ENV = dict(os.environ, ZMALLOC_SAMPLE_SEED=SAMPLE_SEED)
SAMPLE_PROBES = ("sample_alloc", "sample_free")
EXACT_PROBES = ("alloc", "free", "realloc")

LIVE_BLOCKS = sum(b for _, b in LEAKS.values())
LIVE_BYTES = sum(n for n, _ in LEAKS.values())


# ------------------------------------------------------------- helpers
def out_path(name):
    return os.path.join(TMP, name)


def docs(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def final_doc(path):
    ds = [d for d in docs(path) if d.get("final")]
    check(ds, "no final report in %s: %s" % (path, open(path).read()))
    return ds[-1]


def sync_used(text, name):
    m = re.findall(r"ZT_SYNC %s used_memory=(\d+)" % name, text)
    check(m, "workload never reached sync point %s: %r" % (name, text))
    return int(m[-1])


def run_cmd(mode, args, extra=(), timeout=60):
    """ztrace MODE --json -o FILE EXTRA -- ARGS; returns (FILE, proc)."""
    path = out_path("%s-%d.json" % (mode, time.monotonic_ns()))
    cmd = [ZTRACE, mode, "--json", "-o", path] + list(extra) + ["--"] + args
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    return path, p


class Proc:
    """A process whose output we can wait for, read without buffering."""

    def __init__(self, cmd, stdin=subprocess.PIPE, env=None):
        self.p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, bufsize=0, env=env)
        self.text = {"out": "", "err": ""}
        self.open = {self.p.stdout.fileno(): "out",
                     self.p.stderr.fileno(): "err"}

    def _read(self, timeout):
        ready, _, _ = select.select(list(self.open), [], [], timeout)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                self.text[self.open[fd]] += data.decode(errors="replace")
            else:
                del self.open[fd]

    def wait_for(self, pattern, timeout=20, stream="out"):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while not rx.search(self.text[stream]):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r in %r" %
                                     (pattern, self.text))
            if not self.open:
                raise AssertionError("exited before %r: %r" %
                                     (pattern, self.text))
            self._read(left)
        return rx.search(self.text[stream])

    def send(self, line="go"):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()
        self.p.stdin = None

    def finish(self, timeout=30):
        end = time.monotonic() + timeout
        if self.p.stdin:
            self.close_stdin()
        while self.open and time.monotonic() < end:
            self._read(end - time.monotonic())
        return self.p.wait(max(end - time.monotonic(), 0.1))


def hist_map(h):
    return {b["bucket"]: [b["count"], b["bytes"]] for b in h["buckets"]}


def check_hist(doc, want, window="since_attach"):
    h = doc["hist"][window]
    eq(hist_map(h["alloc"]), want["alloc"], "alloc histogram")
    eq(hist_map(h["free"]), want["free"], "free histogram")
    eq(doc["events"]["allocs"], want["allocs"], "alloc events")
    eq(doc["events"]["frees"], want["frees"], "free events")
    eq(doc["events"]["reallocs"], want["reallocs"], "realloc events")


def leaks_by_func(doc):
    """{first frame's function: [bytes, blocks]} over the leak stacks."""
    by = {}
    for leak in doc["leaks"]["top"]:
        check(leak["frames"], "leak without frames: %r" % leak)
        func = leak["frames"][0]["func"]
        v = by.setdefault(func, [0, 0])
        v[0] += leak["bytes"]
        v[1] += leak["blocks"]
    return by


def check_leaks(doc):
    want = {f: list(v) for f, v in LEAKS.items()}
    eq(leaks_by_func(doc), want, "leaks by first frame")
    eq(doc["leaks"]["blocks"], LIVE_BLOCKS, "leaked blocks")
    eq(doc["leaks"]["bytes"], LIVE_BYTES, "leaked bytes")
    for leak in doc["leaks"]["top"]:
        f = leak["frames"][0]
        check(f["file"] and f["file"].endswith("zt_workload.c") and
              f["line"] > 0, "first frame has no file:line: %r" % f)
        eq(leak["stack_live_blocks"], leak["blocks"],
           "per-stack live blocks, kernel totals vs live table")
        eq(leak["stack_live_bytes"], leak["bytes"],
           "per-stack live bytes, kernel totals vs live table")
        check(leak["frames_dropped"] >= 1,
              "libzmalloc frames were not dropped: %r" % leak)
        check(not any(fr["func"] and fr["func"].startswith("zm_")
                      for fr in leak["frames"]),
              "a zm_ frame is left in %r" % leak)


def check_clean(doc):
    eq(doc["complete"], True, "report complete")
    eq(doc["drops"]["live_map_full"], 0, "live map drops")
    eq(doc["drops"]["stack_error"] + doc["drops"]["stack_collision"], 0,
       "stack drops")


def check_used_memory(doc, used):
    eq(doc["target"]["used_memory"], used,
       "used_memory shown vs the workload's own")
    check(doc["target"]["rss"] and doc["target"]["rss"] > 0, "RSS shown")
    check(doc["target"]["rss_per_used_memory"] is not None or used == 0,
          "RSS/used_memory shown")


def semaphores(names=("alloc", "free", "realloc", "oom")):
    """Link-time addresses of the semaphores of the probes NAMES."""
    out = subprocess.run(["readelf", "-n", LIB], capture_output=True,
                         text=True).stdout
    sites = re.findall(r"Provider: zmalloc\s+Name: (\w+)\s+Location: \S+, "
                       r"Base: \S+, Semaphore: (0x[0-9a-f]+)", out)
    return sorted(set(int(sem, 16) for name, sem in sites if name in names))


def semaphore_values(pid, names=("alloc", "free", "realloc", "oom")):
    base = None
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == LIB \
                    and int(fields[2], 16) == 0:
                base = int(fields[0].split("-")[0], 16)
                break
    check(base is not None, "libzmalloc not mapped in %d" % pid)
    vals = []
    with open("/proc/%d/mem" % pid, "rb") as mem:
        for addr in semaphores(names):
            mem.seek(base + addr)
            vals.append(int.from_bytes(mem.read(2), "little"))
    return vals


# --------------------------------------------------------------- cases
def test_cmd_hist_exact():
    """-- CMD: exact histograms, events, live bytes, used_memory, 2 threads."""
    path, p = run_cmd("hist", [WORKLOAD, "basic"])
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    check_hist(doc, EXPECT["cmd"])
    check_clean(doc)
    used = sync_used(p.stdout, "end")
    check_used_memory(doc, used)
    eq(doc["live"]["blocks"], LIVE_BLOCKS, "live blocks")
    eq(doc["live"]["bytes"], LIVE_BYTES, "live bytes")
    eq(doc["live"]["usable"], used, "BPF live usable == used_memory")
    eq(doc["untracked_frees"]["count"], 0, "untracked frees")
    eq(doc["end"], "target exited with status 0", "end of tracing")


def test_cmd_libbpf_attach_fallback():
    """Without uprobe_multi: libbpf's per-site attachment, same figures."""
    env = dict(os.environ, ZTRACE_NO_UPROBE_MULTI="1")
    path = out_path("fallback.json")
    p = subprocess.run([ZTRACE, "hist", "--json", "-o", path, "--", WORKLOAD,
                        "basic"], env=env, capture_output=True, text=True,
                       timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    check_hist(doc, EXPECT["cmd"])
    check_used_memory(doc, sync_used(p.stdout, "end"))


def test_cmd_leaks_exact():
    """-- CMD: leak stacks name the leaking functions, exact bytes, blocks."""
    path, p = run_cmd("leaks", [WORKLOAD, "basic"], ["--top", "0"])
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    check_leaks(doc)
    check_clean(doc)
    check_used_memory(doc, sync_used(p.stdout, "end"))
    funcs = set(leaks_by_func(doc))
    check("realloc_source" not in funcs,
          "a moved block is still charged to its old stack")


def test_cmd_no_leak_when_all_freed():
    path, p = run_cmd("leaks", [WORKLOAD, "noleak"], ["--top", "0"])
    eq(p.returncode, 0, "exit status")
    doc = final_doc(path)
    eq(doc["leaks"]["blocks"], 0, "leaked blocks")
    eq(doc["leaks"]["top"], [], "leak stacks")
    eq(doc["live"]["blocks"], 0, "live blocks")
    check_used_memory(doc, sync_used(p.stdout, "end"))
    eq(doc["target"]["used_memory"], 0, "used_memory after all frees")


def test_cmd_min_age():
    path, p = run_cmd("leaks", [WORKLOAD, "basic"], ["--min-age", "3600"])
    doc = final_doc(path)
    eq(doc["leaks"]["blocks"], 0, "blocks older than an hour")
    eq(doc["leaks"]["young_blocks"], LIVE_BLOCKS, "younger blocks")


def test_cmd_realloc_moves():
    """A realloc is one move: old leaves, new enters with the new stack."""
    path, p = run_cmd("leaks", [WORKLOAD, "basic"], ["--top", "0"])
    doc = final_doc(path)
    moved = [lk for lk in doc["leaks"]["top"]
             if lk["frames"][0]["func"] == "realloc_grow"]
    eq(sum(lk["blocks"] for lk in moved), 4, "moved blocks")
    eq(sum(lk["bytes"] for lk in moved), 80000, "moved bytes")
    eq(doc["events"]["reallocs"], 4, "realloc events")
    eq(doc["missed_frees"]["count"], 0, "missed frees")


def test_cmd_missed_free_counted():
    """An address reused while still tracked: a missed free, retired."""
    path, p = run_cmd("stat", [WORKLOAD, "missed"])
    eq(p.returncode, 0, "exit status")
    reused = int(re.search(r"reused=(\d)", p.stdout).group(1))
    check(reused, "glibc did not reuse the address: %r" % p.stdout)
    doc = final_doc(path)
    eq(doc["missed_frees"]["count"], 1, "missed frees")
    eq(doc["missed_frees"]["bytes"], 40, "missed free bytes")
    eq(doc["events"]["allocs"], 2, "alloc events")
    eq(doc["events"]["frees"], 1, "free events")
    eq(doc["live"]["blocks"], 0, "live blocks")
    eq(doc["complete"], True, "a missed free is no drop")


def test_cmd_more_blocks_than_map():
    """More live blocks than --max-blocks: drops reported, never hidden."""
    path, p = run_cmd("stat", [WORKLOAD, "many", "1000"],
                      ["--max-blocks", "100"])
    eq(p.returncode, 0, "exit status")
    doc = final_doc(path)
    eq(doc["complete"], False, "report marked incomplete")
    dropped = doc["drops"]["live_map_full"]
    check(1000 - doc["live_capacity"] <= dropped <= 900,
          "%d blocks dropped, table for 100 holds %d" %
          (dropped, doc["live_capacity"]))
    eq(doc["drops"]["untracked_bytes"], dropped * 32, "bytes dropped")
    eq(doc["events"]["allocs"], 1000, "alloc events still all counted")
    eq(doc["events"]["frees"], 1000, "free events still all counted")
    eq(doc["untracked_frees"]["count"], dropped, "frees of dropped blocks")
    eq(doc["live"]["blocks"], 0, "tracked live blocks")
    hpath, hp = run_cmd("hist", [WORKLOAD, "many", "1000"],
                        ["--max-blocks", "100"])
    hdoc = final_doc(hpath)
    eq(hist_map(hdoc["hist"]["since_attach"]["alloc"]), {6: [1000, 32000]},
       "alloc histogram with a full map")
    text = subprocess.run([ZTRACE, "stat", "--max-blocks", "100", "--",
                           WORKLOAD, "many", "1000"], capture_output=True,
                          text=True).stdout
    check("INCOMPLETE" in text and "raise --max-blocks" in text,
          "text report does not say it is incomplete: %r" % text)


def test_cmd_intervals():
    """-i: one document per interval; the intervals add up to the total."""
    path = out_path("intervals.json")
    z = Proc([ZTRACE, "hist", "--json", "-o", path, "-i", "0.2", "--",
              WORKLOAD, "--wait", "basic"])
    z.wait_for("ZT_SYNC pre")
    time.sleep(0.5)
    z.send()
    z.wait_for("ZT_SYNC end")
    time.sleep(0.5)
    z.send()
    eq(z.finish(), 0, "exit status")
    ds = [d for d in docs(path) if d.get("type") == "hist"]
    check(len(ds) >= 4, "only %d reports" % len(ds))
    eq([d["seq"] for d in ds], list(range(len(ds))), "report numbers")
    check(not any(d["final"] for d in ds[:-1]) and ds[-1]["final"],
          "only the last report is final")
    total = {}
    for d in ds:
        for b, (n, nbytes) in hist_map(d["hist"]["interval"]["alloc"]).items():
            t = total.setdefault(b, [0, 0])
            t[0] += n
            t[1] += nbytes
    eq(total, EXPECT["cmd"]["alloc"], "sum of interval histograms")
    check_hist(ds[-1], EXPECT["cmd"])


def test_pid_attach_midway_and_bpftrace():
    """-p PID midway, hist and leaks, against a bpftrace one-liner."""
    check(os.access("/usr/bin/bpftrace", os.X_OK),
          "bpftrace is not installed: run make deps")
    w = Proc([WORKLOAD, "--wait", "basic"])
    pid = int(w.wait_for(r"ZT_SYNC pre .*pid=(\d+)").group(1))
    hpath, lpath = out_path("pid-hist.json"), out_path("pid-leaks.json")
    bt = None
    zh = Proc([ZTRACE, "hist", "--json", "-o", hpath, "-p", str(pid)])
    zl = Proc([ZTRACE, "leaks", "--json", "--top", "0", "-o", lpath, "-p",
               str(pid)])
    script = ("usdt:%s:zmalloc:alloc /pid == %d/ { @alloc = hist(arg1); } "
              "usdt:%s:zmalloc:realloc /pid == %d/ { @alloc = hist(arg3); } "
              "interval:ms:100 { printf(\"tick\"); }" % (LIB, pid, LIB, pid))
    # (bpftrace 0.17 only sees SIGINT once an event wakes its loop.)
    try:
        zh.wait_for("tracing PID", stream="err")
        zl.wait_for("tracing PID", stream="err")
        bt = Proc(["bpftrace", "-f", "json", "-p", str(pid), "-e", script])
        # Its first tick comes once every probe is attached.
        bt.wait_for("tick", timeout=60)
        w.send()
        used = sync_used(w.wait_for(r"ZT_SYNC end.*\n").string, "end")
        for z in (zh, zl, bt):
            z.p.send_signal(signal.SIGINT)
        eq(zh.finish(), 0, "ztrace hist exit status")
        eq(zl.finish(), 0, "ztrace leaks exit status")
        bt.finish()
        check(w.p.poll() is None, "the workload did not survive ztrace")
    finally:
        for z in (zh, zl, bt):
            if z and z.p.poll() is None:
                z.p.kill()
        w.send()
        status = w.finish()
    eq(status, 0, "workload exit status")
    hdoc, ldoc = final_doc(hpath), final_doc(lpath)
    check_hist(hdoc, EXPECT["pid"])
    eq(hdoc["untracked_frees"]["count"], 7,
       "frees of blocks allocated before attach")
    check_used_memory(hdoc, used)
    check_used_memory(ldoc, used)
    check_leaks(ldoc)
    bt_hist = None
    check(bt, "bpftrace did not start")
    for line in bt.text["out"].splitlines():
        d = json.loads(line) if line.startswith("{") else {}
        if d.get("type") == "hist":
            bt_hist = d["data"]["@alloc"]
    check(bt_hist, "no histogram from bpftrace: %r" % bt.text)
    bt_counts = {bucket(b["min"]) if b["min"] > 0 else 0: b["count"]
                 for b in bt_hist if b["count"]}
    zt_counts = {b: v[0] for b, v in
                 hist_map(hdoc["hist"]["since_attach"]["alloc"]).items()}
    eq(zt_counts, bt_counts, "ztrace vs bpftrace alloc histogram")


def test_pid_other_process_not_traced():
    """-p PID traces that process alone: the programs do not check the
    process themselves, the links do. Another process of the same library
    churning 704 MiB meanwhile adds nothing, exact or sampled."""
    w = Proc([WORKLOAD, "--wait", "basic"])
    pid = int(w.wait_for(r"ZT_SYNC pre .*pid=(\d+)").group(1))
    hpath, spath = out_path("other-hist.json"), out_path("other-stat.json")
    zh = Proc([ZTRACE, "hist", "--json", "-o", hpath, "-p", str(pid)])
    zs = Proc([ZTRACE, "stat", "--sample=4096", "--json", "-o", spath, "-p",
               str(pid)])
    try:
        zh.wait_for("tracing PID", stream="err")
        zs.wait_for("tracing PID", stream="err")
        other = subprocess.run([WORKLOAD, "churn"], env=SAMPLE_ENV,
                               capture_output=True, text=True, timeout=120)
        eq(other.returncode, 0, "the other process's exit status")
        w.send()
        w.wait_for(r"ZT_SYNC end.*\n")
        for z in (zh, zs):
            z.p.send_signal(signal.SIGINT)
        eq(zh.finish(), 0, "ztrace hist exit status")
        eq(zs.finish(), 0, "ztrace stat exit status")
    finally:
        for z in (zh, zs):
            if z.p.poll() is None:
                z.p.kill()
        w.send()
        status = w.finish()
    eq(status, 0, "workload exit status")
    check_hist(final_doc(hpath), EXPECT["pid"])
    sdoc = final_doc(spath)
    hits = sdoc["sampling"]["sample_alloc_hits"]
    eq(hits, sdoc["events"]["alloc_samples"], "sample_alloc hits")
    # basic allocates well under 1 MiB after the attach; the churn's
    # 704 MiB, at its own 512 KiB a sample, would be about 1400 more.
    check(hits < 300, "samples from another process: %d" % hits)


def test_pid_sigkill_detaches():
    """SIGKILL ztrace: the target runs on, its probes detached."""
    w = Proc([WORKLOAD, "loop"])
    pid = int(w.wait_for(r"ZT_SYNC loop .*pid=(\d+)").group(1))
    eq(semaphore_values(pid), [0] * len(semaphores()), "idle semaphores")
    z = Proc([ZTRACE, "stat", "-p", str(pid), "-o", os.devnull])
    try:
        z.wait_for("tracing PID", stream="err")
        check(all(v > 0 for v in semaphore_values(pid)),
              "semaphores not raised while traced")
        z.p.kill()
        z.finish()
        end = time.monotonic() + 5
        while any(semaphore_values(pid)) and time.monotonic() < end:
            time.sleep(0.05)
        eq(semaphore_values(pid), [0] * len(semaphores()),
           "semaphores after SIGKILL")
        w.send()
        w.wait_for("ZT_SYNC tick")
        with open("/proc/%d/status" % pid) as f:
            state = re.search(r"State:\s+(\S)", f.read()).group(1)
        check(state in "SR", "target state %s" % state)
    finally:
        if z.p.poll() is None:
            z.p.kill()
        w.close_stdin()
        eq(w.finish(), 0, "workload exit status")


def test_cmd_sigkill_detaches():
    """SIGKILL ztrace running a command: the command runs on, untraced."""
    z = Proc([ZTRACE, "stat", "-o", os.devnull, "--", WORKLOAD, "loop"])
    try:
        pid = int(z.wait_for(r"ZT_SYNC loop .*pid=(\d+)").group(1))
        check(all(v > 0 for v in semaphore_values(pid)),
              "semaphores not raised while traced")
        os.kill(z.p.pid, signal.SIGKILL)
        z.p.wait()
        end = time.monotonic() + 5
        while any(semaphore_values(pid)) and time.monotonic() < end:
            time.sleep(0.05)
        eq(semaphore_values(pid), [0] * len(semaphores()),
           "semaphores after SIGKILL")
        z.send()
        z.wait_for("ZT_SYNC tick")
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        check(re.search(r"State:\s+[SR]", status) and
              re.search(r"TracerPid:\s+0\b", status),
              "command stopped or still traced: %s" % status[:300])
    finally:
        z.close_stdin()
        if z.p.poll() is None:
            z.p.kill()
    end = time.monotonic() + 5
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < end:
        time.sleep(0.05)
    check(not os.path.exists("/proc/%d/status" % pid) or
          "zombie" in open("/proc/%d/status" % pid).read(),
          "command did not end when its input closed")


def test_cmd_exit_status():
    for args, want in ((["exit", "7"], 7), (["signal", "15"], 128 + 15)):
        path, p = run_cmd("stat", [WORKLOAD] + args)
        eq(p.returncode, want, "ztrace exit status for %s" % args)
        doc = final_doc(path)
        check(doc["target"].get("exit_status") == want or
              doc["target"].get("exit_signal") == want - 128,
              "exit shown in report: %r" % doc["target"])


def test_cmd_static_executable():
    """A statically linked libzmalloc: probes found in the executable."""
    path, p = run_cmd("leaks", [STATIC_WORKLOAD, "basic"], ["--top", "0"])
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    eq(doc["target"]["static"], True, "probes in the executable")
    check_leaks(doc)
    check_used_memory(doc, sync_used(p.stdout, "end"))


def test_errors_are_actionable():
    def fails(args, msg):
        p = subprocess.run([ZTRACE] + args, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        check(p.returncode != 0, "%s succeeded" % args)
        check(msg in p.stderr, "%s: %r lacks %r" % (args, p.stderr, msg))

    fails(["hist", "-p", "4000000"], "no process with PID 4000000")
    fails(["hist", "--", "/bin/true"], "does not use libzmalloc")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        fails(["leaks", "-p", str(sleeper.pid)], "does not use libzmalloc")
    finally:
        sleeper.kill()
        sleeper.wait()
    fails(["hist", "--", "/nonexistent/prog"], "cannot run")
    fails(["hist", "-i", "soon", "-p", "1"], "invalid -i")
    fails(["hist", "-i", "nan", "-p", "1"], "invalid -i")
    fails(["leaks", "--min-age", "nan", "-p", "1"], "invalid --min-age")
    fails(["hist"], "give either -p PID or a command")
    if os.access("/usr/bin/setpriv", os.X_OK):
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", "--inh-caps=-all", ZTRACE,
                            "stat", "--", WORKLOAD, "exit", "0"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and "needs root" in p.stderr,
              "unprivileged run: %r" % p.stderr)
    p = subprocess.run([ZTRACE, "leaks", "--help"], capture_output=True,
                       text=True)
    check(p.returncode == 0 and "--min-age" in p.stderr, "leaks --help")
    check("--sample[=BYTES]" in p.stderr, "leaks --help lacks --sample")
    fails(["hist", "--sample=lots", "-p", "1"], "invalid --sample")
    # A mode's help lists what it takes; noop, which reports nothing,
    # refuses the options of reports.
    p = subprocess.run([ZTRACE, "noop", "--help"], capture_output=True,
                       text=True)
    check(p.returncode == 0 and "--sample[=BYTES]" in p.stderr and
          "--duration" in p.stderr, "noop --help: %r" % p.stderr)
    for opt in ("--json", "--output", "--interval", "--max-blocks"):
        check(opt not in p.stderr, "noop --help lists %s" % opt)
    for opt in (["-j"], ["-o", "x.txt"], ["-i", "0"], ["--max-blocks", "9"]):
        fails(["noop"] + opt + ["-p", "1"], "'ztrace noop' does not take")
    # Every mode refuses what it does not take, and says which modes do.
    fails(["hist", "--top", "3", "-p", "1"],
          "'ztrace hist' does not take --top (leaks does)")
    fails(["stat", "--min-age", "1", "-p", "1"],
          "does not take --min-age (leaks and record do)")
    fails(["record", "-j", "-p", "1"], "does not take --json")
    fails(["top", "-o", "x", "-p", "1"], "does not take --output")


def sample_truth(pairs):
    """{bucket: [blocks, bytes]} of the sample workload's (size, n)."""
    return hist_of(pairs)


def check_sample_hist(h, truth, what):
    """Every bucket with 1% of the bytes within 10%; none where none are."""
    total = sum(v[1] for v in truth.values())
    got = {b["bucket"]: b for b in h["buckets"]}
    check(h["estimated"] is True and h["samples"] > 0,
          "%s not labelled an estimate: %r" % (what, h))
    check(set(got) <= set(truth), "%s: buckets %s hold no true bytes" %
          (what, sorted(set(got) - set(truth))))
    for b, (n, nbytes) in sorted(truth.items()):
        if nbytes < 0.01 * total:
            continue
        check(b in got, "%s: no sample in bucket %d" % (what, b))
        within(got[b]["bytes"], nbytes, 0.10, "%s bucket %d bytes" % (what, b))
        within(got[b]["count"], n, 0.10, "%s bucket %d blocks" % (what, b))
        check(got[b]["samples"] > 0, "%s bucket %d samples" % (what, b))


def check_sample_hits(doc):
    """Every sample_alloc hit counted, every sample's liveness read."""
    hits = doc["sampling"]
    eq(hits["sample_alloc_hits"], doc["events"]["alloc_samples"],
       "sample_alloc hits vs samples")
    eq(hits["live_unverified"], 0, "samples whose header was not read")
    eq(hits["stacks_walked"], 0, "sampled stacks not from the library")
    eq(hits["stack_hash_mismatches"], 0, "library's stack hashes wrong")
    # A stack is read once, then known by the library's hash.
    check(hits["stacks_read"] <= 64 and
          hits["stacks_read"] <= hits["sample_alloc_hits"],
          "sampled stacks read, not known by hash: %r" % hits)
    eq(doc["sampled"], True, "report says it is sampled")
    eq(doc["complete"], True, "sampled report complete")
    eq(doc["drops"]["samples_lost"], 0, "samples lost by the target")


def anon_mappings(pid):
    """Sizes of the anonymous mappings of PID."""
    sizes = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 5:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                sizes.append(hi - lo)
    return sizes


def sample_hist_estimates(env, in_registers):
    """hist --sample=32K under ENV: estimated bytes and blocks per log2
    bucket within 10%; IN_REGISTERS, how the program read the arguments."""
    path = out_path("sample-hist.json")
    p = subprocess.run([ZTRACE, "hist", "--sample=32K", "--json", "-o", path,
                        "--", WORKLOAD, "sample"], env=env,
                       capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    check("ZMALLOC_SAMPLE_BYTES=32768 set for the command" in p.stderr,
          "ztrace does not say it set the rate: %r" % p.stderr)
    check("ZT_SYNC rate sample_bytes=32768" in p.stdout,
          "the command did not get the rate: %r" % p.stdout)
    doc = final_doc(path)
    eq(doc["sampling"]["mean_bytes"], SAMPLE_RATE, "rate in effect")
    eq(doc["sampling"]["rate_set_by_ztrace"], True, "rate set by ztrace")
    leaks = [(size, n) for size, n in SAMPLE_LEAKS.values()]
    h = doc["hist"]["since_attach"]
    check_sample_hist(h["alloc"],
                      sample_truth(SAMPLE_CHURN + leaks + SAMPLE_AFTER),
                      "alloc histogram")
    check_sample_hist(h["free"], sample_truth(SAMPLE_CHURN + SAMPLE_AFTER),
                      "free histogram")
    check_sample_hits(doc)
    check(doc["events"]["estimated"] and doc["live"]["estimated"],
          "events and live figures not labelled estimates")
    check_used_memory(doc, sync_used(p.stdout, "end"))
    eq(doc["sampling"]["args_in_registers"], in_registers,
       "sample_alloc's arguments read from registers")


def test_sample_cmd_hist_estimates():
    """--sample: estimated bytes and blocks per log2 bucket within 10%;
    the library's one sample_alloc site: arguments from its registers.
    (A compiler that duplicated the site with other registers would send
    the program to the specs, and this would say so.)"""
    sample_hist_estimates(SAMPLE_ENV, True)


def test_sample_args_from_specs():
    """ZTRACE_USDT_SPECS=1: each hit reads its site's argument spec, and
    the estimates are the same."""
    sample_hist_estimates(dict(SAMPLE_ENV, ZTRACE_USDT_SPECS="1"), False)


def test_sample_pid_leaks_estimates():
    """-p --sample=32K: leaks per stack within 10%, exact probes untouched."""
    w = Proc([WORKLOAD, "--wait", "sample"], env=SAMPLE_ENV)
    pid = None
    z = bt = None
    try:
        pid = int(w.wait_for(r"ZT_SYNC pre .*pid=(\d+)").group(1))
        check(max(anon_mappings(pid)) < 1 << 30,
              "a sample region is mapped while no tracer is attached")
        eq(semaphore_values(pid, SAMPLE_PROBES + EXACT_PROBES), [0] * len(
            semaphores(SAMPLE_PROBES + EXACT_PROBES)), "idle semaphores")
        path = out_path("sample-pid-leaks.json")
        z = Proc([ZTRACE, "leaks", "--sample=32768", "--json", "--top", "0",
                  "-o", path, "-p", str(pid)])
        z.wait_for("tracing PID", stream="err")
        check("sampling rate to one sample per 32768 bytes" in z.text["err"],
              "ztrace does not say it set the rate: %r" % z.text["err"])
        # One kernel entry per sample: sample_free stays off too.
        check(all(semaphore_values(pid, ("sample_alloc",))),
              "sample_alloc semaphore not raised")
        eq(semaphore_values(pid, ("sample_free",)), [0],
           "sample_free semaphore while sampling")
        eq(semaphore_values(pid, EXACT_PROBES),
           [0] * len(semaphores(EXACT_PROBES)),
           "exact probes' semaphores while sampling")
        # An independent count of the sampled frees, to check the frees
        # ztrace finds by reading the samples' headers.
        bt = Proc(["bpftrace", "-f", "json", "-p", str(pid), "-e",
                   "usdt:%s:zmalloc:sample_free /pid == %d/ { @frees = "
                   "count(); } interval:ms:100 { printf(\"tick\"); }" %
                   (LIB, pid)])
        bt.wait_for("tick", timeout=60)
        w.send()
        w.wait_for(r"ZT_SYNC rate sample_bytes=32768 ")
        used = sync_used(w.wait_for(r"ZT_SYNC end.*\n").string, "end")
        eq(semaphore_values(pid, EXACT_PROBES),
           [0] * len(semaphores(EXACT_PROBES)),
           "exact probes' semaphores after the work")
        z.p.send_signal(signal.SIGINT)
        eq(z.finish(), 0, "ztrace exit status")
        bt.p.send_signal(signal.SIGINT)
        bt.finish()
        w.send()
        after = w.wait_for(r"ZT_SYNC after sampled=(\d+) region_mib=(\d+) "
                           r"sample_bytes=(\d+)")
        eq(int(after.group(1)), 0, "blocks sampled after ztrace left")
        check(int(after.group(2)) >= 128, "no sample region was used")
        eq(int(after.group(3)), 524288, "rate put back after ztrace left")
    finally:
        for p in (z, bt):
            if p and p.p.poll() is None:
                p.p.kill()
        if w.p.stdin:
            w.send()
        status = w.finish()
    eq(status, 0, "workload exit status")
    doc = final_doc(path)
    check_sample_hits(doc)
    frees = [json.loads(line)["data"]["@frees"]
             for line in bt.text["out"].splitlines()
             if line.startswith('{"type": "map"')]
    eq(frees, [doc["events"]["free_samples"]],
       "sample_free hits (bpftrace) vs the samples ztrace found freed")
    check(frees[0] > 1000, "too few sampled frees to tell: %r" % frees)
    check_used_memory(doc, used)
    eq(doc["leaks"]["estimated"], True, "leaks labelled an estimate")
    by = {}
    for leak in doc["leaks"]["top"]:
        check(leak["estimated"] and leak["samples"] > 0,
              "leak without its samples: %r" % leak)
        func = leak["frames"][0]["func"] if leak["frames"] else None
        by[func] = by.get(func, 0) + leak["bytes"]
    for func, (size, n) in SAMPLE_LEAKS.items():
        check(func in by, "no leak from %s: %r" % (func, sorted(by)))
        within(by[func], size * n, 0.10, "leaked bytes of %s" % func)
    others = sum(v for f, v in by.items() if f not in SAMPLE_LEAKS)
    check(others < 0.01 * sum(s * n for s, n in SAMPLE_LEAKS.values()),
          "leaks from other stacks: %r" % by)


def pid_session(work, zt_args, name, steps):
    """zt_workload --wait WORK, traced by ztrace ZT_ARGS --json -p from its
    first sync point on. At each of STEPS, (pattern, then), the workload
    goes on to the sync point PATTERN (None: stays where it is), and THEN
    is the seconds ztrace is given there, or a function called with
    ztrace's Proc, the JSON output's path and the workload's pid; then
    both end. Returns the JSON output's path."""
    w = Proc([WORKLOAD, "--wait"] + work, env=SAMPLE_ENV)
    path = out_path(name)
    z = None
    try:
        pid = int(w.wait_for(r"ZT_SYNC \S+ .*pid=(\d+)").group(1))
        z = Proc([ZTRACE] + zt_args + ["--json", "-o", path, "-p", str(pid)])
        z.wait_for("tracing PID", stream="err")
        for pattern, then in steps:
            if pattern:
                w.send()
                w.wait_for(pattern)
            if callable(then):
                then(z, path, pid)
            else:
                time.sleep(then)
        w.send()
        eq(w.finish(), 0, "workload exit status")
        eq(z.finish(), 0, "ztrace exit status")
    finally:
        for p in (z, w):
            if p and p.p.poll() is None:
                p.p.kill()
    return path


def statm_rss(pid):
    """PID's resident bytes, as /proc/PID/statm gives them now."""
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def report_now(z, path, have):
    """SIGUSR1 to ztrace Z: waits for its report, the document after HAVE
    in PATH, and returns it."""
    z.p.send_signal(signal.SIGUSR1)
    for _ in range(100):
        time.sleep(0.05)
        try:
            ds = docs(path) if os.path.exists(path) else []
        except ValueError:
            continue  # a document being written
        if len(ds) > have:
            return ds[have]
    check(False, "no report after SIGUSR1")


def test_pid_rss_read_again():
    """-p: the RSS of each report is the target's at that report, as its
    statm says (read again, not the first report's)."""
    rss, got = [], []

    def report(z, path, pid):
        rss.append(statm_rss(pid))
        got.append(report_now(z, path, len(got))["target"]["rss"])

    pid_session(["many", "200000"], ["stat"], "rss.json",
                [(None, report), (r"ZT_SYNC full.*\n", report),
                 (r"ZT_SYNC end.*\n", 0)])
    # 200000 blocks of 32 bytes: over 6 MiB more resident.
    check(rss[1] - rss[0] > 6 << 20, "the blocks made no RSS: %r" % rss)
    eq(got, rss, "RSS of the two reports vs the target's statm")


def test_sample_freed_headers_read_once():
    """-p --sample -i 1: once the churn is over, a live check reads the
    headers of the live samples only, not again those it found freed."""
    path = pid_session(["sample"], ["leaks", "--sample=32768", "--top", "0",
                                    "-i", "1"], "sample-headers.json",
                       [(r"ZT_SYNC end.*\n", 3.5)])  # three reports
    ds = [d for d in docs(path) if not d.get("final")]
    # Two reports after the churn, and before the workload's last blocks
    # (sample_after, once released): no sample taken between them, and
    # none freed (a sample freed since the last check is read once more,
    # found freed: the churn's last frees can fall after a report).
    pairs = [(a, b) for a, b in zip(ds, ds[1:])
             if a["events"]["alloc_samples"] == b["events"]["alloc_samples"]
             and a["events"]["free_samples"] == b["events"]["free_samples"]]
    check(pairs, "no two reports without a sample taken or freed between")
    a, b = pairs[-1]
    live = b["live"]["samples"]
    read = b["sampling"]["headers_read"] - a["sampling"]["headers_read"]
    checks = b["sampling"]["live_checks"] - a["sampling"]["live_checks"]
    freed = b["events"]["free_samples"]
    check(freed > 2 * live, "too few freed samples to tell: %r" % b["events"])
    check(checks >= 1, "no live check between two reports")
    # Each check reads the live samples' headers, and no freed one's.
    eq(read, live * checks,
       "headers read by %d checks, %d samples live, %d freed"
       % (checks, live, freed))


def test_sample_reused_address_is_new():
    """hist --sample=1 -p: samples at the addresses of samples a live check
    found freed are live (their births tell them apart), and then freed."""
    path = pid_session(["reuse", "1000"], ["hist", "--sample=1", "-i", "1"],
                       "sample-reuse.json",
                       [(r"ZT_SYNC freed.*\n", 1.5),  # a check: freed
                        # a report: live; most reuse a freed sample's address
                        (r"ZT_SYNC held reused=(9\d\d|1000) .*\n", 2.5),
                        (r"ZT_SYNC end.*\n", 2.5)])  # a report: freed
    ds = [d for d in docs(path) if not d.get("final")]
    held = [d["live"]["samples"] for d in ds]
    # The first block arms the thread's sampler: 999 samples, then 1000.
    eq(ds[-1]["events"]["alloc_samples"], 1999, "samples taken")
    check(1000 in held, "the held samples never seen live: %r" % held)
    eq(held[-1], 0, "samples live after all were freed")


def test_sample_pid_report_after_exit():
    """-p --sample, the target exits before the report: the samples it had
    freed stay out, by the live check made while it lived."""
    # A live check (one a second) after the churn, then the exit.
    path = pid_session(["sample"], ["leaks", "--sample=32768", "--top", "0"],
                       "sample-pid-exit.json", [(r"ZT_SYNC end.*\n", 1.5)])
    doc = final_doc(path)
    check(doc["events"]["alloc_samples"] > 10000,
          "too few samples: %r" % doc["events"])
    check(doc["sampling"]["live_unverified"] < 100,
          "samples unverified at the exit: %r" % doc["sampling"])
    by = {}
    for leak in doc["leaks"]["top"]:
        func = leak["frames"][0]["func"] if leak["frames"] else None
        by[func] = by.get(func, 0) + leak["bytes"]
    for func, (size, n) in SAMPLE_LEAKS.items():
        within(by.get(func, 0), size * n, 0.10, "leaked bytes of %s" % func)
    others = sum(v for f, v in by.items() if f not in SAMPLE_LEAKS)
    check(others < 0.01 * sum(s * n for s, n in SAMPLE_LEAKS.values()),
          "freed samples reported live after the exit: %r" % by)


def test_sample_scan_estimates():
    """leaks --sample --scan: verdicts on the samples, scaled; the sample
    region's 64 GiB of address space is not read."""
    path = out_path("sample-scan.json")
    p = subprocess.run([ZTRACE, "leaks", "--sample=32K", "--scan", "--json",
                        "-o", path, "--", WORKLOAD, "sample"],
                       env=SAMPLE_ENV, capture_output=True, text=True,
                       timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    scan = final_doc(path)["scan"]
    leaked = sum(s * n for s, n in SAMPLE_LEAKS.values())
    lost = scan["definitely_lost"]
    check(lost["estimated"] and lost["samples"] > 1000,
          "definitely lost not an estimate with its samples: %r" % lost)
    # The workload drops its pointers; a few leaked blocks reuse addresses
    # a stale pointer of the churn still names (still reachable).
    within(lost["bytes"] + scan["still_reachable"]["bytes"], leaked, 0.10,
           "lost and reachable estimate")
    check(lost["bytes"] > 0.8 * leaked, "definitely lost: %r" % lost)
    eq(scan["undecided"]["samples"], 0, "undecided samples")
    check(scan["absent_bytes"] > 60 << 30,
          "the sample region was read: %r" % scan)
    check(scan["scanned_bytes"] < 1 << 30, "scanned: %r" % scan)


def test_sample_small_table_reuses_freed():
    """--sample with a live table of 32 ways and 3000 addresses of samples
    (every block sampled, 2 live at most): the BPF program takes the ways
    of freed samples, nothing is dropped, every sample is found freed."""
    path = out_path("sample-spread.json")
    p = subprocess.run([ZTRACE, "stat", "--sample=1", "--max-blocks", "16",
                        "--json", "-o", path, "--", WORKLOAD, "spread",
                        "3000"], env=SAMPLE_ENV, capture_output=True,
                       text=True, timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    check_sample_hits(doc)
    eq(doc["live_capacity"], 32, "ways of the live table")
    eq(doc["drops"]["live_map_full"], 0, "samples dropped, table full")
    check(doc["events"]["alloc_samples"] >= 5999,
          "not every block sampled: %r" % doc["events"])
    check(doc["sampling"]["ways_reused"] >= 3000 - 32,
          "ways of freed samples reused: %r" % doc["sampling"])
    eq(doc["live"]["samples"], 0, "samples live at the end")
    eq(doc["events"]["free_samples"], doc["events"]["alloc_samples"],
       "samples found freed")


def deep_leak(args, n, k=1):
    """The K leaks of "deep N K", one stack, under ztrace leaks ARGS:
    (doc, funcs)."""
    path, p = run_cmd("leaks", [WORKLOAD, "deep", str(n), str(k)], args,
                      timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    eq(len(doc["leaks"]["top"]), 1, "leaks of deep %d: %r" %
       (n, doc["leaks"]["top"]))
    leak = doc["leaks"]["top"][0]
    eq(leak["bytes"], 4096 * k,
       "leaked bytes (a sample's weight at rate 1)")
    return doc, [f.get("func") for f in leak["frames"]]


def test_sample_stack_from_library():
    """A sample's stack as the library wrote it in the block's header, read
    in one piece: the same frames as the kernel's walk of the exact probe,
    every frame of a 10-deep leak; past the header's 31 frames (a deeper
    --stack-depth) the kernel walks, counted, and gets all 50. At the
    default depth a stack seen before is known by the hash sample_alloc
    passes, not read again; at any other depth every sample's is read. And
    the deepest --stack-depth, which the verifier once refused, in both
    modes."""
    for n, depth, walked, read in ((10, 32, 0, 1), (10, 16, 0, 5),
                                   (50, 64, 5, 5)):
        args = ["--stack-depth", str(depth)]
        doc, sampled = deep_leak(args + ["--sample=1"], n, 5)
        # The warm-up allocation starts the sampler's count, unsampled.
        eq(doc["events"]["alloc_samples"], 5, "samples")
        eq(doc["sampling"]["stacks_walked"], walked,
           "sampled stacks the kernel walked, deep %d" % n)
        eq(doc["sampling"]["stacks_read"], read,
           "sampled stacks read, deep %d, --stack-depth %d" % (n, depth))
        eq(doc["sampling"]["stack_hash_mismatches"], 0, "hash mismatches")
        _, exact = deep_leak(args, n)
        want = min(n, depth - 1)
        eq(sampled.count("deep_frame"), want,
           "deep_frame frames: %r" % sampled)
        if want == n:
            eq(sampled[-1], "__libc_start_call_main", "outermost frame")
        eq(sampled, exact, "sampled stack vs the exact probe's")
    # The deepest setting loads and is kept: 127 frames, zmalloc's first;
    # a sample's, one more of the library's (the function that fires
    # sample_alloc, under zmalloc's).
    for mode, want in (([], 126), (["--sample=1"], 125)):
        _, frames = deep_leak(["--stack-depth", "127"] + mode, 130)
        eq(frames, ["deep_frame"] * want,
           "frames at --stack-depth 127 %s" % mode)


def test_sample_stat_default_rate():
    """--sample at the target's own rate: shown, and the total estimated."""
    path = out_path("sample-stat.json")
    p = subprocess.run([ZTRACE, "stat", "--sample", "--json", "-o", path,
                        "--", WORKLOAD, "sample"], env=SAMPLE_ENV,
                       capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    doc = final_doc(path)
    eq(doc["sampling"]["mean_bytes"], 524288, "default rate in effect")
    eq(doc["sampling"]["rate_set_by_ztrace"], False, "rate left alone")
    check_sample_hits(doc)
    truth = sum(s * n for s, n in SAMPLE_CHURN + SAMPLE_AFTER +
                list(SAMPLE_LEAKS.values()))
    # 864 MiB at 512 KiB: 1728 samples, 2.4% standard error.
    within(doc["stat"]["alloc_bytes"], truth, 0.10, "bytes allocated")
    check(doc["stat"]["estimated"] and doc["stat"]["samples"] > 0,
          "stat figures not labelled estimates")
    text = subprocess.run([ZTRACE, "leaks", "--sample", "--", WORKLOAD,
                           "sample"], env=SAMPLE_ENV, capture_output=True,
                          text=True, timeout=120).stdout
    check(re.search(r"leaks +~\d+ blocks, ~\d+ bytes .*est\. from \d+ "
                    r"samples", text) and "lost by the target" in text,
          "text report does not label its estimates: %r" % text[:2000])


if __name__ == "__main__":
    sys.exit(run_cases(globals(), ONLY))
