#!/bin/sh
# Set up and run every test: the unit and interop suites on a normal build,
# the same suites under AddressSanitizer + UndefinedBehaviorSanitizer, and
# short libFuzzer runs. Usage: tools/run-tests.sh  (FUZZ_SECONDS=N to change
# the length of each fuzz run; default 30)
set -eu
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
# when started from make, keep the inner builds quiet about directories
unset MAKEFLAGS MFLAGS MAKELEVEL
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

./tools/bootstrap.sh

step() { printf '\n==== %s\n' "$*"; }

step "build (RelWithDebInfo) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure --no-tests=error

step "build with ASan + UBSan and test"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAMP_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
# Criterion reports a test's result before the process exits, so a leak
# found at exit does not fail the test: read every test's output instead.
log=build-asan/sanitizer-run.log
ASAN_OPTIONS=detect_leaks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure --no-tests=error -V >"$log" 2>&1 ||
    { grep -E "Test #|Failed|FAIL" "$log" | tail -n 40; echo "ASan+UBSan suite failed; see $log" >&2; exit 1; }
grep -E "^[0-9]+/[0-9]+ Test" "$log"
if grep -nE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log"; then
    echo "sanitizer reports in $log" >&2
    exit 1
fi

step "libFuzzer targets (clang-14, ASan + UBSan), ${FUZZ_SECONDS}s each"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAMP_BUILD_FUZZERS=ON -DAMP_SANITIZE=ON -DAMP_BUILD_TESTS=OFF \
    -DAMP_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build build-fuzz -j"$JOBS"
ctest --test-dir build-fuzz --output-on-failure --no-tests=error

step "all tests passed"
