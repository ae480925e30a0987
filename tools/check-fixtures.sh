#!/bin/sh
# Regenerates the fixtures into a temporary folder with GEN (the built
# gen_fixtures) and checks they are byte-identical to the committed ones.
#   tools/check-fixtures.sh GEN FIXTURES_DIR
set -eu
gen=$1
fixtures=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fixtures-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$gen" "$tmp"
status=0
for d in parts parts_rgb replay line png; do
  if ! diff -r "$tmp/$d" "$fixtures/$d"; then
    echo "fixtures/$d differs from a fresh run of gen_fixtures (run tools/make-fixtures.sh and commit, or fix the generator's determinism)" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "fixtures are byte-identical to a fresh regeneration ($(find "$tmp" -type f | wc -l) files)"
exit $status
