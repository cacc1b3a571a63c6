#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The scanner's suite: real processes, real ptrace.

  run.py --build build/scan --results build/results/scan [CASE...]

Each case prints "ok NAME" or "FAIL NAME: why"; the last line is
"N passed, N failed, N skipped", and RESULTS gets "P F S" for
tests/summarize.sh. A case name given on the command line runs alone.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CLASS_OF = {
    "definitely": "definitely lost",
    "indirectly": "indirectly lost",
    "possibly": "possibly lost",
    "still": "still reachable",
}
VG_KIND = {
    "definitely lost": "definitely lost",
    "indirectly lost": "indirectly lost",
    "possibly lost": "possibly lost",
    "still reachable": "still reachable",
}


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


class Target:
    """A test program kept waiting on its stdin pipe."""

    def __init__(self, argv, tmp):
        self.out_path = os.path.join(tmp, "target.%d.out" % time.monotonic_ns())
        self.out = open(self.out_path, "w+")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=self.out, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "ready" in self.text():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.01)
        raise Fail("%s did not start: %s" % (argv[0], self.p.stderr.read()))

    def text(self):
        with open(self.out_path) as f:
            return f.read()

    @property
    def pid(self):
        return self.p.pid

    def cands(self):
        return [l.split() for l in self.text().splitlines()
                if l.startswith("cand ")]

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def ask(self, line, timeout=5):
        before = len(self.text().splitlines())
        self.send(line)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.text().splitlines()
            if len(lines) > before:
                return lines[-1]
            time.sleep(0.01)
        raise Fail("no answer to %r from pid %d" % (line, self.pid))

    def finish(self, timeout=10):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Fail("pid %d did not exit at end of input" % self.pid)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        st = dict(l.split(":", 1) for l in f if ":" in l)
    return st["State"].strip(), int(st["TracerPid"].strip())


def check_free(pid):
    """The target runs on: not stopped, not traced, by anyone."""
    deadline = time.monotonic() + 2
    while True:
        state, tracer = proc_status(pid)
        if tracer == 0 and state[0] not in "tT":
            break
        if time.monotonic() > deadline:
            raise Fail("pid %d left %s, TracerPid %d" % (pid, state, tracer))
        time.sleep(0.01)
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                s = f.read()
        except FileNotFoundError:
            continue  # a short-lived thread, gone since the listing
        check(re.search(r"TracerPid:\s+0\n", s),
              "thread %s of pid %d still traced" % (tid, pid))
        check(not re.search(r"State:\s+[tT]", s),
              "thread %s of pid %d still stopped" % (tid, pid))


