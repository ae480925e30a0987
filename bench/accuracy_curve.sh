#!/bin/sh
# Accuracy against training time: evaluates every head snapshot that
# bench/snapshot_head.sh kept while `anomalyctl train` ran (files named
# head-<seconds>s-step<N>.safetensors), on a whole test set, and prints one
# table row per snapshot; with gnuplot installed it also draws them into a
# PNG (image and pixel AUROC against minutes of head training).
#
# Usage: bench/accuracy_curve.sh CONFIG SNAPSHOT_DIR DATASET [PNG] [BUILD_DIR]
#   CONFIG    the recipe config whose model.path is the diffusion model the
#             heads were trained with (the head file beside it is replaced
#             by each snapshot in turn, in a copy of the folder)
#   OFFSET_S  seconds of training before the head started (the diffusion
#             model's own training time), added to the time column; default 0
#   EVERY     evaluate only snapshots whose step is a multiple of EVERY
#             (default 1: all)
#   CACHE     folder for finished rows (RESULT lines per snapshot), so a
#             rerun evaluates only new snapshots (default: none)
#   LABEL     name of this run in the plot (default: the snapshot folder)
#   ALSO      another run's PNG.dat (written beside every PNG) to draw in
#             the same plot, e.g. to compare two recipes
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
config=$1 snaps=$2 dataset=$3 png=${4:-} build=${5:-$root/build/release}
ctl=$build/anomalyctl
offset=${OFFSET_S:-0}
[ -d "$dataset/test" ] || { echo "accuracy_curve: SKIPPED: no test set at $dataset"; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cfgdir=$(cd "$(dirname "$config")" && pwd)
model=$(sed -n 's/^  path: *//p' "$config" | head -1)
case $model in /*) ;; *) model=$cfgdir/$model ;; esac
cp "$model" "$work/model.safetensors"
sed "s|^  path: .*|  path: model.safetensors|" "$config" >"$work/config.yaml"
table=$work/table.txt
echo "# minutes(head) minutes(total) step image_auroc pixel_auroc" >"$table"
printf '| %-12s | %-13s | %-6s | %-9s | %-9s |\n' "head minutes" "total minutes" step "image AUC" "pixel AUC"
echo "|--------------|---------------|--------|-----------|-----------|"
for f in $(cd "$snaps" && ls head-*s-step*.safetensors | sort -t- -k2 -n | sed "s|^|$snaps/|"); do
    b=$(basename "$f")
    sec=$(echo "$b" | sed 's/head-\([0-9]*\)s-.*/\1/')
    step=$(echo "$b" | sed 's/.*-step\([0-9]*\)\..*/\1/')
    [ $((step % ${EVERY:-1})) -eq 0 ] || continue
    if [ -n "${CACHE:-}" ] && [ -f "$CACHE/$b.result" ]; then
        out=$(cat "$CACHE/$b.result")
    else
        cp "$f" "$work/model.head.safetensors"
        out=$("$ctl" eval --config "$work/config.yaml" --dataset "$dataset" 2>/dev/null | grep '^RESULT') || continue
        [ -n "${CACHE:-}" ] && mkdir -p "$CACHE" && echo "$out" >"$CACHE/$b.result"
    fi
    img=$(echo "$out" | sed 's/.*image_auroc=\([^ ]*\).*/\1/')
    pix=$(echo "$out" | sed 's/.*pixel_auroc=\([^ ]*\).*/\1/')
    awk -v s="$sec" -v o="$offset" -v st="$step" -v i="$img" -v p="$pix" 'BEGIN {
        printf "| %12.1f | %13.1f | %6d | %-9s | %-9s |\n", s / 60, (s + o) / 60, st, i, p }'
    echo "$(awk -v s="$sec" -v o="$offset" 'BEGIN { printf "%.2f %.2f", s / 60, (s + o) / 60 }') $step $img $pix" >>"$table"
done
if [ -n "$png" ]; then
    label=${LABEL:-$(basename "$(dirname "$snaps")")}
    { echo "# $label"; cat "$table"; } >"$png.dat"
    also=""
    if [ -n "${ALSO:-}" ]; then
        al=$(head -1 "$ALSO" | sed 's/^# //')
        also=", \"$ALSO\" using 2:4 with linespoints dt 2 title \"$al image\", \"$ALSO\" using 2:5 with linespoints dt 2 title \"$al pixel\""
    fi
    if command -v gnuplot >/dev/null; then
        gnuplot <<GP
set terminal pngcairo size 720,420 font "DejaVu Sans,10" noenhanced
set output "$png"
set title "$(basename "$dataset"): AUROC against training time (2 cores)"
set xlabel "minutes of training (diffusion model + head)"
set ylabel "AUROC"
set yrange [0.5:1]
set grid
set key bottom right
plot "$table" using 2:4 with linespoints title "$label image", \
     "$table" using 2:5 with linespoints title "$label pixel"$also
GP
        echo "plot: $png"
    else
        echo "plot skipped: gnuplot is not installed (apt-get install gnuplot-nox)"
    fi
fi
