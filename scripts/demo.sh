#!/bin/sh
# The main job in one command, on a fresh Debian 12 machine:
#   installs the build dependencies, builds anomalyd, runs the daemon on the
#   bundled replay of parts (a few with defects) with the bundled model,
#   then shows the rejects it logged to SQLite and where the heat maps are,
#   and ends by writing the HTML report of those rejects (anomalyctl report).
# Usage: scripts/demo.sh            (as root or a user with sudo)
#        SKIP_DEPS=1 scripts/demo.sh   (dependencies already installed)
#        SKIP_BUILD=1 BUILD=DIR scripts/demo.sh   (programs already built in DIR)
set -eu
cd "$(dirname "$0")/.."

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    scripts/install-deps.sh
fi

build=${BUILD:-build/release}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$(nproc)" --target anomalyd anomalyctl
fi

export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # as the systemd unit
config=fixtures/configs/demo.yaml
out=build/demo
rm -rf "$out"

echo
echo "== anomalyd --check-config: the config and model are valid"
"$build/anomalyd" --config "$config" --check-config >/dev/null

echo
echo "== anomalyd on the replay of fixtures/replay/frames (every frame inspected: --no-drop)"
"$build/anomalyd" --config "$config" --no-drop

echo
echo "== Rejects logged in $out/demo.db"
sqlite3 -header -column "$out/demo.db" "
SELECT id, ts, printf('frame_%04d.png', frame_seq) AS frame,
       printf('%.4f', score) AS score, printf('%.4f', threshold) AS threshold,
       box_x || ',' || box_y || ' ' || box_w || 'x' || box_h AS box, area
FROM rejects ORDER BY id;"

echo
echo "== Frames that really have a defect (fixtures/replay/labels.csv)"
grep -v ',good$' fixtures/replay/labels.csv | tail -n +2

echo
echo "== Counters (one row per minute)"
sqlite3 -header -column "$out/demo.db" "
SELECT minute, captured, inspected, dropped, rejects,
       printf('%.1f', latency_ms_p50) AS latency_p50_ms,
       printf('%.1f', latency_ms_p99) AS latency_p99_ms
FROM counters ORDER BY id;"

echo
echo "== Images of each reject (ROI and heat map)"
sqlite3 "$out/demo.db" "SELECT image_path || '  ' || heatmap_path FROM rejects ORDER BY id;"
echo
echo "Heat maps are under $(pwd)/$out/images/<day>/*-heatmap.png"
echo "Query more: sqlite3 $out/demo.db 'SELECT * FROM rejects'   (see docs/reject-log.md)"

echo
echo "== The report: one HTML page of the rejects and trends (docs/report.md)"
"$build/anomalyctl" report --config "$config" --since 24h --out "$out/report.html"
echo "Report: $(pwd)/$out/report.html"
