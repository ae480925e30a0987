#!/bin/sh
# The ThreadSanitizer stage's reports (tests/cmake/tsan.cmake): every program
# it runs writes its reports to DIR/report.PID (TSAN_OPTIONS log_path), so a
# race in a daemon that a test killed, or whose exit status it did not
# check, still fails the stage.
#   reports.sh clear DIR    before the tests: an empty DIR
#   reports.sh check DIR    after them: prints each report, fails if any
set -eu
dir=$2
case "$1" in
clear)
    rm -rf "$dir"
    mkdir -p "$dir"
    ;;
check)
    found=0
    for f in "$dir"/report.*; do
        [ -e "$f" ] || continue
        found=$((found + 1))
        echo "==== $f"
        cat "$f"
    done
    if [ "$found" -gt 0 ]; then
        echo "ThreadSanitizer: $found program(s) reported, see above" >&2
        exit 1
    fi
    echo "ThreadSanitizer: no reports"
    ;;
*)
    echo "usage: reports.sh clear|check DIR" >&2
    exit 2
    ;;
esac
