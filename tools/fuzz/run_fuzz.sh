#!/bin/sh
# Replay a seed corpus through a libFuzzer target, then fuzz for a while.
# usage: run_fuzz.sh TARGET SEED_DIR WORK_DIR SECONDS MAX_LEN
set -eu
target=$1 seeds=$2 work=$3 seconds=$4 maxlen=$5
mkdir -p "$work"
cd "$work"
rm -f crash-* leak-* timeout-* oom-*
# every seed once: a regression check on known inputs
"$target" -runs=0 "$seeds"
# then explore; new inputs land in $work, failures as crash-* files here
status=0
"$target" -max_total_time="$seconds" -max_len="$maxlen" -print_final_stats=1 \
    "$work" "$seeds" >fuzz.log 2>&1 || status=$?
tail -n 15 fuzz.log
if [ "$status" -ne 0 ]; then
    echo "fuzzer failed (status $status); inputs: $(ls crash-* leak-* timeout-* oom-* 2>/dev/null)" >&2
    exit 1
fi
