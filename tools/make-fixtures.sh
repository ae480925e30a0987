#!/bin/sh
# Rebuilds the fixture generator and regenerates fixtures/parts, fixtures/parts_rgb,
# fixtures/replay and fixtures/png byte-for-byte from the default seed.
#   tools/make-fixtures.sh [BUILD_DIR]      (default: build-fixtures)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fixtures}
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target gen_fixtures -j2 >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fixtures.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$build/tools/gen_fixtures" "$tmp"
for d in parts parts_rgb replay line png; do
  rm -rf "$root/fixtures/$d"
  mkdir -p "$root/fixtures"
  cp -r "$tmp/$d" "$root/fixtures/$d"
done
echo "regenerated: $(find "$root/fixtures/parts" "$root/fixtures/parts_rgb" "$root/fixtures/replay" "$root/fixtures/line" "$root/fixtures/png" -type f | wc -l) files," \
     "$(du -sh "$root/fixtures/parts" "$root/fixtures/parts_rgb" "$root/fixtures/replay" "$root/fixtures/line" "$root/fixtures/png" | awk '{print $1}' | tr '\n' ' ')"
