#!/bin/sh
# Accuracy benchmark on real images (ARCHITECTURE §7, issue 4):
#   1. trains the default config (bench/accuracy_mtd.yaml) on
#      ../shared/datasets/mtd/train/good, or reuses the model it trained
#      before with the same config, step count and engine code
#      (bench/cache/<set>-<key>/, git-ignored); the same for mvtec_bottle;
#   2. evaluates each model with `anomalyctl eval` on its test set, beside
#      the two no-learning baselines of FINDINGS.md (per-pixel z-score
#      against the good training images, local contrast);
#   3. prints one table: image AUROC, pixel AUROC, inspections/s at 256x256
#      (time inside the detector), training time.
#
# Usage: bench/accuracy.sh [BUILD_DIR]     (default: build-bench, configured here)
# Environment:
#   ANOMALYD_DATASETS  dataset root (default: ../shared/datasets from the repo)
#   TRAIN_STEPS        training steps (default: train.steps of the config, 3000)
#   TRAIN_THREADS      threads for training (default 2)
#   SETS               which sets (default "mtd mvtec_bottle")
#   LIMIT              evaluate at most LIMIT images per test type (default: all)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${ANOMALYD_DATASETS:-$root/../shared/datasets}
if [ ! -d "$data/mtd/train/good" ]; then
    echo "accuracy: SKIPPED: no datasets at $data (needs ../shared/datasets/mtd and mvtec_bottle)"
    exit 0
fi
build=${1:-$root/build-bench}
if [ ! -x "$build/anomalyctl" ] || [ -z "${1:-}" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target anomalyctl -j2 >/dev/null
fi
ctl=$build/anomalyctl
sets=${SETS:-mtd mvtec_bottle}
limit_arg=""
[ -n "${LIMIT:-}" ] && limit_arg="--limit $LIMIT"
cache=$root/bench/cache
mkdir -p "$cache"

# Engine code version: the git trees of what shapes a trained model.
code_version() {
    (cd "$root" && for d in src/nn src/diffusion src/image include; do
        git rev-parse "HEAD:$d" 2>/dev/null || echo none
    done; git diff HEAD -- src/nn src/diffusion src/image include 2>/dev/null) | sha256sum | cut -c1-12
}

# model_dir SET TEMPLATE -> trains if needed, prints the folder
model_dir() {
    set_name=$1 template=$2
    steps=${TRAIN_STEPS:-$(sed -n '/^train:/,/^[a-z]/s/^  steps: *//p' "$template")}
    key=$( (cat "$template"; echo "steps=$steps"; code_version) | sha256sum | cut -c1-12)
    dir=$cache/$set_name-$key
    if [ ! -f "$dir/model.safetensors" ]; then
        mkdir -p "$dir"
        cp "$template" "$dir/config.yaml"
        sed -i "s/^  threads: .*/  threads: ${TRAIN_THREADS:-2}/" "$dir/config.yaml"
        echo "accuracy: training $set_name ($steps steps) into $dir" >&2
        t0=$(date +%s)
        "$ctl" train --config "$dir/config.yaml" --images "$data/$set_name/train/good" \
            --steps "$steps" >"$dir/train.log" 2>&1 || {
            echo "accuracy: training failed, see $dir/train.log" >&2
            tail -5 "$dir/train.log" >&2
            exit 1
        }
        echo $(($(date +%s) - t0)) >"$dir/train_seconds"
        sed -i "s/^  threads: .*/  threads: 2/" "$dir/config.yaml"
    fi
    echo "$dir"
}

# row LABEL TRAIN_TIME ARGS... -> one table row from `anomalyctl eval`
row() {
    label=$1 ttime=$2
    shift 2
    out=$("$ctl" eval $limit_arg "$@" 2>/dev/null | grep '^RESULT') || {
        printf '| %-36s | %-9s | %-9s | %-13s | %-8s |\n' "$label" failed - - "$ttime"
        return 0
    }
    img=$(echo "$out" | sed 's/.*image_auroc=\([^ ]*\).*/\1/')
    pix=$(echo "$out" | sed 's/.*pixel_auroc=\([^ ]*\).*/\1/')
    ips=$(echo "$out" | sed 's/.*inspections_per_s=\([^ ]*\).*/\1/')
    printf '| %-36s | %-9s | %-9s | %-13s | %-8s |\n' "$label" "$img" "$pix" "$ips" "$ttime"
}

echo "accuracy benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, code $(cd "$root" && git rev-parse --short HEAD)"
echo
printf '| %-36s | %-9s | %-9s | %-13s | %-8s |\n' "set / method" "image AUC" "pixel AUC" "inspections/s" "training"
echo "|--------------------------------------|-----------|-----------|---------------|----------|"
for s in $sets; do
    case $s in
    mtd) template=$root/bench/accuracy_mtd.yaml ;;
    mvtec_bottle) template=$root/bench/accuracy_bottle.yaml ;;
    *) echo "accuracy: unknown set $s" >&2; exit 2 ;;
    esac
    [ -d "$data/$s/test" ] || { echo "accuracy: $data/$s missing, skipped" >&2; continue; }
    row "$s: z-score baseline (no learning)" - --config "$template" --dataset "$data/$s" \
        --tune baseline=zscore --fit-stats "$data/$s/train/good"
    row "$s: local contrast (no learning)" - --config "$template" --dataset "$data/$s" \
        --tune baseline=contrast
    dir=$(model_dir "$s" "$template")
    row "$s: diffusion, default config" "$(cat "$dir/train_seconds")s" --config "$dir/config.yaml" \
        --dataset "$data/$s"
done
echo
echo "targets (issue 4, MTD): image AUROC >= 0.95, pixel AUROC >= 0.90, >= 8 inspections/s at 256x256"
