#!/bin/sh
# Set up and run the main job: amp-broker on its built-in default
# configuration. The broker is not part of this release yet, so this builds
# everything that exists and says so.
set -eu
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL
./tools/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
if [ -x build/broker/amp-broker ]; then
    exec build/broker/amp-broker
fi
cat >&2 <<MSG
amp-broker is not part of this release yet: there is no broker to start.
What is built and usable now (in build/):
  build/tools/amp-cli/amp-cli decode | encode     AMP bytes <-> JSON lines
  build/tools/amp-bench/amp-bench codec           codec benchmark against Twisted
  build/libamp/libamp.a, libamp.so                the codec library
MSG
exit 1
