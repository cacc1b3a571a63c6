#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""ztrace leaks --scan: memcheck's verdicts through the whole product.

The candidates are the blocks ztrace's BPF programs saw allocated, not a
list the target prints: tests/scan/leaky builds each kind of leak after
ztrace has attached (-p), prints what memcheck would say of each block,
and ztrace's scan, asked for with SIGUSR1 and with --scan, must agree
block class by block class, byte for byte. The same program run to its
exit under valgrind --leak-check=full must agree too.

usage: run_scan_tests.py ZTRACE LEAKY [RESULTS_FILE]
"""
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
from ztest import check, run_cases  # noqa: E402

ZTRACE, LEAKY = sys.argv[1], sys.argv[2]
CHURN = os.path.join(os.path.dirname(LEAKY), "churn")
RESULTS = sys.argv[3] if len(sys.argv) > 3 else None
TMP = tempfile.mkdtemp(prefix="zt-scan-")
CLASSES = {"definitely": "definitely_lost", "indirectly": "indirectly_lost",
           "possibly": "possibly_lost", "still": "still_reachable"}
VALGRIND = {"definitely_lost": "definitely lost",
            "indirectly_lost": "indirectly lost",
            "possibly_lost": "possibly lost",
            "still_reachable": "still reachable"}


class Proc:
    """A child whose stdout is read as it comes, without buffering."""

    def __init__(self, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env,
                                  bufsize=0)
        self.out = ""

    def wait_for(self, pattern, timeout=20):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while not rx.search(self.out):
            left = end - time.monotonic()
            check(left > 0, "timed out waiting for %r: %r" % (pattern,
                                                             self.out))
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                data = os.read(self.p.stdout.fileno(), 65536)
                check(data, "exited before %r: %r" % (pattern, self.out))
                self.out += data.decode(errors="replace")
        return rx.search(self.out)

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()


def expected(text):
    """Bytes and blocks per class, from leaky's candidate lines."""
    want = {c: [0, 0] for c in CLASSES.values()}
    for m in re.finditer(r"^cand (\S+) (\d+) (\d+) (\S+) (\S+)$", text,
                         re.M):
        want[CLASSES[m.group(5)]][0] += 1
        want[CLASSES[m.group(5)]][1] += int(m.group(2))
    check(sum(b for b, _ in want.values()) > 10, "leaky built nothing")
    return want


def json_docs(path):
    with open(path) as f:
        text = f.read()
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        d, i = dec.raw_decode(text, i)
        out.append(d)


