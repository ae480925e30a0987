#!/bin/sh
# A label-free check of detector settings: `anomalyctl synth --dataset`
# pastes the synthetic defects the learned head trains on over good images,
# and `anomalyctl eval` scores that set for detector.sigma 0, 1, 2, 4 and
# detector.mirror none, lr, all (eval --tune flips=1|2|4; mirroring changes
# only the head's map). No real defect is needed, but the numbers are
# optimistic (the head learned these defect kinds, on these good images):
# read them for direction, not level.
#
# Usage: bench/synthetic_check.sh CONFIG IMAGES_DIR [BUILD_DIR]
#   CONFIG      a config whose model exists (e.g. bench/models/mtd/config.yaml)
#   IMAGES_DIR  good images (e.g. ../shared/datasets/mtd/train/good)
#   BUILD_DIR   where anomalyctl is built (default build-bench)
# Environment: COUNT (samples, default 300; about 70% get a defect), SEED
# (default 4242).
set -eu
[ $# -ge 2 ] || { sed -n '2,15p' "$0"; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
config=$1 images=$2 count=${COUNT:-300} seed=${SEED:-4242}
ctl=${3:-$root/build-bench}/anomalyctl
[ -x "$ctl" ] || { echo "synthetic_check: $ctl not built" >&2; exit 1; }
[ -d "$images" ] || { echo "synthetic_check: SKIPPED: no images at $images"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synthetic_check.XXXXXX")
cfgdir=$(cd "$(dirname "$config")" && pwd)

# variant NAME 'sed script' -> config copy in the config's own folder (so
# relative model paths still resolve), removed at exit
variant() {
    out=$cfgdir/.synthetic-check-$$-$1.yaml
    sed "$2" "$config" >"$out"
    echo "$out" >>"$tmp/created"
    echo "$out"
}
cleanup_variants() { [ -f "$tmp/created" ] && xargs rm -f <"$tmp/created"; rm -rf "$tmp"; }
trap cleanup_variants EXIT

# the config with detector.sigma S: its `  sigma:` line replaced, or one
# added under `detector:` (and that section added) when it has none
with_sigma() {
    if sed -n '/^detector:/,/^[a-z]/p' "$config" | grep -q '^  sigma:'; then
        variant "sigma$1" "/^detector:/,/^[a-z]/s/^  sigma:.*/  sigma: $1/"
    elif grep -q '^detector:' "$config"; then
        variant "sigma$1" "/^detector:/a\\
\\  sigma: $1"
    else
        variant "sigma$1" "\$a\\
detector:\\
\\  sigma: $1"
    fi
}

row() {
    name=$1
    shift
    res=$("$ctl" eval "$@" --dataset "$tmp/set" 2>"$tmp/err" | grep '^RESULT') || {
        printf '| %-16s | failed: %s |\n' "$name" "$(tail -1 "$tmp/err")"
        return 0
    }
    img=$(echo "$res" | sed 's/.*image_auroc=\([^ ]*\).*/\1/')
    pix=$(echo "$res" | sed 's/.*pixel_auroc=\([^ ]*\).*/\1/')
    printf '| %-16s | %-11s | %-11s |\n' "$name" "$img" "$pix"
}

"$ctl" synth --config "$config" --images "$images" --out "$tmp/set" --dataset \
    --count "$count" --seed "$seed" >"$tmp/synth.log" 2>&1 || {
    cat "$tmp/synth.log" >&2
    exit 1
}
defects=$(find "$tmp/set/test/synthetic" -name "*.png" | wc -l)
# what the config itself sets (absent: the key's default)
own() { sed -n "/^detector:/,/^[a-z]/s/^  $1: *\([^ #]*\).*/\1/p" "$config"; }
sigma=$(own sigma) mirror=$(own mirror)
echo "synthetic check: $config on $count good images from $images, $defects of them also" \
    "with a synthetic defect (seed $seed); config sigma ${sigma:-default}, mirror ${mirror:-default}"
printf '| %-16s | %-11s | %-11s |\n' setting "image AUROC" "pixel AUROC"
echo "|------------------|-------------|-------------|"
for s in 0 1 2 4; do
    row "sigma=$s" --config "$(with_sigma $s)"
done
for m in none:1 lr:2 all:4; do
    row "mirror=${m%%:*}" --config "$config" --tune "flips=${m#*:}"
done
