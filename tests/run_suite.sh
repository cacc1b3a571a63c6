#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Runs cmocka test binaries and records the totals for tests/summarize.sh.
#   run_suite.sh RESULT_FILE "WRAPPER" BINARY...
# WRAPPER (may be empty) prefixes each command, e.g. valgrind. A binary that
# crashes or exits non-zero without cmocka's summary counts as one failure.
set -u
result=$1
wrapper=$2
shift 2
passed=0 failed=0 skipped=0
name=$(basename "$result")
# The sampler reads its seed when the library loads: fixed, runs repeat.
export ZMALLOC_SAMPLE_SEED=12345
for bin in "$@"; do
	log=$result.$(basename "$bin").log
	# shellcheck disable=SC2086
	$wrapper "$bin" >"$log" 2>&1
	rc=$?
	# cmocka names a failed or skipped case twice: when it runs, and in
	# its closing list. Count each case once.
	p=$(grep -c '^\[       OK \]' "$log")
	f=$(grep '^\[  FAILED  \] test' "$log" | sort -u | wc -l)
	f_err=$(grep '^\[  ERROR   \] test' "$log" | sort -u | wc -l)
	s=$(grep '^\[  SKIPPED \] test' "$log" | sort -u | wc -l)
	f=$((f + f_err))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "$name: $(basename "$bin") exited with status $rc:" >&2
		tail -n 20 "$log" >&2
	fi
	if [ "$f" -ne 0 ]; then
		grep -E '^\[  (FAILED|ERROR)   ?\]|error|Error|ERROR' "$log" | head -n 20 >&2
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
echo "$passed $failed $skipped" >"$result"
echo "$name: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
