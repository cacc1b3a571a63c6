#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# run_demo.sh - what "make demo" shows: ztrace hist, ztrace leaks, then
# ztrace leaks --scan, on the bundled demo program (a cache that leaks from
# two call sites).
#
# Usage: run_demo.sh ZTRACE_BUILD_DIR

set -e
OUT=$1
ZTRACE=$OUT/ztrace
DEMO=$OUT/demo

if [ "$(id -u)" != 0 ]; then
	echo "make demo: ztrace loads BPF programs, which needs root: run sudo make demo" >&2
	exit 1
fi

echo "== ztrace hist -i 1 -- $DEMO 2"
echo "   (sizes of what the demo allocates and frees, every second)"
echo
"$ZTRACE" hist -i 1 -- "$DEMO" 2
echo
echo "== ztrace leaks --top 5 -- $DEMO 2"
echo "   (who holds the blocks still live when the demo exits: the two"
echo "    leaking call sites, cache_set and log_request, come first)"
echo
"$ZTRACE" leaks --top 5 -- "$DEMO" 2
echo
echo "== ztrace leaks --scan --top 3 -- $DEMO 2"
echo "   (verdicts instead of suspects, from a scan of the demo's memory at"
echo "    its exit: the values cache_set overwrote are definitely lost. The"
echo "    lines log_request kept were leaked when their array was freed, but"
echo "    the freed array's stale bytes still point at most of them: memory"
echo "    ztrace cannot account for counts as a root, so a scan may hide a"
echo "    leak, never invent one)"
echo
"$ZTRACE" leaks --scan --top 3 -- "$DEMO" 2
