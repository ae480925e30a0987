#!/bin/sh
# Keeps a copy of a head file each time training rewrites it, named by the
# seconds since this script started and the step recorded in the file, so
# AUROC can be measured against training time afterwards.
# Usage: bench/snapshot_head.sh HEAD_FILE OUT_DIR   (runs until killed)
set -eu
head=$1 out=$2
mkdir -p "$out"
t0=$(date +%s) last=""
while :; do
    if [ -f "$head" ]; then
        m=$(stat -c %Y "$head")
        if [ "$m" != "$last" ]; then
            last=$m
            sleep 2 # let the durable rename settle
            step=$(grep -a -o '"anomalyd.head.steps":"[0-9]*"' "$head" | grep -o '[0-9]*' || echo 0)
            cp "$head" "$out/head-$(($(date +%s) - t0))s-step$step.safetensors"
        fi
    fi
    sleep 10
done
