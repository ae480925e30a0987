#!/bin/sh
# Trains the tiny fixture model fixtures/model/parts.safetensors with
# `anomalyctl train` on fixtures/parts/train/good and fixtures/configs/parts.yaml.
# Other modules' tests (detector, daemon, calibrate) load this file, so it is
# committed; regenerate it only on purpose. The same machine and thread count
# (detector.threads in the config) give the same weights bit for bit.
#   tools/make-fixture-model.sh [BUILD_DIR]      (default: build-fixtures)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fixtures}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target anomalyctl -j2 >/dev/null
model=$root/fixtures/model/parts.safetensors
mkdir -p "$root/fixtures/model"
rm -f "$model" "$model.ckpt"
start=$(date +%s)
"$build/anomalyctl" train --config "$root/fixtures/configs/parts.yaml" \
    --images "$root/fixtures/parts/train/good"
# the checkpoint (Adam moments, 3x the model) is not a fixture
rm -f "$model.ckpt"
echo "fixtures/model/parts.safetensors: $(wc -c <"$model") bytes, sha256 $(sha256sum "$model" | cut -c1-16)..., $(( $(date +%s) - start )) s"

# The learned head on that model (fixtures/configs/head_parts.yaml).
start=$(date +%s)
"$build/anomalyctl" train --config "$root/fixtures/configs/head_parts.yaml" \
    --images "$root/fixtures/parts/train/good" --head-only
head=$root/fixtures/model/parts.head.safetensors
echo "fixtures/model/parts.head.safetensors: $(wc -c <"$head") bytes, $(( $(date +%s) - start )) s"