class Suite:
    def __init__(self, args):
        self.b = args.build
        self.tmp = tempfile.mkdtemp(prefix="zscan-test.")
        self.cli = os.path.join(self.b, "tests", "scan_cli")
        self.leaky = os.path.join(self.b, "tests", "leaky")
        self.churn = os.path.join(self.b, "tests", "churn")
        self.mover = os.path.join(self.b, "tests", "mover")

    def cand_file(self, target):
        path = os.path.join(self.tmp, "cands.%d" % target.pid)
        with open(path, "w") as f:
            f.write(target.text())
        return path

    def scan(self, target, *opts, timeout=60):
        cf = self.cand_file(target)
        r = subprocess.run([self.cli, *opts, str(target.pid), cf],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise Fail("scan_cli %s failed: %s" % (" ".join(opts),
                                                  r.stderr.strip()))
        return parse_cli(r.stdout) + (r.stderr,)

    def expect_leaky(self, target, verdict):
        bad = []
        for c in target.cands():
            addr, tag, want = int(c[1], 16), c[4], CLASS_OF[c[5]]
            got = verdict.get(addr)
            if got != want:
                bad.append("%s at %#x: %s, expected %s" % (tag, addr, got,
                                                           want))
        check(not bad, "; ".join(bad))

    # ------------------------------------------------------------ cases
    def test_scan_classes_stop_the_world(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            verdict, stats, _, _ = self.scan(t, "-N")
            self.expect_leaky(t, verdict)
            verdict, stats, _, _ = self.scan(t)
            self.expect_leaky(t, verdict)
            check(int(stats[0]["threads"]) == 2, "threads: %s" % stats[0])
            check(int(stats[0]["scanned"]) > 0, "nothing scanned")
            check(int(stats[0]["unreadable"]) == 0,
                  "unreadable bytes: %s" % stats[0])
            check_free(t.pid)
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_classes_concurrent(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            verdict, _, _, _ = self.scan(t, "-c", "-n", "1")
            lost = [a for a, c in verdict.items()
                    if c not in ("still reachable", "undecided")]
            check(not lost, "lost after one concurrent scan: %d" % len(lost))
            verdict, _, _, _ = self.scan(t, "-c", "-n", "2")
            self.expect_leaky(t, verdict)
            check_free(t.pid)
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_agrees_with_valgrind(self):
        if not shutil.which("valgrind"):
            raise Skip("valgrind not installed")
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            _, _, ours, _ = self.scan(t)
        finally:
            t.finish()
        r = subprocess.run(["valgrind", "--leak-check=full",
                            "--show-leak-kinds=all", self.leaky, "exit"],
                           capture_output=True, text=True, timeout=60)
        summary, outside = parse_valgrind(r.stderr)
        check(summary, "no LEAK SUMMARY from valgrind:\n" + r.stderr[-2000:])
        diff = []
        for kind in VG_KIND:
            vb = summary.get(kind, (0, 0))
            ob = outside.get(kind, (0, 0))
            theirs = (vb[0] - ob[0], vb[1] - ob[1])
            mine = ours.get(kind, (0, 0))
            print("    %-16s zscan %4d bytes in %d blocks, valgrind %4d "
                  "bytes in %d blocks (+%d outside zmalloc)" %
                  (kind, mine[1], mine[0], theirs[1], theirs[0], ob[1]))
            if mine[1] != theirs[1] or mine[0] != theirs[0]:
                diff.append(kind)
        check(not diff, "disagree on " + ", ".join(diff))

    def test_scan_churn_20_scans(self):
        t = Target([self.churn], self.tmp)
        try:
            before = t.ask("check").split()
            check(before[0] == "ok", "churn: " + " ".join(before))
            for opts in (["-n", "5"], ["-N", "-n", "5"], ["-c", "-n", "10"]):
                verdict, stats, _, err = self.scan(t, *opts, timeout=60)
                want = int(opts[-1])
                check(len(stats) == want, "%d scans of %d" % (len(stats),
                                                             want))
                wrong = [a for a, c in verdict.items()
                         if c != "still reachable"]
                check(not wrong, "%d live nodes not still reachable (%s)" %
                      (len(wrong), " ".join(opts)))
                check_free(t.pid)
                ans = t.ask("check").split()
                check(ans[0] == "ok", "churn: " + " ".join(ans))
            after = ans
            check(int(after[1]) > int(before[1]) and
                  int(after[2]) > int(before[2]),
                  "churn made no progress: %s -> %s" % (before, after))
            pause = max(int(s["pause_ns"]) for s in stats)
            print("    longest concurrent pause %.2f ms" % (pause / 1e6))
        finally:
            rc = t.finish()
        check(rc == 0, "churn found its data corrupt (exit %d)" % rc)

    def hold_scan(self, t, ms):
        cf = self.cand_file(t)
        s = subprocess.Popen([self.cli, "-H", str(ms), str(t.pid), cf],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = s.stdout.readline()
        check(line.startswith("stopped"), "scanner did not stop the target")
        state, tracer = proc_status(t.pid)
        check(tracer == s.pid and state[0] == "t",
              "held target is %s, TracerPid %d" % (state, tracer))
        return s

    def test_scan_sigkill_scanner_mid_stop(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            s = self.hold_scan(t, 10000)
            s.kill()
            s.wait(5)
            check_free(t.pid)
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_sigint_sigterm_wait_for_resume(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                s = self.hold_scan(t, 300)
                s.send_signal(sig)
                time.sleep(0.05)
                check(proc_status(t.pid)[0][0] == "t",
                      "signal %d cut the stop short" % sig)
                rc = s.wait(5)
                check(rc == -sig, "scanner exit %d, expected signal %d" %
                      (rc, sig))
                check_free(t.pid)
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_target_signal_not_lost(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            s = self.hold_scan(t, 300)
            os.kill(t.pid, signal.SIGUSR1)
            check(s.wait(5) == 0, "scan failed")
            check_free(t.pid)
            deadline = time.monotonic() + 2
            while "usr1" not in t.text() and time.monotonic() < deadline:
                time.sleep(0.01)
            check("usr1" in t.text(), "SIGUSR1 sent during the stop lost")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_second_tracer_refused(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            s = self.hold_scan(t, 1500)
            cf = self.cand_file(t)
            r = subprocess.run([self.cli, str(t.pid), cf],
                               capture_output=True, text=True, timeout=10)
            check(r.returncode != 0 and "another tracer" in r.stderr,
                  "second scan: %d %s" % (r.returncode, r.stderr))
            check(s.wait(5) == 0, "first scan failed")
            check_free(t.pid)
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_unreadable_root_withholds_lost(self):
        os.environ["LEAKY_WRITE_ONLY"] = "1"
        try:
            t = Target([self.leaky, "wait"], self.tmp)
        finally:
            del os.environ["LEAKY_WRITE_ONLY"]
        try:
            verdict, stats, _, _ = self.scan(t)
            check(int(stats[0]["unreadable"]) >= 65536,
                  "unreadable bytes: %s" % stats[0]["unreadable"])
            for c in t.cands():
                want = CLASS_OF[c[5]]
                want = want if want == "still reachable" else "undecided"
                got = verdict.get(int(c[1], 16))
                check(got == want, "%s: %s, expected %s" % (c[4], got, want))
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_no_such_process(self):
        p = subprocess.Popen(["true"])
        p.wait()
        path = os.path.join(self.tmp, "empty")
        open(path, "w").close()
        r = subprocess.run([self.cli, str(p.pid), path], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode != 0 and "No such process" in r.stderr,
              "scan of a dead pid: %d %s" % (r.returncode, r.stderr))


    # ------------------------------------------------- write tracker
    MOVER_SAYS = {"hide": "hidden", "reveal": "revealed",
                  "remap": "remapped", "scribble": "scribbled"}

    def mover_do(self, t, what):
        ans = t.ask(what)
        check(ans == self.MOVER_SAYS[what],
              "mover answered %r to %s" % (ans, what))

    def tracked_scans(self, t, action, at=0, rounds=2, opts=()):
        """Concurrent scans of a mover: "hide" before each; action (a
        mover command) while the target runs, once the pass is done
        (at=0) or after round `at` of precleaning. Verdicts of the last
        scan, stats, stderr."""
        cf = self.cand_file(t)
        s = subprocess.Popen([self.cli, "-c", "-R", "-P", "-n",
                              str(rounds)] + list(opts) + [str(t.pid), cf],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, done = [], set()
        try:
            for line in s.stdout:
                f = line.split()
                if f[0] == "round":
                    self.mover_do(t, "hide")
                elif f[0] == "passed" and int(f[2]) == at and action:
                    self.mover_do(t, action)
                    done.add(int(f[1]))
                elif f[0] not in ("passed",):
                    out.append(line)
                    continue
                s.stdin.write("go\n")
                s.stdin.flush()
            s.wait(60)
        finally:
            if s.poll() is None:
                s.kill()
                s.wait()
        err = s.stderr.read()
        check(s.returncode == 0, "scan_cli failed: %s" % err.strip())
        check(not action or done == set(range(rounds)),
              "%s done in scans %s of %d: no precleaning round %d?" %
              (action, sorted(done), rounds, at))
        verdict, stats, _ = parse_cli("".join(out))
        check(len(stats) == rounds, "%d scans of %d" % (len(stats), rounds))
        return verdict, stats, err

    def mover_verdicts(self, t, verdict):
        """The moved block's verdict, and the heap blocks' classes."""
        moved = [int(c[1], 16) for c in t.cands() if c[4] == "moved"]
        heap = [int(c[1], 16) for c in t.cands() if c[4] == "heap"]
        return verdict.get(moved[0]), {verdict.get(a) for a in heap}

    def test_scan_tracker_idle_heap_rescans_little(self):
        t = Target([self.mover, "-m", "64"], self.tmp)
        try:
            verdict, stats, _, _ = self.scan(t, "-c", "-n", "2")
            moved, heap = self.mover_verdicts(t, verdict)
            # Hidden all along: lost (so the cases below, which find it,
            # find it only where the tracker shows them the store).
            check(moved == "definitely lost", "moved block: %s" % moved)
            check(heap == {"still reachable"}, "heap blocks: %s" % heap)
            for st in stats:
                check(st["tracker"] == "uffd-wp", "tracker %s" %
                      st["tracker"])
                # 64 MiB of heap, idle: the stop rescans stacks, little else.
                check(int(st["dirty"]) < 1 << 20 and
                      int(st["stopped"]) < 1 << 20,
                      "the stop rescanned %s bytes (%s written) of an "
                      "idle 64 MiB heap" % (st["stopped"], st["dirty"]))
            print("    stop rescanned %s bytes of 64 MiB, pause %.2f ms" %
                  (stats[-1]["stopped"], int(stats[-1]["pause_ns"]) / 1e6))
            check_free(t.pid)
            check_unregistered(t.pid)
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_reads_only_pages_that_exist(self):
        """A pointer in the one touched page of a 16 GiB reservation: found,
        in every mode, and the untouched 16 GiB is not read."""
        t = Target([self.mover, "-r", "16"], self.tmp)
        try:
            self.mover_do(t, "reveal")
            for opts in (("-n", "1"), ("-c", "-n", "2"), ("-s", "-n", "2")):
                verdict, stats, _, _ = self.scan(t, *opts)
                moved, _ = self.mover_verdicts(t, verdict)
                check(moved == "still reachable",
                      "%s: the block held from the reservation: %s" %
                      (" ".join(opts), moved))
                for st in stats:
                    check(int(st["absent"]) >= (16 << 30) - (1 << 20),
                          "%s: absent %s bytes" % (" ".join(opts),
                                                   st["absent"]))
                    check(int(st["scanned"]) < 256 << 20,
                          "%s: scanned %s bytes" % (" ".join(opts),
                                                    st["scanned"]))
            check_free(t.pid)
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_tracker_sees_store_after_pass(self):
        # Stored once the pass is done (precleaning finds it), or once
        # precleaning is done too (only the stop can find it).
        for at in (0, 1):
            t = Target([self.mover, "-m", "16"], self.tmp)
            try:
                verdict, stats, _ = self.tracked_scans(t, "reveal", at)
                moved, heap = self.mover_verdicts(t, verdict)
                check(moved == "still reachable",
                      "moved block, stored into a page the pass had read "
                      "(after round %d): %s" % (at, moved))
                check(heap == {"still reachable"}, "heap blocks: %s" %
                      heap)
                for st in stats:
                    # Asleep otherwise: precleaning finds that page (and
                    # the one the kernel writes as it wakes the thread,
                    # rseq's), or, stored later, at most the kernel's
                    # page: the thread may wake late from the stop that
                    # armed the tracker (seen: one page, once in ~10 runs).
                    pre = int(st["preclean"])
                    check(st["tracker"] == "uffd-wp" and
                          (4096 <= pre <= 65536 if at == 0 else
                           pre <= 4096) and
                          int(st["dirty"]) < 1 << 20,
                          "tracker %s, %s bytes written, %s precleaned" %
                          (st["tracker"], st["dirty"], st["preclean"]))
                check_free(t.pid)
                check_unregistered(t.pid)
            finally:
                check(t.finish() == 0, "mover failed")

    def test_scan_pause_bound_withholds_verdicts(self):
        """The target writes every page of its 64 MiB heap after the last
        precleaning round: with a 1 ms bound the stop does not rescan
        them, the target is resumed at once and no block is called lost
        (the hidden block is undecided); unbounded, the stop rescans the
        64 MiB and the hidden block is lost, the two scans agreeing. One
        store instead, under the default 20 ms: no outrun, and the stop
        finds the block the store reveals."""
        t = Target([self.mover, "-m", "64"], self.tmp)
        try:
            verdict, stats, _ = self.tracked_scans(t, "reveal", 1,
                                                   opts=("-B", "20"))
            moved, _ = self.mover_verdicts(t, verdict)
            check(moved == "still reachable", "one store, bounded: the "
                  "revealed block is %s" % moved)
            for st in stats:
                check(int(st["outran"]) == 0, "one store outran the "
                      "bound: %s" % st)
        finally:
            check(t.finish() == 0, "mover failed")
        for bound, want in (("1", "undecided"), ("0", "definitely lost")):
            t = Target([self.mover, "-m", "64"], self.tmp)
            try:
                verdict, stats, _ = self.tracked_scans(
                    t, "scribble", 1, opts=("-B", bound))
                moved, heap = self.mover_verdicts(t, verdict)
                check(moved == want, "bound %s ms: the hidden block is "
                      "%s, not %s" % (bound, moved, want))
                check(heap == {"still reachable"}, "heap blocks: %s" % heap)
                for st in stats:
                    dirty, outran = int(st["dirty"]), int(st["outran"])
                    check(dirty >= 64 << 20, "written at the stop: %d" %
                          dirty)
                    if bound == "0":
                        check(outran == 0 and int(st["stopped"]) >= 64 << 20,
                              "unbounded: outran %d, rescanned %s" %
                              (outran, st["stopped"]))
                        continue
                    # Not rescanned: the stop lasted less than a rescan.
                    check(outran >= 64 << 20 and
                          int(st["stopped"]) < 1 << 20 and
                          int(st["pause_ns"]) < int(st["outran_ns"]),
                          "bounded: outran %d bytes (%s ns predicted), "
                          "rescanned %s, paused %s ns" %
                          (outran, st["outran_ns"], st["stopped"],
                           st["pause_ns"]))
                check_free(t.pid)
                check_unregistered(t.pid)
            finally:
                check(t.finish() == 0, "mover failed")

    def test_scan_tracker_sees_replaced_mapping(self):
        t = Target([self.mover, "-m", "4"], self.tmp)
        try:
            verdict, stats, _ = self.tracked_scans(t, "remap", 1)
            moved, _ = self.mover_verdicts(t, verdict)
            check(moved == "still reachable",
                  "moved block, in a file mapping put in place of one the "
                  "pass had read: %s" % moved)
            check(all(st["tracker"] == "uffd-wp" for st in stats),
                  "trackers %s" % [st["tracker"] for st in stats])
            check_free(t.pid)
            check_unregistered(t.pid)
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_tracker_target_own_userfaultfd(self):
        t = Target([self.mover, "-u", "-m", "4"], self.tmp)
        try:
            # Were its mapping write-protected by us, the store would hang.
            verdict, stats, err = self.tracked_scans(t, "reveal")
            moved, _ = self.mover_verdicts(t, verdict)
            check(moved == "still reachable", "moved block: %s" % moved)
            check("cannot be write-protected" in err,
                  "no word of the untracked mapping: %s" % err.strip())
            for st in stats:
                check(st["tracker"] == "uffd-wp" and
                      int(st["dirty"]) >= 2 << 20,  # mover.c's SLOT_MAP
                      "tracker %s, %s bytes written: the mapping it holds "
                      "is not rescanned whole" % (st["tracker"],
                                                   st["dirty"]))
            check_free(t.pid)
            check(uffd_left(t.pid) == (1, 1),
                  "its own userfaultfd: %s fds, %s mappings" %
                  uffd_left(t.pid))
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_tracker_falls_back_without_injection(self):
        t = Target([self.mover, "-s", "-m", "16"], self.tmp)
        try:
            verdict, stats, err = self.tracked_scans(t, "reveal")
            moved, heap = self.mover_verdicts(t, verdict)
            check(moved == "still reachable", "moved block: %s" % moved)
            check(heap == {"still reachable"}, "heap blocks: %s" % heap)
            check("no write tracking for process %d" % t.pid in err and
                  "seccomp" in err, "no word of the fallback: %s" %
                  err.strip())
            for st in stats:
                check(st["tracker"] == "none" and
                      int(st["dirty"]) >= 16 << 20,
                      "tracker %s, %s bytes rescanned" % (st["tracker"],
                                                          st["dirty"]))
            check_free(t.pid)
            check_unregistered(t.pid)
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_tracker_unprivileged_target(self):
        # UFFD_USER_MODE_ONLY: allowed to nobody, whatever the sysctl.
        if not shutil.which("setpriv"):
            raise Skip("setpriv not installed")
        t = Target(["setpriv", "--reuid=65534", "--regid=65534",
                    "--clear-groups", self.mover, "-m", "4"], self.tmp)
        try:
            verdict, stats, err = self.tracked_scans(t, "reveal", 1)
            moved, _ = self.mover_verdicts(t, verdict)
            check(moved == "still reachable", "moved block: %s" % moved)
            check(all(st["tracker"] == "uffd-wp" for st in stats),
                  "trackers %s: %s" % ([st["tracker"] for st in stats],
                                       err.strip()))
            check_free(t.pid)
            check_unregistered(t.pid)
        finally:
            check(t.finish() == 0, "mover failed")

    def test_scan_tracker_sigkill_scanner_leaves_nothing(self):
        t = Target([self.mover, "-m", "4"], self.tmp)
        cf = self.cand_file(t)
        try:
            # Killed at the stop, then while the pass is done and the
            # target runs: the kernel unregisters all with our fd.
            for opts, said in ((["-H", "10000"], "stopped"),
                               (["-P"], "passed 0")):
                s = subprocess.Popen([self.cli, "-c", *opts, str(t.pid), cf],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                line = s.stdout.readline()
                check(line.startswith(said), "scanner said %r" % line)
                fds, uw = uffd_left(t.pid)
                check(fds == 0 and uw > 0,
                      "while tracked: %d userfaultfds in the target, %d "
                      "mappings registered" % (fds, uw))
                s.kill()
                s.wait(5)
                check_free(t.pid)
                check_unregistered(t.pid)
                check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "mover failed")

    # ------------------------------------------------- fork snapshot
    def snap_children(self, out):
        """The snapshot children a scan_cli -S run reported."""
        return [int(l.split()[2]) for l in out.splitlines()
                if l.startswith("snapshot ")]

    def check_no_child(self, t, children):
        """None of our snapshot children is left: not even a zombie."""
        listed = set()
        for tid in os.listdir("/proc/%d/task" % t.pid):
            try:
                with open("/proc/%d/task/%s/children" % (t.pid, tid)) as f:
                    listed |= {int(c) for c in f.read().split()}
            except FileNotFoundError:
                pass
        left = [c for c in children if c in listed]
        check(not left, "snapshot children left under pid %d: %s" %
              (t.pid, left))
        for c in children:
            check(not os.path.exists("/proc/%d" % c) or
                  proc_status(c)[0][0] not in "tTZ",
                  "snapshot child %d still exists" % c)

    def snap_scan(self, t, *opts, timeout=60):
        cf = self.cand_file(t)
        r = subprocess.run([self.cli, "-S", "0", *opts, str(t.pid), cf],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise Fail("scan_cli -S 0 %s failed: %s" % (" ".join(opts),
                                                       r.stderr.strip()))
        verdict = {}
        for l in r.stdout.splitlines():
            if l.startswith("blk "):
                _, addr, rest = l.split(None, 2)
                verdict[int(addr, 16)] = rest.rsplit(" ", 1)[0]
        stats = [dict(kv.split("=") for kv in l.split()[1:])
                 for l in r.stdout.splitlines() if l.startswith("stats ")]
        return verdict, stats, self.snap_children(r.stdout), r.stderr

    def test_scan_snapshot_classes_after_two_scans(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            verdict, _, kids, _ = self.snap_scan(t, "-c", "-n", "1")
            lost = [a for a, c in verdict.items()
                    if c not in ("still reachable", "undecided")]
            check(not lost, "lost after one snapshot scan: %d" % len(lost))
            verdict, stats, more, _ = self.snap_scan(t, "-c", "-n", "2")
            kids += more
            check(len(kids) == 3, "snapshots reported: %s" % kids)
            self.expect_leaky(t, verdict)
            check(int(stats[-1]["unreadable"]) == 0,
                  "unreadable bytes: %s" % stats[-1])
            check(int(stats[-1]["threads"]) == 2, "threads: %s" % stats[-1])
            check_free(t.pid)
            self.check_no_child(t, kids)
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_snapshot_agrees_with_stop_the_world(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            stw, _, _, _ = self.scan(t)
            snap, _, kids, _ = self.snap_scan(t)
            check(stw == snap, "one-shot snapshot and stop-the-world "
                  "differ on %d blocks" %
                  sum(stw[a] != snap.get(a) for a in stw))
            self.expect_leaky(t, snap)
            self.check_no_child(t, kids)
            check_free(t.pid)
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_snapshot_churn_20_scans(self):
        t = Target([self.churn], self.tmp)
        try:
            before = t.ask("check").split()
            check(before[0] == "ok", "churn: " + " ".join(before))
            verdict, stats, kids, _ = self.snap_scan(t, "-c", "-n", "20")
            check(len(stats) == 20 and len(kids) == 20,
                  "%d scans, %d snapshots of 20" % (len(stats), len(kids)))
            wrong = [a for a, c in verdict.items() if c != "still reachable"]
            check(not wrong, "%d live nodes not still reachable" % len(wrong))
            check_free(t.pid)
            self.check_no_child(t, kids)
            after = t.ask("check").split()
            check(after[0] == "ok", "churn: " + " ".join(after))
            check(int(after[1]) > int(before[1]) and
                  int(after[2]) > int(before[2]),
                  "churn made no progress: %s -> %s" % (before, after))
            pause = max(int(s["pause_ns"]) for s in stats)
            print("    longest snapshot pause %.2f ms" % (pause / 1e6))
        finally:
            rc = t.finish()
        check(rc == 0, "churn found its data corrupt (exit %d)" % rc)

    def hold_snapshot(self, t, ms):
        cf = self.cand_file(t)
        s = subprocess.Popen([self.cli, "-S", str(ms), str(t.pid), cf],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = s.stdout.readline()
        check(line.startswith("snapshot"), "scanner made no snapshot: %r %s"
              % (line, s.stderr.read() if s.poll() is not None else ""))
        child = int(line.split()[2])
        state, tracer = proc_status(child)
        check(tracer == s.pid and state[0] == "t",
              "snapshot child is %s, TracerPid %d" % (state, tracer))
        check_free(t.pid)
        return s, child

    def test_scan_snapshot_sigkill_scanner_mid_scan(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            s, child = self.hold_snapshot(t, 10000)
            s.kill()
            s.wait(5)
            check_free(t.pid)
            # EXITKILL: the kernel killed the child; at most a zombie.
            deadline = time.monotonic() + 2
            while os.path.exists("/proc/%d" % child) and \
                    proc_status(child)[0][0] != "Z":
                check(time.monotonic() < deadline,
                      "snapshot child %d outlived its tracer: %s" %
                      (child, proc_status(child)[0]))
                time.sleep(0.01)
            check(t.ask("ping") == "pong", "target does not answer")
            # The next snapshot reaps the zombie the killed scanner left.
            _, _, kids, err = self.snap_scan(t)
            check("reaped snapshot child %d" % child in err,
                  "stale child %d not reaped: %s" % (child, err.strip()))
            self.check_no_child(t, [child] + kids)
            check_free(t.pid)
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_snapshot_sigterm_cleans_up(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            s, child = self.hold_snapshot(t, 300)
            s.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            check(proc_status(child)[0][0] == "t" and s.poll() is None,
                  "SIGTERM cut the snapshot scan short")
            rc = s.wait(5)
            check(rc == -signal.SIGTERM, "scanner exit %d" % rc)
            check_free(t.pid)
            self.check_no_child(t, [child])
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")

    def test_scan_snapshot_target_signal_not_lost(self):
        t = Target([self.leaky, "wait"], self.tmp)
        try:
            cf = self.cand_file(t)
            s = subprocess.Popen([self.cli, "-s", "-H", "300", str(t.pid),
                                  cf], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            line = s.stdout.readline()
            check(line.startswith("stopped"), "scanner did not stop it")
            os.kill(t.pid, signal.SIGUSR1)
            check(s.wait(5) == 0, "scan failed: %s" % s.stderr.read())
            check_free(t.pid)
            deadline = time.monotonic() + 2
            while "usr1" not in t.text() and time.monotonic() < deadline:
                time.sleep(0.01)
            check("usr1" in t.text(), "SIGUSR1 sent during the stop lost")
            check(t.ask("ping") == "pong", "target does not answer")
        finally:
            check(t.finish() == 0, "leaky failed")


def parse_cli(out):
    """scan_cli's verdicts by address, stats per scan, classes."""
    verdict = {}
    for l in out.splitlines():
        if l.startswith("blk "):
            _, addr, rest = l.split(None, 2)
            verdict[int(addr, 16)] = rest.rsplit(" ", 1)[0]
    stats = [dict(kv.split("=") for kv in l.split()[1:])
             for l in out.splitlines() if l.startswith("stats ")]
    classes = {}
    for l in out.splitlines():
        m = re.match(r"class (.+) (\d+) (\d+)$", l)
        if m:
            classes[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return verdict, stats, classes


def uffd_left(pid):
    """userfaultfds in the target's fd table, mappings registered."""
    fds = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        fds += link == "anon_inode:[userfaultfd]"
    with open("/proc/%d/smaps" % pid) as f:
        uw = sum(1 for l in f if l.startswith("VmFlags:") and
                 " uw" in l.split(":", 1)[1] + " ")
    return fds, uw


def check_unregistered(pid):
    """No userfaultfd of ours in the target, nor anything registered."""
    deadline = time.monotonic() + 2
    while True:
        fds, uw = uffd_left(pid)
        if not fds and not uw:
            return
        if time.monotonic() > deadline:
            raise Fail("pid %d keeps %d userfaultfd(s), %d mapping(s) "
                       "registered" % (pid, fds, uw))
        time.sleep(0.01)


def parse_valgrind(text):
    """LEAK SUMMARY per kind, and the loss records not from zmalloc."""
    summary, outside = {}, {}
    for kind in VG_KIND:
        m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" % kind, text)
        if m:
            summary[kind] = (int(m.group(2).replace(",", "")),
                             int(m.group(1).replace(",", "")))
    rec = re.compile(r"==\d+== ([\d,]+)(?: \(([\d,]+) direct, [\d,]+ "
                     r"indirect\))? bytes in ([\d,]+) blocks are "
                     r"(definitely lost|indirectly lost|possibly lost|"
                     r"still reachable) in loss record")
    lines = text.splitlines()
    for i, l in enumerate(lines):
        m = rec.search(l)
        if not m:
            continue
        stack = []
        for l2 in lines[i + 1:]:
            if not re.search(r"==\d+==\s+(at|by) ", l2):
                break
            stack.append(l2)
        if any("zm_" in f for f in stack):
            continue
        nbytes = int((m.group(2) or m.group(1)).replace(",", ""))
        nblk = int(m.group(3).replace(",", ""))
        b, n = outside.get(m.group(4), (0, 0))
        outside[m.group(4)] = (b + nblk, n + nbytes)
    return summary, outside


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--results")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    suite = Suite(args)
    names = [n for n in dir(Suite) if n.startswith("test_")]
    names.sort(key=lambda n: Suite.__dict__[n].__code__.co_firstlineno)
    if args.cases:
        names = [n for n in names if any(c in n for c in args.cases)]
    passed = failed = skipped = 0
    for name in names:
        t0 = time.monotonic()
        try:
            if os.geteuid() != 0:
                raise Skip("needs root (ptrace, /proc/PID/clear_refs)")
            getattr(suite, name)()
            passed += 1
            print("ok %s (%.1fs)" % (name, time.monotonic() - t0))
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (name, e))
        except (Fail, subprocess.TimeoutExpired, OSError) as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        sys.stdout.flush()
    shutil.rmtree(suite.tmp, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if args.results:
        os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
        with open(args.results, "w") as f:
            f.write("%d %d %d\n" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
