#!/bin/sh
# Install a build tree into a temporary prefix, then build and run programs
# against it through pkg-config and through the CMake package; check that
# libamp.so exports only amp_* symbols.
# usage: check.sh BUILD_DIR   (CFLAGS: flags the build used, e.g. sanitizers)
set -eu
CFLAGS=${CFLAGS:-}
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(find "$work/prefix" -name libamp.so -printf '%h\n' | head -n1)

# pkg-config
PKG_CONFIG_PATH="$libdir/pkgconfig" cc $CFLAGS -o "$work/pc_consumer" "$here/consumer.c" \
    $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs amp)
LD_LIBRARY_PATH="$libdir" "$work/pc_consumer"

# CMake package, shared and static
cmake -S "$here" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_C_FLAGS="$CFLAGS" \
    >/dev/null
cmake --build "$work/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cm/consumer_shared"
"$work/cm/consumer_static"

# hidden visibility: the dynamic symbol table holds the public API only
extra=$(nm -D --defined-only "$libdir/libamp.so" | awk '{print $3}' | grep -v '^amp_' || true)
if [ -n "$extra" ]; then
    echo "libamp.so exports symbols outside the amp_ prefix:" >&2
    echo "$extra" >&2
    exit 1
fi
echo "install check passed"
