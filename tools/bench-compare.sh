#!/usr/bin/env bash
# Compare two builds' benchmark figures, run side by side on this machine.
#
#   tools/bench-compare.sh [--rounds N] [--benches "codec call broker"]
#                          [--bench-args ARGS] [--out DIR] BEFORE_BUILD AFTER_BUILD
#   tools/bench-compare.sh --report DIR    (summarise a finished run again)
#
# BEFORE_BUILD and AFTER_BUILD are CMake build directories (each holding
# tools/amp-bench/amp-bench, which starts its own build's amp-broker). Each
# round runs every benchmark once from each build, interleaved (before,
# after, after, before, before, after, ...: each goes first in every other
# round), so that the machine's noise and warmth fall on both alike; each
# invocation gets --runs 1 (plus --bench-args) and the rounds give the
# samples. Every number a benchmark prints becomes a figure: table cells
# are named "row | column" from the table's header, numbers in sentences
# "first clause | the words before the number";
# numbers that are the same in every output (counts, sizes) are left out.
# Printed per figure: the median before, the median after, after/before,
# the lowest and highest after/before of single rounds (the noise), and
# whether the change is better (lower is better for latencies, times and
# memory: p50, p99, us, ms, KiB, seconds).
#
# Outputs stay in DIR (default: a new /tmp/bench-compare.XXXXXX), one file
# per invocation, named BENCH.ROUND.before|after.
set -euo pipefail

rounds=3
benches="codec call broker"
bench_args=""
out=""
report=""
usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --benches) benches="$2"; shift 2 ;;
    --bench-args) bench_args="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) usage ;;
    *) break ;;
    esac
done

summarise() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import os, re, statistics, sys

out, benches = sys.argv[1], sys.argv[2].split()
NUM = re.compile(r"^-?\d[\d,]*(?:\.\d+)?(?:x|/s)?$")
INLINE = re.compile(r"(?<![\w.^=])(\d[\d,]*(?:\.\d+)?)(?:x|/s)?(?![\w.^])")
LOWER = re.compile(r"\bp50\b|\bp99\b|\bus\b|\bms\b|KiB|MiB|bytes\b|seconds|latenc", re.I)

def value(tok):
    return float(tok.replace(",", "").rstrip("x").replace("/s", ""))

def fields(line):
    """Fields separated by two spaces or more, with the column each ends at."""
    return [(m.group(0), m.end()) for m in re.finditer(r"\S+(?: \S+)*", line)]

def column_names(header, label_end, ends):
    """Names of the numeric columns ending at `ends`, from the header:
    its fields (two spaces apart) that lie past the row label, each word
    going to the first column ending at or after it (right-aligned columns;
    a header field may run two columns' names together)."""
    names = [[] for _ in ends]
    for field, fend in fields(header):
        if fend <= label_end + 1:
            continue
        start = fend - len(field)
        for m in re.finditer(r"\S+", field):
            wend = start + m.end()
            for j, e in enumerate(ends):
                if wend <= e + 1:
                    names[j].append(m.group(0))
                    break
    return [" ".join(n) for n in names]

def figures(text):
    """{name: (value, lower_is_better)} for every number in one output."""
    got, header = {}, None
    for line in text.splitlines():
        fs = fields(line)
        nums = [i for i, (f, _) in enumerate(fs) if NUM.match(f)]
        if len(fs) >= 2 and not nums and not INLINE.search(line):
            header = line  # a table's column names
            continue
        if not line.strip():
            header = None
            continue
        first = nums[0] if nums else len(fs)
        if header and nums and first > 0 and nums == list(range(first, len(fs))):
            label = " ".join(f for f, _ in fs[:first])
            cols = column_names(header, fs[first - 1][1], [fs[i][1] for i in nums])
            for k, i in enumerate(nums):
                col = cols[k] or "col %d" % (k + 1)
                if cols.count(cols[k]) > 1:  # two columns of one name (MB/s)
                    col += " [col %d]" % (k + 1)
                got["%s | %s" % (label, col)] = (value(fs[i][0]), bool(LOWER.search(col)), True)
            continue
        # a number in a sentence: named by the sentence's first clause and
        # the words just before it ("fan-out | amp")
        head = INLINE.sub("#", re.split(r"[,:]", line)[0]).strip()
        prev = 0
        for k, m in enumerate(INLINE.finditer(line)):
            before = line[prev:m.start()].rstrip(" ,:;(")
            words = re.split(r"[,:;(]", before)[-1].strip() or "value %d" % (k + 1)
            prev = m.end()
            name = "%s | %s" % (head, words)
            lower = LOWER.search(line[m.end():m.end() + 12]) or re.search(r"\bp50\b|\bp99\b", name)
            while name in got:
                name += "'"
            # a whole number in a sentence may be a setting: left out if constant
            got[name] = (value(m.group(1)), bool(lower), "." in m.group(1))
    return got

