#!/bin/sh
# Install a build tree into a temporary prefix, then build and run programs
# against it through pkg-config and through the CMake package; check that
# libamp.so and libamp-core.so export only amp_* symbols, and that
# libamp-core depends on neither libev nor OpenSSL; that amp-cli's bash
# completion and the man pages are installed.
# usage: check.sh BUILD_DIR   (CFLAGS: flags the build used, e.g. sanitizers)
set -eu
CFLAGS=${CFLAGS:-}
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "install check: $*" >&2
    exit 1
}
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(find "$work/prefix" -name libamp.so -printf '%h\n' | head -n1)
[ -n "$libdir" ] || fail "libamp.so is not installed"
core="$libdir/libamp-core.so"
[ -f "$core" ] || fail "libamp-core.so is not installed"
[ -f "$libdir/libamp-core.a" ] || fail "libamp-core.a is not installed"
# amp-cli's bash completion where bash-completion looks, and its man page
# beside amp-broker's
[ -f "$work/prefix/share/bash-completion/completions/amp-cli" ] ||
    fail "amp-cli's bash completion is not installed"
for page in amp-cli amp-broker; do
    [ -f "$work/prefix/share/man/man1/$page.1" ] || fail "the $page man page is not installed"
done
pc() {
    PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config "$@"
}

# libamp-core: no libev, no OpenSSL, neither linked nor referenced
if ldd "$core" | grep -E 'libev|libssl|libcrypto'; then
    fail "libamp-core.so links libev or OpenSSL"
fi
undef=$(nm -D --undefined-only "$core" | awk '{print $2}')
[ -n "$undef" ] || fail "nm found no undefined symbols in libamp-core.so (nm broken?)"
bad=$(echo "$undef" | grep -E '^(ev_|SSL_|EVP_|OPENSSL_|CRYPTO_|BIO_|ERR_)' || true)
[ -z "$bad" ] || fail "libamp-core.so uses libev/OpenSSL symbols: $bad"
# libamp itself is the one that uses them (so the check above can fail)
nm -D --undefined-only "$libdir/libamp.so" | grep -q ' SSL_' ||
    fail "libamp.so uses no SSL_ symbol: the core check above proves nothing"
if grep -Ei 'ev|ssl|openssl|crypto|pthread' "$libdir/pkgconfig/amp-core.pc" |
        grep -Ev '^(Name|Description|prefix|exec_prefix|libdir|includedir)'; then
    fail "amp-core.pc mentions libev, OpenSSL or threads"
fi
pc --print-requires amp | grep -q '^amp-core' || fail "amp.pc does not require amp-core"

# pkg-config: the core alone, shared and static
cc $CFLAGS -o "$work/pc_core_consumer" "$here/core_consumer.c" $(pc --cflags --libs amp-core)
LD_LIBRARY_PATH="$libdir" "$work/pc_core_consumer"
ldd "$work/pc_core_consumer" | grep -q 'libamp-core.so' ||
    fail "the amp-core consumer does not use libamp-core.so"
if ldd "$work/pc_core_consumer" | grep -E 'libev|libssl|libcrypto|libamp\.so'; then
    fail "the amp-core consumer pulled in libamp, libev or OpenSSL"
fi
cc $CFLAGS -o "$work/pc_core_consumer_static" "$here/core_consumer.c" \
    $(pc --cflags amp-core) "$libdir/libamp-core.a" $(pc --libs-only-other --static amp-core) -lm
"$work/pc_core_consumer_static"

# pkg-config: the whole library
cc $CFLAGS -o "$work/pc_consumer" "$here/consumer.c" $(pc --cflags --libs amp)
LD_LIBRARY_PATH="$libdir" "$work/pc_consumer"

# CMake package, shared and static, whole and core
cmake -S "$here" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_C_FLAGS="$CFLAGS" \
    >/dev/null
cmake --build "$work/cm" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cm/consumer_shared"
"$work/cm/consumer_static"
LD_LIBRARY_PATH="$libdir" "$work/cm/core_consumer_shared"
"$work/cm/core_consumer_static"

# hidden visibility: the dynamic symbol tables hold the public API only
for lib in "$libdir/libamp.so" "$core"; do
    extra=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^amp_' || true)
    if [ -n "$extra" ]; then
        echo "$lib exports symbols outside the amp_ prefix:" >&2
        echo "$extra" >&2
        exit 1
    fi
done
echo "install check passed"
