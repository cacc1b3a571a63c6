#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Adds up the per-suite totals that run_suite.sh (and test-bpf) recorded in
# RESULTS_DIR, one "passed failed skipped" line per file, and prints the
# closing line. Fails when a test failed or when no test ran at all.
set -u
dir=$1
passed=0 failed=0 skipped=0 suites=0
for f in "$dir"/*; do
	case $f in *.log) continue ;; esac
	[ -f "$f" ] || continue
	read -r p fl s <"$f" || continue
	passed=$((passed + p)) failed=$((failed + fl)) skipped=$((skipped + s))
	suites=$((suites + 1))
done
echo "suites: $suites"
echo "total: $passed passed, $failed failed, $skipped skipped"
if [ "$suites" -eq 0 ] || [ "$passed" -eq 0 ]; then
	echo "summarize: no test ran" >&2
	exit 1
fi
[ "$failed" -eq 0 ]
