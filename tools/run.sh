#!/bin/sh
# Set up and run the main job: amp-broker on its built-in default
# configuration (loopback TCP, port 7760). Extra arguments go to amp-broker.
set -eu
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL
./tools/bootstrap.sh
echo "run: building amp-broker in build/ (the first time takes a few minutes)" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null || { echo "run: the build failed; see: cmake --build build" >&2; exit 1; }
exec build/broker/amp-broker "$@"
