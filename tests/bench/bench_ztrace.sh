#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# bench_ztrace.sh - the per-event cost of tracing, side by side in one run,
# on the same work (bench_ztrace_work: zmalloc/zfree of a fixed size mix):
#
#   untraced   the work alone
#   floor      "ztrace noop": BPF programs that do nothing, on the same
#              zmalloc probes (what any uprobe-based tool pays)
#   hist       ztrace hist
#   leaks      ztrace leaks (live blocks with stacks)
#   memleak    a bpftrace script doing what bcc's memleak does: uprobe and
#              uretprobe on glibc's malloc, uprobe on free, a map of live
#              addresses with sizes, times and stacks, bytes per stack
#
# Each is run REPS times, interleaved; the median is kept. Goals (issue 3):
# hist within 1.3x of the floor, leaks within 2x, leaks >= 5x cheaper per
# allocation than memleak.
#
# Usage: bench_ztrace.sh ZTRACE WORK LIBDIR [ROUNDS BATCH REPS]

set -eu
ZTRACE=$1
WORK=$2
ROUNDS=${4:-500}
BATCH=${5:-1000}
REPS=${6:-3}
LIBC=$(ldd "$WORK" | awk '/libc\.so/ { print $3 }')
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

MEMLEAK="uprobe:$LIBC:malloc /pid == cpid/ { @size[tid] = arg0; }
uretprobe:$LIBC:malloc /pid == cpid && @size[tid]/ {
	@addr_size[retval] = @size[tid];
	@addr_ts[retval] = nsecs;
	@addr_stack[retval] = ustack;
	@stack_bytes[ustack] = sum(@size[tid]);
	delete(@size[tid]);
}
uprobe:$LIBC:free /pid == cpid/ {
	delete(@addr_size[arg0]);
	delete(@addr_ts[arg0]);
	delete(@addr_stack[arg0]);
}"

run() {
	case $1 in
	untraced) "$WORK" "$ROUNDS" "$BATCH" ;;
	floor) "$ZTRACE" noop -- "$WORK" "$ROUNDS" "$BATCH" ;;
	hist) "$ZTRACE" hist -o /dev/null -- "$WORK" "$ROUNDS" "$BATCH" ;;
	leaks) "$ZTRACE" leaks -o /dev/null -- "$WORK" "$ROUNDS" "$BATCH" ;;
	memleak)
		BPFTRACE_MAP_KEYS_MAX=$((BATCH * 4)) bpftrace -e "$MEMLEAK" \
			-c "$WORK $ROUNDS $BATCH" 2>/dev/null | grep '^allocs=' ;;
	esac
}

CONFIGS="untraced floor hist leaks memleak"
command -v bpftrace >/dev/null || CONFIGS="untraced floor hist leaks"
rep=1
while [ "$rep" -le "$REPS" ]; do
	for c in $CONFIGS; do
		run "$c" | grep '^allocs=' >> "$OUT/$c" ||
			{ echo "bench_ztrace: the $c run failed" >&2; exit 1; }
	done
	rep=$((rep + 1))
done

median() { # file field
	sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "bench_ztrace: $ROUNDS x $BATCH zmalloc + zfree of a mixed size, $REPS runs each (median)"
echo "  glibc for memleak: $LIBC"
printf '  %-9s %10s %10s %11s %12s\n' config ns/alloc ns/free ns/event "added/event"
base=
for c in $CONFIGS; do
	a=$(median "$OUT/$c" alloc_ns)
	f=$(median "$OUT/$c" free_ns)
	e=$(echo "$a $f" | awk '{ printf "%.1f", ($1 + $2) / 2 }')
	[ -n "$base" ] || base=$e
	echo "$c $a $f $e" >> "$OUT/table"
	printf '  %-9s %10s %10s %11s %12s\n' "$c" "$a" "$f" "$e" \
		"$(echo "$e $base" | awk '{ printf "%.1f", $1 - $2 }')"
done

awk -v base="$base" '
{ a[$1] = $2; f[$1] = $3; e[$1] = $4 }
END {
	printf "ratios (ns per event, tracing included):\n"
	printf "  hist / floor      %5.2fx  (goal <= 1.30)\n", e["hist"] / e["floor"]
	printf "  leaks / floor     %5.2fx  (goal <= 2.00)\n", e["leaks"] / e["floor"]
	if ("memleak" in a) {
		printf "  memleak / leaks   %5.2fx per alloc event\n", a["memleak"] / a["leaks"]
		printf "  memleak / leaks   %5.2fx per allocation, its free included  (goal >= 5.00)\n", (a["memleak"] + f["memleak"]) / (a["leaks"] + f["leaks"])
	}
	printf "ratios of the cost added to the untraced work:\n"
	printf "  hist / floor      %5.2fx\n", (e["hist"] - base) / (e["floor"] - base)
	printf "  leaks / floor     %5.2fx\n", (e["leaks"] - base) / (e["floor"] - base)
	if ("memleak" in a)
		printf "  memleak / leaks   %5.2fx per allocation, its free included\n", (a["memleak"] + f["memleak"] - a["untraced"] - f["untraced"]) / (a["leaks"] + f["leaks"] - a["untraced"] - f["untraced"])
}' "$OUT/table"
