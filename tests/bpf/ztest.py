# SPDX-License-Identifier: BSD-3-Clause
"""What every BPF test runner shares: assertions, the skip rule and the
loop that runs the test_* functions of a module.

A case may skip only where the kernel cannot run it (or a tool is
missing); with ZTRACE_REQUIRE_BPF=1 a skip is a failure. The last line
printed is "N passed, N failed, N skipped", and the same three numbers
go to the results file (run_cases' argument, or $ZTEST_RESULTS) for the
summary of make test.
"""
import os
import sys
import time
import traceback

REQUIRE_BPF = os.environ.get("ZTRACE_REQUIRE_BPF") == "1"


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def within(got, want, tol, what):
    """An estimate within tol (a fraction) of the truth."""
    check(abs(got - want) <= tol * want,
          "%s: estimated %d, true %d (%+.1f%%, allowed %.0f%%)" %
          (what, got, want, 100.0 * (got - want) / want, 100 * tol))


def bpf_unavailable():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel without BTF"
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return "kernel without uprobes"
    return None


def run_cases(namespace, only=(), results=None, width=40):
    """Runs namespace's test_* functions in the order they are defined."""
    cases = [f for n, f in namespace.items()
             if n.startswith("test_") and callable(f)]
    cases.sort(key=lambda f: f.__code__.co_firstlineno)
    if only:
        cases = [f for f in cases if any(o in f.__name__ for o in only)]
    passed = failed = skipped = 0
    why = bpf_unavailable()
    for func in cases:
        t0 = time.monotonic()
        try:
            if why:
                raise Skip(why)
            func()
            status = "ok"
            passed += 1
        except Skip as e:
            if REQUIRE_BPF:
                status = "FAIL (ZTRACE_REQUIRE_BPF=1 forbids skipping: %s)" % e
                failed += 1
            else:
                status = "skip (%s)" % e
                skipped += 1
        except Exception as e:
            status = "FAIL: %s" % e
            if not isinstance(e, AssertionError):
                status += "\n" + traceback.format_exc()
            failed += 1
        print("%-*s %s (%.1f s)" % (width, func.__name__, status,
                                   time.monotonic() - t0), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    results = results or os.environ.get("ZTEST_RESULTS")
    if results:
        os.makedirs(os.path.dirname(results) or ".", exist_ok=True)
        with open(results, "w") as f:
            f.write("%d %d %d\n" % (passed, failed, skipped))
    return 1 if failed else 0
