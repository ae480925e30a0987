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
#   HEAD_STEPS         also train the learned head (anomalyctl train --head-only)
#                      for this many steps and add rows for detector.map head
#                      and both (default 0: no head rows)
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

# Engine code version: the committed git objects of what shapes a trained
# model (uncommitted edits are not seen: commit before benchmarking).
code_version() {
    (cd "$root" && for p in src/nn src/diffusion src/image include/anomalyd/unet.h \
        include/anomalyd/diffusion.h include/anomalyd/model.h include/anomalyd/image.h; do
        git rev-parse "HEAD:$p" 2>/dev/null || echo none
    done) | sha256sum | cut -c1-12
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
    mtd) template=$root/bench/accuracy_mtd.yaml short=MTD ;;
    mvtec_bottle) template=$root/bench/accuracy_bottle.yaml short=bottle ;;
    *) echo "accuracy: unknown set $s" >&2; exit 2 ;;
    esac
    [ -d "$data/$s/test" ] || { echo "accuracy: $data/$s missing, skipped" >&2; continue; }
    row "$short: z-score baseline (no learning)" - --config "$template" --dataset "$data/$s" \
        --tune baseline=zscore --fit-stats "$data/$s/train/good"
    row "$short: local contrast (no learning)" - --config "$template" --dataset "$data/$s" \
        --tune baseline=contrast
    dir=$(model_dir "$s" "$template")
    row "$short: diffusion, default config" "$(cat "$dir/train_seconds")s" --config "$dir/config.yaml" \
        --dataset "$data/$s"
    if [ "${HEAD_STEPS:-0}" -gt 0 ]; then
        if [ "$(cat "$dir/head_steps" 2>/dev/null)" != "$HEAD_STEPS" ]; then
            echo "accuracy: training the learned head of $s ($HEAD_STEPS steps)" >&2
            t0=$(date +%s)
            "$ctl" train --config "$dir/config.yaml" --images "$data/$s/train/good" --head-only \
                --head-steps "$HEAD_STEPS" >"$dir/head.log" 2>&1 || {
                echo "accuracy: head training failed, see $dir/head.log" >&2
                tail -5 "$dir/head.log" >&2
                exit 1
            }
            echo $(($(date +%s) - t0)) >"$dir/head_seconds"
            echo "$HEAD_STEPS" >"$dir/head_steps"
        fi
        for m in head both; do
            sed "s/^  map: .*/  map: $m/" "$dir/config.yaml" >"$dir/config_$m.yaml"
        done
        row "$short: learned head (map: head)" "+$(cat "$dir/head_seconds")s" \
            --config "$dir/config_head.yaml" --dataset "$data/$s"
        row "$short: diff + head (map: both)" "+$(cat "$dir/head_seconds")s" \
            --config "$dir/config_both.yaml" --dataset "$data/$s"
    fi
done
echo
echo "targets (issue 4, MTD): image AUROC >= 0.95, pixel AUROC >= 0.90, >= 8 inspections/s at 256x256"
