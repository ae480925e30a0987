#!/bin/sh
# Times `anomalyctl report` on a large reject log: ROWS rejects (default one
# million) spread over DAYS (30) up to now, a counters row per minute, and
# SIDE x SIDE (256) ROI and heat-map PNGs for the newest IMAGES (600) rejects,
# written by the daemon's store code (bench/report_log.c); older rows name
# files already removed, or none. Then it times the report of the whole
# period newest first and highest score first (the default --limit 500, so
# 500 rejects with 2 images each), and of the last 24 hours, and prints each
# page's size.
#
# Usage: bench/report.sh [ROWS]
#   DAYS=30 IMAGES=600 SIDE=256 BUILD=build/release
#   WORK=DIR (build the log there and keep it; default a temporary folder,
#   removed at the end). A log already in WORK is reused.
set -eu
cd "$(dirname "$0")/.."
rows=${1:-1000000}
days=${DAYS:-30}
images=${IMAGES:-600}
side=${SIDE:-256}
build=${BUILD:-build/release}

if [ ! -x "$build/anomalyctl" ] || [ ! -x "$build/bench/report_log" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$(nproc)" --target anomalyctl report_log >/dev/null
fi

if [ -n "${WORK:-}" ]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/anomalyd-report-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT INT TERM
fi

if [ ! -f "$work/bench.db" ]; then
    "$build/bench/report_log" "$work/bench.db" "$work/images" "$rows" "$days" "$images" "$side" \
        fixtures/parts/train/good/*.png
    # A counters row per minute of the period, in one transaction: 30 fps,
    # a few drops, the rejects spread evenly, a slow drift of the scores.
    minutes=$((days * 1440))
    sqlite3 "$work/bench.db" "
WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < $minutes - 1)
INSERT INTO counters (minute, line, seconds, captured, inspected, dropped, rejects,
                      images_skipped, score_p50, score_p90, score_p99, score_max,
                      latency_ms_p50, latency_ms_p99, latency_ms_max)
SELECT strftime('%Y-%m-%d %H:%M', 'now', '-$days days', '+' || i || ' minutes'), 'bench', 60,
       1800, 1800 - d, d, $rows / $minutes + (i < $rows % $minutes), 0,
       0.2 + 0.05 * i / $minutes + s, 0.28 + 0.05 * i / $minutes + s,
       0.42 + 0.05 * i / $minutes + s, 0.7, 30 + 2 * s * 100, 45 + abs(s) * 500, 60
FROM (SELECT i, abs(random() % 4) AS d, (random() % 1000) / 100000.0 AS s FROM m);"
fi
echo "log: $(du -h "$work/bench.db" | cut -f1) database, $(du -sh "$work/images" | cut -f1) of images;" \
     "$(sqlite3 "$work/bench.db" 'SELECT COUNT(*) FROM rejects') reject rows"

cat > "$work/bench.yaml" <<YAML
line:
  name: bench
camera:
  source: replay
  replay_dir: $work/images
  width: $side
  height: $side
model:
  path: $work/model.safetensors
threshold: 0.5
reject_log:
  database: $work/bench.db
  image_dir: $work/images
YAML

run() {
    name=$1
    shift
    start=$(date +%s%N)
    "$build/anomalyctl" report --config "$work/bench.yaml" --out "$work/$name.html" "$@" >"$work/$name.txt"
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '%-32s %3d.%02d s  %6s  %s\n' "$*" $((ms / 1000)) $((ms % 1000 / 10)) \
        "$(du -h "$work/$name.html" | cut -f1)" "$(cut -d: -f2- "$work/$name.txt")"
}

echo
printf '%-32s %8s  %6s  %s\n' "anomalyctl report options" "wall" "page" "what it says"
run newest --since "${days}d"
run highest --since "${days}d" --sort score
run day --since 24h
