#!/bin/sh
# Speed of the C UNet against PyTorch CPU on the same weights and threads, in
# one run, so ratios are comparable even on a shared machine.
#
#   bench/speed.sh [BUILD_DIR] [THREADS]      (default build-bench, 2 threads)
#
# Builds BUILD_DIR in Release if needed, then prints one table per model:
# ms per UNet evaluation (batch 1) at 256x256 and 128x128 for C and PyTorch,
# their ratio, the conv layers' GFLOP/s against sgemm's peak (1024^3, same
# threads, measured in this run), and training samples/s (batch 8 of 64x64,
# forward + backward + clip + AdamW). A last section repeats the default
# model on ONE thread and compares process CPU time, which stays meaningful
# when other jobs load the machine (wall-clock ratios then swing widely).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
THREADS=${2:-2}
PY=${PYTHON:-/usr/bin/python3}
REPS_256=${REPS_256:-5}
REPS_128=${REPS_128:-9}
TRAIN_STEPS=${TRAIN_STEPS:-5}

if [ ! -x "$BUILD/bench/speed_unet" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target speed_unet -j"$THREADS" >/dev/null
BIN=$BUILD/bench/speed_unet
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
# Both sides use GCC's libgomp; idle OpenMP workers that spin steal the cores
# from whoever is working when other jobs load the machine, so both run with
# passive waiting unless the caller says otherwise.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

val() { sed -n "s/^$1=//p"; }

echo "anomalyd UNet speed, $THREADS threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
PEAK=$("$BIN" sgemm "$THREADS" | val sgemm_gflops)
echo "OpenBLAS sgemm 1024^3: $PEAK GFLOP/s"
for BASE in 32 16; do
    MODEL=$TMP/base$BASE.safetensors
    NPARAM=$("$BIN" save "$MODEL" 1 "$BASE" 1,2,2 1 8 1 | val params)
    echo
    echo "model: base $BASE, mult 1,2,2, 1 res-block, groups 8, 1 channel ($NPARAM parameters)"
    printf '%-9s %9s %9s %9s %10s %10s %10s %8s\n' input "C ms" "torch ms" "speedup" "C inf/s" "conv GF" "GF/s" "of peak"
    for S in 256 128; do
        if [ "$S" = 256 ]; then R=$REPS_256; else R=$REPS_128; fi
        OUT=$("$BIN" infer "$MODEL" "$S" "$S" "$THREADS" "$R")
        CMS=$(echo "$OUT" | val ms)
        GF=$(echo "$OUT" | val conv_gflop)
        GFS=$(echo "$OUT" | val conv_gflops)
        TMS=$("$PY" "$ROOT/bench/speed_torch.py" infer "$MODEL" "$S" "$S" "$THREADS" "$R" | val ms)
        awk -v s="${S}x$S" -v c="$CMS" -v t="$TMS" -v gf="$GF" -v gfs="$GFS" -v pk="$PEAK" 'BEGIN {
            printf "%-9s %9.1f %9.1f %8.2fx %10.1f %10.2f %10.1f %7.0f%%\n", s, c, t, t / c, 1000 / c, gf, gfs, 100 * gfs / pk }'
    done
    CT=$("$BIN" train "$MODEL" "$THREADS" "$TRAIN_STEPS")
    TT=$("$PY" "$ROOT/bench/speed_torch.py" train "$MODEL" "$THREADS" "$TRAIN_STEPS")
    awk -v c="$(echo "$CT" | val train_samples_per_s)" -v t="$(echo "$TT" | val train_samples_per_s)" \
        -v cm="$(echo "$CT" | val train_ms_per_step)" -v tm="$(echo "$TT" | val train_ms_per_step)" 'BEGIN {
        printf "training batch 8 of 64x64: C %.1f samples/s (%.0f ms/step), torch %.1f samples/s (%.0f ms/step), ratio %.2fx\n", c, cm, t, tm, c / t }'
done

echo
echo "one thread, process CPU time (robust to load from other jobs):"
printf '%-22s %9s %9s %9s\n' what "C ms" "torch ms" "speedup"
for BASE in 32 16; do
    MODEL=$TMP/base$BASE.safetensors
    for S in 256 128; do
        C1=$("$BIN" infer "$MODEL" "$S" "$S" 1 3 | val cpu_ms)
        T1=$(OMP_NUM_THREADS=1 "$PY" "$ROOT/bench/speed_torch.py" infer "$MODEL" "$S" "$S" 1 3 | val cpu_ms)
        awk -v w="base $BASE ${S}x$S" -v c="$C1" -v t="$T1" 'BEGIN { printf "%-22s %9.1f %9.1f %8.2fx\n", w, c, t, t / c }'
    done
    C1=$("$BIN" train "$MODEL" 1 3 | val train_cpu_ms_per_step)
    T1=$(OMP_NUM_THREADS=1 "$PY" "$ROOT/bench/speed_torch.py" train "$MODEL" 1 3 | val train_cpu_ms_per_step)
    awk -v w="base $BASE train step" -v c="$C1" -v t="$T1" 'BEGIN { printf "%-22s %9.1f %9.1f %8.2fx\n", w, c, t, t / c }'
done