def wait_scan_doc(path, n, timeout=20):
    """The n-th report of ztrace's JSON output that carries a scan."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            try:
                scans = [d for d in json_docs(path) if "scan" in d]
            except ValueError:
                scans = []
            if len(scans) >= n:
                return scans[n - 1]
        time.sleep(0.05)
    raise AssertionError("no scan report %d in %s" % (n, path))


def got_classes(doc):
    sc = doc["scan"]
    return {c: [sc[c]["blocks"], sc[c]["bytes"]] for c in CLASSES.values()}


def start(extra, name):
    """leaky waiting for go, ztrace leaks -p on it; returns both."""
    env = dict(os.environ, LEAKY_WAIT_GO="1")
    leaky = Proc([LEAKY, "wait"], env=env)
    pid = int(leaky.wait_for(r"waiting (\d+)").group(1))
    path = os.path.join(TMP, name + ".json")
    errpath = os.path.join(TMP, name + ".err")
    zt = subprocess.Popen([ZTRACE, "leaks", "--json", "-o", path, "-p",
                           str(pid)] + extra, stderr=open(errpath, "w"))
    zt.errpath = errpath
    # ztrace says "tracing PID" once its probes are attached.
    deadline = time.monotonic() + 20
    while "tracing PID" not in open(errpath).read():
        check(time.monotonic() < deadline and zt.poll() is None,
              "ztrace did not attach: %s" % open(errpath).read())
        time.sleep(0.02)
    leaky.send("go")
    leaky.wait_for(r"ready \d+")
    return leaky, zt, path


def stop(leaky, zt):
    zt.send_signal(signal.SIGINT)
    try:
        zt.wait(20)
    finally:
        leaky.p.stdin.close()
        leaky.p.wait(20)
    check(zt.returncode == 0, "ztrace failed: %s" % open(zt.errpath).read())


def test_scan_on_demand_matches_memcheck_rules():
    leaky, zt, path = start([], "usr1")
    try:
        want = expected(leaky.out)
        os.kill(zt.pid, signal.SIGUSR1)
        doc = wait_scan_doc(path, 1)
        check(got_classes(doc) == want,
              "verdicts %s, expected %s" % (got_classes(doc), want))
        check(doc["scan"]["candidates"] == sum(b for b, _ in want.values()),
              "candidates %d" % doc["scan"]["candidates"])
        check(doc["scan"]["pause_ms"] > 0, "no pause measured")
        lost = [s for s in doc["scan"]["stacks"]
                if s["definitely_lost"]["blocks"]]
        check(lost and all(s["frames"] for s in lost),
              "lost stacks without frames: %s" % lost)
    finally:
        stop(leaky, zt)


def test_scan_every_report_and_valgrind_agree():
    leaky, zt, path = start(["--scan", "-i", "0.5"], "every")
    try:
        want = expected(leaky.out)
        got = got_classes(wait_scan_doc(path, 1))
        check(got == want, "verdicts %s, expected %s" % (got, want))
    finally:
        stop(leaky, zt)
    vg = subprocess.run(["valgrind", "--leak-check=full",
                         "--show-leak-kinds=all", LEAKY, "exit"],
                        capture_output=True, text=True, timeout=120)
    for cls, name in VALGRIND.items():
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" % name,
                      vg.stderr)
        check(m, "valgrind printed no %s" % name)
        vg_bytes = int(m.group(1).replace(",", ""))
        # valgrind also counts glibc's own blocks (thread TLS and the
        # like), which are not zmalloc's: it may only have more.
        check(vg_bytes >= got[cls][1],
              "%s: valgrind %d bytes, ztrace %d" % (cls, vg_bytes,
                                                   got[cls][1]))
    for cls in ("definitely_lost", "indirectly_lost"):
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" %
                      VALGRIND[cls], vg.stderr)
        check([int(m.group(2).replace(",", "")),
               int(m.group(1).replace(",", ""))] == got[cls],
              "%s: valgrind %s, ztrace %s" % (cls, m.groups(), got[cls]))


def test_scan_concurrent_needs_two_scans():
    leaky, zt, path = start(["--scan=concurrent", "-i", "0.5"], "conc")
    try:
        want = expected(leaky.out)
        doc = wait_scan_doc(path, 2)
        second = got_classes(doc)
        check(second == want, "second scan %s, expected %s" %
              (second, want))
        # The default bound on the stop, not reached by an idle target.
        sc = doc["scan"]
        check(sc["pause_max_ms"] == 20 and sc["outran_bytes"] == 0,
              "pause %.2f ms, bound %s, outran %d" %
              (sc["pause_ms"], sc["pause_max_ms"], sc["outran_bytes"]))
    finally:
        stop(leaky, zt)


def test_scan_concurrent_pause_bound():
    """--scan-pause-max shorter than any rescan: each stop resumes the
    target at once, says so, and calls nothing lost."""
    leaky, zt, path = start(["--scan=concurrent", "-i", "0.5",
                             "--scan-pause-max", "0.000001"], "bound")
    try:
        sc = wait_scan_doc(path, 2)["scan"]
        check(sc["outran_bytes"] > 0 and sc["outran_ms"] > 0,
              "outran %d bytes, %.3f ms" % (sc["outran_bytes"],
                                            sc["outran_ms"]))
        for cls in ("definitely_lost", "indirectly_lost", "possibly_lost"):
            check(sc[cls]["blocks"] == 0, "%s: %r" % (cls, sc[cls]))
        check(sc["undecided"]["blocks"] > 0, "undecided: %r" %
              sc["undecided"])
    finally:
        stop(leaky, zt)


def test_scan_snapshot_needs_two_scans():
    leaky, zt, path = start(["--scan=snapshot", "-i", "0.5"], "snap")
    try:
        want = expected(leaky.out)
        first = wait_scan_doc(path, 1)
        check(first["scan"]["mode"] == "snapshot", "mode %s" %
              first["scan"]["mode"])
        lost = first["scan"]["definitely_lost"]["blocks"]
        check(lost == 0, "lost after one snapshot: %d" % lost)
        second = got_classes(wait_scan_doc(path, 2))
        check(second == want, "second snapshot %s, expected %s" %
              (second, want))
        kids = []
        for t in os.listdir("/proc/%d/task" % leaky.p.pid):
            with open("/proc/%d/task/%s/children" % (leaky.p.pid, t)) as f:
                kids += f.read().split()
        check(not kids, "snapshot children left: %s" % kids)
    finally:
        stop(leaky, zt)


def test_scan_command_mode():
    """-- CMD: the probes see every block from the first instruction."""
    path = os.path.join(TMP, "cmd.json")
    zt = Proc([ZTRACE, "leaks", "--scan", "-i", "0.3", "--json", "-o", path,
               "--", LEAKY, "wait"])
    try:
        zt.wait_for(r"ready \d+")
        want = expected(zt.out)
        got = got_classes(wait_scan_doc(path, 1))
        check(got == want, "verdicts %s, expected %s" % (got, want))
    finally:
        zt.p.stdin.close()
        zt.p.wait(20)
    check(zt.p.returncode == 0, "ztrace -- leaky: status %d" %
          zt.p.returncode)


def test_scan_command_at_exit_as_valgrind():
    """-- CMD: the final report scans the command stopped at its exit."""
    path = os.path.join(TMP, "exit.json")
    zt = subprocess.run([ZTRACE, "leaks", "--scan", "--json", "-o", path,
                         "--", LEAKY, "exit"], capture_output=True,
                        text=True, timeout=60)
    check(zt.returncode == 0, "ztrace -- leaky exit: %d %s" %
          (zt.returncode, zt.stderr))
    want = expected(zt.stdout)
    final = [d for d in json_docs(path) if d.get("final")]
    check(final and "scan" in final[-1], "no scan in the final report")
    got = got_classes(final[-1])
    check(got == want, "verdicts at exit %s, expected %s" % (got, want))
    vg = subprocess.run(["valgrind", "--leak-check=full",
                         "--show-leak-kinds=all", LEAKY, "exit"],
                        capture_output=True, text=True, timeout=120)
    for cls in ("definitely_lost", "indirectly_lost"):
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" %
                      VALGRIND[cls], vg.stderr)
        check(m and [int(m.group(2).replace(",", "")),
                     int(m.group(1).replace(",", ""))] == got[cls],
              "%s at exit: valgrind %s, ztrace %s" %
              (cls, m and m.groups(), got[cls]))


def test_scan_while_target_allocates():
    """Scans every 0.2 s of a threaded target that never stops working."""
    path = os.path.join(TMP, "churn.json")
    zt = Proc([ZTRACE, "leaks", "--scan", "-i", "0.2", "--json", "-o", path,
               "--", CHURN])
    try:
        zt.send("check")
        first = zt.wait_for(r"(ok|bad) (\d+) (\d+)")
        check(first.group(1) == "ok", "churn: %s" % first.group(0))
        wait_scan_doc(path, 8, timeout=30)
        zt.out = ""
        zt.send("check")
        again = zt.wait_for(r"(ok|bad) (\d+) (\d+)")
        check(again.group(1) == "ok", "churn: %s" % again.group(0))
        check(int(again.group(2)) > int(first.group(2)) and
              int(again.group(3)) > int(first.group(3)),
              "churn made no progress: %s -> %s" % (first.group(0),
                                                   again.group(0)))
        scans = [d["scan"] for d in json_docs(path) if "scan" in d]
        check(all(sc["definitely_lost"]["blocks"] == 0 and
                  sc["indirectly_lost"]["blocks"] == 0 for sc in scans),
              "a live node was judged lost: %s" % [
                  (sc["definitely_lost"], sc["indirectly_lost"])
                  for sc in scans])
        # churn's 2000 long-lived nodes, moved between lists all along.
        check(all(sc["still_reachable"]["blocks"] >= 2000 for sc in scans),
              "nodes not all found: %s" %
              [sc["still_reachable"]["blocks"] for sc in scans])
    finally:
        zt.p.stdin.close()
        zt.p.wait(30)
    check(zt.p.returncode == 0, "churn found its data corrupt (status %d)" %
          zt.p.returncode)


def test_scan_option_errors():
    r = subprocess.run([ZTRACE, "hist", "--scan", "-p", "1"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--scan (leaks does)" in r.stderr,
          "hist --scan: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([ZTRACE, "leaks", "--scan=sometimes", "-p", "1"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--scan=concurrent" in r.stderr,
          "bad mode: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([ZTRACE, "leaks", "--scan=concurrent",
                        "--scan-pause-max", "soon", "-p", "1"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "number of milliseconds" in r.stderr,
          "bad bound: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([ZTRACE, "leaks", "--scan=concurrent",
                        "--scan-pause-max", "nan", "-p", "1"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "number of milliseconds" in r.stderr,
          "nan bound: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([ZTRACE, "leaks", "--scan", "--scan-pause-max", "5",
                        "-p", "1"], capture_output=True, text=True)
    check(r.returncode == 2 and "--scan=concurrent" in r.stderr,
          "bound without a concurrent scan: %d %s" % (r.returncode,
                                                      r.stderr))
    r = subprocess.run([ZTRACE, "hist", "--scan-pause-max", "5", "-p", "1"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "--scan-pause-max (leaks does)" in r.stderr,
          "hist --scan-pause-max: %d %s" % (r.returncode, r.stderr))


if __name__ == "__main__":
    sys.exit(run_cases(globals(), results=RESULTS, width=45))
