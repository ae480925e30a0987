#!/bin/sh
# Ablation of the detector settings on one trained model: each row changes
# one thing against the config and runs `anomalyctl eval` on the same data.
#
# Usage: bench/accuracy_ablation.sh CONFIG DATASET [BUILD_DIR]
#   CONFIG   a config whose model exists (e.g. bench/cache/mtd-<key>/config.yaml
#            after bench/accuracy.sh, or fixtures/configs/detect_parts.yaml)
#   DATASET  MVTec AD layout folder (e.g. ../shared/datasets/mtd)
# Environment: LIMIT (images per test type, default all), ROWS (rows to run,
# by the first word of their name, e.g. "base ssim=1 noise"; default all).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
config=$1 dataset=$2
build=${3:-$root/build-bench}
ctl=$build/anomalyctl
[ -x "$ctl" ] || { echo "ablation: $ctl not built" >&2; exit 1; }
[ -d "$dataset/test" ] || { echo "ablation: SKIPPED: no dataset at $dataset"; exit 0; }
limit_arg=""
[ -n "${LIMIT:-}" ] && limit_arg="--limit $LIMIT"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ablation.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cfgdir=$(cd "$(dirname "$config")" && pwd)

# variant NAME 'sed script' -> config copy in the config's own folder (so
# relative model paths still resolve), removed at exit
variant() {
    out=$cfgdir/.ablation-$$-$1.yaml
    sed "$2" "$config" >"$out"
    echo "$out" >>"$tmp/created"
    echo "$out"
}
cleanup_variants() { [ -f "$tmp/created" ] && xargs rm -f <"$tmp/created"; rm -rf "$tmp"; }
trap cleanup_variants EXIT

detector_key() { echo "/^detector:/,/^[a-z]/s/^  $1: .*/  $1: $2/"; }

row() {
    name=$1
    shift
    # ROWS lists rows by the first word of their name
    if [ -n "${ROWS:-}" ] && ! echo " $ROWS " | grep -qF " ${name%% *} "; then return 0; fi
    res=$("$ctl" eval $limit_arg "$@" 2>"$tmp/err" | grep '^RESULT') || {
        printf '| %-28s | failed: %s |\n' "$name" "$(tail -1 "$tmp/err")"
        return 0
    }
    img=$(echo "$res" | sed 's/.*image_auroc=\([^ ]*\).*/\1/')
    pix=$(echo "$res" | sed 's/.*pixel_auroc=\([^ ]*\).*/\1/')
    ips=$(echo "$res" | sed 's/.*inspections_per_s=\([^ ]*\).*/\1/')
    printf '| %-28s | %-9s | %-9s | %-13s |\n' "$name" "$img" "$pix" "$ips"
}

echo "ablation: $config on $dataset ${LIMIT:+(first $LIMIT images per type)}"
printf '| %-28s | %-9s | %-9s | %-13s |\n' setting "image AUC" "pixel AUC" inspections/s
echo "|------------------------------|-----------|-----------|---------------|"
row base --config "$config" --dataset "$dataset"
for t0 in 0.01 0.05 0.1 0.25 0.4; do
    row "noise_level=$t0" --config "$(variant nl$t0 "$(detector_key noise_level $t0)")" --dataset "$dataset"
done
row "steps=5" --config "$(variant st5 "$(detector_key steps 5)")" --dataset "$dataset"
row "steps=5,guidance=2" --config "$(variant g2 "$(detector_key steps 5);$(detector_key guidance 2)")" \
    --dataset "$dataset"
for s in 1 8; do
    row "sigma=$s" --config "$(variant sg$s "$(detector_key sigma $s)")" --dataset "$dataset"
done
row "noise 0.01,sigma 1,top 0.5%" --config "$(variant best "$(detector_key noise_level 0.01);$(detector_key sigma 1);$(detector_key score topk);$(detector_key topk_percent 0.5)")" \
    --dataset "$dataset"
row "score=max" --config "$(variant mx "$(detector_key score max)")" --dataset "$dataset"
row "score=topk 1%" --config "$(variant tk "$(detector_key score topk);$(detector_key topk_percent 1)")" \
    --dataset "$dataset"
row "ssim=1" --config "$config" --dataset "$dataset" --tune ssim=1
row "draws=4 (maps averaged)" --config "$config" --dataset "$dataset" --tune draws=4
row "scales=3" --config "$config" --dataset "$dataset" --tune scales=3
row "normalize=1 (train stats)" --config "$config" --dataset "$dataset" --tune normalize=1 \
    --fit-stats "$dataset/train/good"
row "baseline=zscore" --config "$config" --dataset "$dataset" --tune baseline=zscore \
    --fit-stats "$dataset/train/good"
row "baseline=contrast" --config "$config" --dataset "$dataset" --tune baseline=contrast