def fmt(v):
    return "{:,.0f}".format(v) if abs(v) >= 1000 else "{:.4g}".format(v)

def runs(bench, side):
    files = sorted(f for f in os.listdir(out) if f.startswith(bench + ".") and f.endswith("." + side))
    return [figures(open(os.path.join(out, f)).read()) for f in files]

for bench in benches:
    before, after = runs(bench, "before"), runs(bench, "after")
    if not before or not after:
        continue
    names = []
    for r in before + after:
        names += [n for n in r if n not in names]
    rows = []
    for n in names:
        b = [r[n][0] for r in before if n in r]
        a = [r[n][0] for r in after if n in r]
        _, lower, measured = next(r[n] for r in before + after if n in r)
        if not b or not a or (len(set(a + b)) == 1 and not measured):
            continue  # not in both, or a setting
        mb, ma = statistics.median(b), statistics.median(a)
        ratio = ma / mb if mb else float("nan")
        # each round's after/before (the pairs ran one after the other)
        per = sorted(x[n][0] / y[n][0] for x, y in zip(after, before)
                     if n in x and n in y and y[n][0])
        spread = "%.2f-%.2f" % (per[0], per[-1]) if per else ""
        better = "" if abs(ratio - 1) < 0.005 else (
            "better" if (ratio < 1) == lower else "worse")
        rows.append((n, mb, ma, ratio, spread, better))
    print("== amp-bench %s: medians of %d rounds (before) and %d (after) ==" %
          (bench, len(before), len(after)))
    w = max([len(r[0]) for r in rows] + [6])
    print("%-*s %12s %12s %12s %11s" % (w, "figure", "before", "after", "after/before",
                                        "rounds"))
    for n, mb, ma, ratio, spread, better in rows:
        print("%-*s %12s %12s %12.3f %11s  %s" % (w, n, fmt(mb), fmt(ma), ratio, spread, better))
    print()
EOF
}

if [ -n "$report" ]; then
    [ $# -eq 0 ] || usage
    summarise "$report" "$benches"
    exit 0
fi
[ $# -eq 2 ] || usage
before="$1/tools/amp-bench/amp-bench"
after="$2/tools/amp-bench/amp-bench"
for b in "$before" "$after"; do
    [ -x "$b" ] || { echo "bench-compare: no $b (build it first)" >&2; exit 2; }
done
[ -n "$out" ] || out=$(mktemp -d /tmp/bench-compare.XXXXXX)
mkdir -p "$out"
echo "bench-compare: $rounds rounds of: $benches; outputs in $out" >&2
for r in $(seq 1 "$rounds"); do
    # odd rounds before then after, even rounds after then before: the
    # second of a pair runs on a warmer machine
    if [ $((r % 2)) -eq 1 ]; then sides="before after"; else sides="after before"; fi
    for bench in $benches; do
        for side in $sides; do
            if [ "$side" = before ]; then bin="$before"; else bin="$after"; fi
            echo "  round $r/$rounds: $bench, $side" >&2
            # shellcheck disable=SC2086  # bench_args is a list of words
            "$bin" "$bench" --runs 1 $bench_args >"$out/$bench.$(printf %02d "$r").$side"
        done
    done
done
echo "before: $1" && echo "after:  $2" && echo
summarise "$out" "$benches"
echo "(re-summarise with: $0 --report $out --benches \"$benches\")"
