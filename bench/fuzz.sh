#!/bin/sh
# Long libFuzzer campaign: every harness of tests/fuzz/ (or those named) for
# SECONDS each, one after another, over a corpus kept in WORK/<name>/corpus
# (seeded from tests/fuzz/corpus/<name>/ and grown run after run), then a
# table of executions, executions per second, corpus size, coverage and
# findings. A finding (crash, leak, timeout, out-of-memory) leaves its
# reproducer in WORK/<name>/ and makes the exit status 1.
#
# Usage: bench/fuzz.sh [SECONDS] [HARNESS...]     (default 600 s, all)
#   BUILD=build/fuzz (configured with CC=clang -DANOMALYD_FUZZ=ON; built if
#   missing)  WORK=build/fuzz-long  JOBS=1 (harnesses run side by side)
# ctest -L fuzz runs the same harnesses for 20 s each (scripts/test.sh).
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-600}
[ $# -gt 0 ] && shift
build=${BUILD:-build/fuzz}
work=${WORK:-build/fuzz-long}
jobs=${JOBS:-1}

if [ ! -d "$build/tests/fuzz" ]; then
    CC=clang cmake -S . -B "$build" -DANOMALYD_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null

if [ $# -gt 0 ]; then
    names="$*"
else
    names=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
fi

run_one() { # run_one NAME: one harness for $seconds, its log in $work/NAME/log
    name=$1
    dir=$work/$name
    mkdir -p "$dir/corpus"
    cp -n tests/fuzz/corpus/"$name"/* "$dir/corpus/" 2>/dev/null || true
    dict=""
    [ -f "tests/fuzz/fuzz_$name.dict" ] && dict="-dict=tests/fuzz/fuzz_$name.dict"
    set +e
    # shellcheck disable=SC2086
    "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$dir/" $dict "$dir/corpus" > "$dir/log" 2>&1
    echo $? > "$dir/rc"
    set -e
}

echo "fuzz campaign: $seconds s per harness, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
running=0
for name in $names; do
    [ -f "tests/fuzz/fuzz_$name.c" ] || { echo "no harness tests/fuzz/fuzz_$name.c" >&2; exit 2; }
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait

status=0
printf '%-15s %8s %12s %9s %8s %8s %9s\n' harness seconds executions exec/s corpus cov findings
for name in $names; do
    dir=$work/$name
    log=$dir/log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "$dir/corpus" | wc -l)
    found=$(ls "$dir" | grep -c -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    # a sanitizer report that did not stop the run still counts
    ubsan=$(grep -c 'runtime error:' "$log" || true)
    found=$((found + ubsan))
    rc=$(cat "$dir/rc")
    [ "$rc" = 0 ] && [ "$found" = 0 ] || status=1
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    printf '%-15s %8s %12s %9s %8s %8s %9s\n' "$name" "${secs:--}" "${execs:--}" "$rate" \
        "$corpus" "${cov:--}" "$found"
done
[ "$status" = 0 ] && echo "no findings" || echo "FINDINGS: see $work/<harness>/ (reproducers) and log"
exit "$status"
