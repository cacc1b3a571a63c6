#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# make install into a scratch DESTDIR, then build a Valkey-style program
# against it with pkg-config alone, run it, and check what it prints.
#   run.sh RESULT_FILE MALLOC
set -u
result=$1
malloc=$2
root=$(pwd)/build/install-$malloc
rm -rf "$root"
passed=0 failed=0
check() {
	if [ "$2" = "$3" ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "install-$malloc: $1: expected '$3', got '$2'" >&2
	fi
}
make --no-print-directory -s MALLOC="$malloc" PREFIX=/usr DESTDIR="$root" install >/dev/null
check "installed soname link" "$(readlink "$root/usr/lib/libzmalloc.so.1")" "libzmalloc.so.1.0.0"
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root/usr/lib/pkgconfig"
check "pkg-config finds zmalloc" "$(pkg-config --modversion zmalloc)" "1.0.0"
bin=$root/valkey_style
# shellcheck disable=SC2046
if cc -Wall -Wextra -Werror -o "$bin" tests/install/valkey_style.c \
	$(pkg-config --cflags zmalloc) $(pkg-config --libs zmalloc) \
	-Wl,-rpath,"$root/usr/lib"; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	echo "install-$malloc: the Valkey-style program does not build" >&2
fi
case $malloc in
libc) want='lib=libc prefix=0' ;;
prefix) want='lib=libc-prefix prefix=16' ;;
jemalloc) want='lib=jemalloc-5.3.0 prefix=0' ;;
esac
check "program output" "$("$bin" 2>&1)" \
	"$want rss>0=1 mem>0=1 dirty=1 smap=1 frag=1 leaked=0"
echo "$passed $failed 0" >"$result"
echo "install-$malloc: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
