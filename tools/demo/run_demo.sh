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
echo "== ztrace leaks --scan -d 1.5 --top 3 -- $DEMO 2"
echo "   (verdicts instead of suspects: a scan of the demo's memory finds"
echo "    the values cache_set overwrote definitely lost, and the failed"
echo "    requests log_request keeps still reachable)"
echo
"$ZTRACE" leaks --scan -d 1.5 --top 3 -- "$DEMO" 2
