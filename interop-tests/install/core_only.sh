#!/bin/sh
# Build and install the core alone (-DAMP_CORE_ONLY=ON) from SOURCE_DIR:
# the configure step looks up none of libev, OpenSSL, msgpack, inih or
# Criterion; only libamp-core and its headers are built and installed; a
# program builds against the result with pkg-config amp-core and with the
# CMake package.
# usage: core_only.sh SOURCE_DIR   (CFLAGS: flags the build used)
set -eu
CFLAGS=${CFLAGS:-}
export CFLAGS
src=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "core-only check: $*" >&2
    exit 1
}
cmake -S "$src" -B "$work/b" -DAMP_CORE_ONLY=ON -DCMAKE_BUILD_TYPE=Release >"$work/log"
cache="$work/b/CMakeCache.txt"
[ -f "$cache" ] || fail "no CMakeCache.txt"
grep -q '^AMP_CORE_ONLY:BOOL=ON' "$cache" || fail "AMP_CORE_ONLY is not set in the cache"
if grep -Ei '^(EV_|OPENSSL|MSGPACK|INIH|CRITERION|JANSSON|PKG_CONFIG)' "$cache"; then
    fail "a core-only configure looked up a library the core does not use"
fi
cmake --build "$work/b" -j2 >>"$work/log" || { cat "$work/log" >&2; fail "build failed"; }
cmake --install "$work/b" --prefix "$work/prefix" >>"$work/log"
inc="$work/prefix/include/amp"
for h in alloc.h box.h core.h error.h export.h session.h strmap.h value.h version.h; do
    [ -f "$inc/$h" ] || fail "amp/$h is not installed"
done
for h in amp.h conn.h client.h endpoint.h; do
    [ ! -e "$inc/$h" ] || fail "amp/$h (libamp, not the core) is installed"
done
libdir=$(find "$work/prefix" -name 'libamp-core.a' -printf '%h\n' | head -n1)
[ -n "$libdir" ] || fail "libamp-core.a is not installed"
[ -f "$libdir/libamp-core.so" ] || fail "libamp-core.so is not installed"
[ -z "$(find "$work/prefix" -name 'libamp.*')" ] || fail "libamp was built"
[ ! -e "$libdir/pkgconfig/amp.pc" ] || fail "amp.pc is installed"
[ -z "$(find "$work/b" -name 'amp-broker' -o -name 'amp-cli' -o -name 'amp_unit_tests')" ] ||
    fail "the broker, a tool or a test was built"

PKG_CONFIG_PATH="$libdir/pkgconfig"
export PKG_CONFIG_PATH
cc $CFLAGS -o "$work/consumer" "$here/core_consumer.c" $(pkg-config --cflags --libs amp-core)
LD_LIBRARY_PATH="$libdir" "$work/consumer"
cmake -S "$here" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
[ ! -e "$work/cm/consumer_shared" ] || fail "a libamp consumer was built against the core"
LD_LIBRARY_PATH="$libdir" "$work/cm/core_consumer_shared"
"$work/cm/core_consumer_static"
echo "core-only check passed"
