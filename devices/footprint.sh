#!/bin/sh
# The footprint of amp::core on a Cortex-M3 beside x86-64, as a Markdown
# table (the README's "Devices" section).
#
#   devices/footprint.sh [CORTEX_M_BUILD [HOST_BUILD]]
#
# CORTEX_M_BUILD: a build of devices/cortex-m (made here when missing;
# default build/devices/cortex-m). HOST_BUILD: the normal build, for its
# libamp-core.a (default build).
#
# How each column is measured:
# - flash, RAM: arm-none-eabi-size of footprint-codec.elf and
#   footprint-session.elf minus that of footprint-empty.elf (the same
#   startup, semihosting and arena with no core in it). flash = text + data,
#   RAM = data + bss: everything the core adds to a firmware, including the
#   C library and libgcc routines it calls (strtod, snprintf, 64-bit
#   division). Each image keeps every public function of its part (found in
#   its headers by gen_keep.py) through a table of pointers, so nothing is
#   left out by --gc-sections; the tables (4 bytes a function, in flash) are
#   subtracted.
# - arena: the static arena's high water mark in bytes (block headers
#   included) for a small workload, printed by the image under
#   qemu-system-arm: codec: decode a call fed one byte at a time, read its
#   values, encode the answer; session: serve that call and answer it, and
#   make a call and take its answer.
# - .o columns: text + data of the libamp-core.a members the image linked,
#   before the linker drops anything: arm-none-eabi-size on the Cortex-M3
#   archive (-Os), size on the host's (x86-64, -O2).
set -eu
absolute() { mkdir -p "$1" && cd "$1" && pwd; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CM=$(absolute "${1:-$ROOT/build/devices/cortex-m}")
HOST=$(absolute "${2:-$ROOT/build}")
cd "$ROOT"

if [ ! -f "$CM/footprint-empty.elf" ]; then
    env -u CFLAGS -u LDFLAGS cmake -S devices/cortex-m -B "$CM" \
        -DCMAKE_TOOLCHAIN_FILE="$ROOT/devices/toolchains/cortex-m3.cmake" \
        -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
    cmake --build "$CM" -j2 >/dev/null
fi

cm_archive=$CM/amp/libamp/libamp-core.a
host_archive=$HOST/libamp/libamp-core.a
for a in "$cm_archive" "$host_archive"; do
    [ -f "$a" ] || { echo "footprint: $a is missing (build it first)" >&2; exit 1; }
done

# text+data (less the table of kept functions) and data+bss of an image,
# from arm-none-eabi-size's Berkeley format
image_sizes() {
    tables=0
    for size in $(arm-none-eabi-nm -S "$1" | awk '$4 == "keep" || $4 == "footprint_keep" { print $2 }'); do
        tables=$((tables + 0x$size))
    done
    arm-none-eabi-size "$1" | awk -v t=$tables 'NR == 2 { print $1 + $2 - t, $2 + $3 }'
}

# The libamp-core.a members an image kept: those with a section of nonzero
# size in the link map's memory map (a member can be pulled in and then
# dropped whole by --gc-sections).
members() {
    awk '/^Linker script and memory map/ { on = 1; next }
         on && /libamp-core\.a\(/ && match($0, /0x[0-9a-f]+ +0x[0-9a-f]+ /) {
             split(substr($0, RSTART, RLENGTH), f, / +/)
             if (f[2] != "0x0") {
                 name = $0; sub(/.*libamp-core\.a\(/, "", name); sub(/\).*/, "", name)
                 sub(/\.(o|obj)$/, "", name); print name
             }
         }' "$1" | sort -u
}

# text+data of those members of an archive: SIZE ARCHIVE MEMBER...
objects_size() {
    tool=$1 archive=$2
    shift 2
    "$tool" "$archive" | awk -v want=" $* " '
        NR > 1 { name = $6; sub(/\.(o|obj)$/, "", name);
                 if (index(want, " " name " ")) total += $1 + $2 }
        END { print total + 0 }'
}

arena_high_water() {
    out=$(timeout 60 qemu-system-arm -M mps2-an385 -nographic \
        -semihosting-config enable=on,target=native -kernel "$1" 2>&1)
    echo "$out" | sed -n 's/^arena high water \([0-9]*\) .*/\1/p'
}

comma() {
    printf '%s' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
}

set -- $(image_sizes "$CM/footprint-empty.elf")
empty_flash=$1 empty_ram=$2

echo "| amp::core part | Cortex-M3 flash (text+data) | Cortex-M3 RAM (data+bss) | arena used | Cortex-M3 .o (text+data) | x86-64 .o (text+data) |"
echo "|---|---:|---:|---:|---:|---:|"
for part in codec session; do
    image="$CM/footprint-$part.elf"
    set -- $(image_sizes "$image")
    flash=$(($1 - empty_flash)) ram=$(($2 - empty_ram))
    arena=$(arena_high_water "$image")
    list=$(members "$image.map" | tr '\n' ' ')
    cm_obj=$(objects_size arm-none-eabi-size "$cm_archive" $list)
    host_obj=$(objects_size size "$host_archive" $list)
    label="codec only"
    [ "$part" = session ] && label="codec + session"
    [ "$part" = codec ] && flash_codec=$flash
    echo "| $label | $(comma $flash) | $(comma $ram) | $(comma "$arena") | $(comma $cm_obj) | $(comma $host_obj) |"
done

set -- $(image_sizes "$CM/footprint-nofloat.elf")
echo
echo "Float's part of the codec's flash: $(comma $((flash_codec - ($1 - empty_flash)))) bytes" \
     "(footprint-nofloat.elf: the codec without amp_float_parse and amp_float_format)"
