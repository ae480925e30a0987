#!/bin/sh
# Runs one libFuzzer harness over a fresh copy of its seed corpus (ctest -L fuzz).
#   run-fuzz.sh WORKDIR SEEDDIR HARNESS [libFuzzer options...]
# New inputs land in WORKDIR/corpus and crash reproducers in WORKDIR/, never
# in the repository. Exit status is the harness's: 0 = no finding.
set -eu
work=$1 seeds=$2 harness=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
exec "$harness" -artifact_prefix="$work/" "$@" "$work/corpus"
