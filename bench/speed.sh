#!/bin/sh
# Speed of the C networks against PyTorch CPU on the same weights and threads,
# in one run, so ratios are comparable even on a shared machine.
#
#   bench/speed.sh [BUILD_DIR] [THREADS]      (default build-bench, 2 threads)
#
# Builds BUILD_DIR in Release if needed, then prints, one section each
# (SECTIONS="unet recipe cpu" by default; name fewer to run fewer):
#
# unet: one table per model: ms per UNet evaluation (batch 1) at 256x256 and
#   128x128 for C and PyTorch, their ratio, the conv layers' GFLOP/s against
#   sgemm's peak (1024^3, same threads, measured in this run), and training
#   samples/s (batch 8 of 64x64, forward + backward + clip + AdamW).
# recipe: the detector's recipe with the learned head (detector.map: head) on
#   RECIPE_SIZE (256) square frames resized to the model input RECIPE_INPUT
#   (128, the recipe's model.input_width/height) for gray and RGB: UNet base 32, mult 1,2,2, 1 res-block,
#   groups 8, and a head of base 16, groups 8, 4 levels, both freshly
#   initialised (speed does not depend on the weights). Rows, medians of
#   RECIPE_REPS: the one-step reconstruction (noise + one UNet evaluation +
#   x0) and the head's forward at the model input, and the whole inspection
#   of a frame (resize included). The C inspection is
#   the real ad_detector_inspect with the default detector settings (8-bit
#   ROI to float, reconstruction, the head on the frame and its three mirror
#   images (mirror: all), sigmoid, average, no smoothing (sigma 0), max,
#   defect box); PyTorch's is reconstruction + four head passes + sigmoid +
#   average + max. Inspections/s = 1000 / C ms; the target is >= 4 on 2
#   threads. Then head training per step on a batch of 8 HEAD_CROP (128)
#   crops: the head's forward + BCE/focal loss + backward + clip + AdamW +
#   EMA, apart the eight one-step reconstructions head training makes (one
#   crop at a time, as src/head/head_train.c), and both: samples/s.
#   RECIPE_DETAIL=1 gives both the head of train.head_detail (it also reads
#   the frame at twice the input size).
# cpu: the default model on ONE thread, comparing process CPU time, which
#   stays meaningful when other jobs load the machine (wall-clock ratios then
#   swing widely).
#
# The C side is bench/speed_unet (its comment says what each command
# times), the PyTorch side bench/speed_torch.py with tests/reference/.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
THREADS=${2:-2}
PY=${PYTHON:-/usr/bin/python3}
REPS_256=${REPS_256:-5}
REPS_128=${REPS_128:-9}
TRAIN_STEPS=${TRAIN_STEPS:-5}
SECTIONS=${SECTIONS:-unet recipe cpu}
RECIPE_SIZE=${RECIPE_SIZE:-256}
RECIPE_INPUT=${RECIPE_INPUT:-128}
RECIPE_REPS=${RECIPE_REPS:-$REPS_256}
HEAD_CROP=${HEAD_CROP:-128}

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
has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

echo "anomalyd speed, $THREADS threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
# The default UNet (base 32) or a smaller one, 1 channel, fresh weights, as
# $TMP/base$1.safetensors; prints its parameter count.
save_unet() { "$BIN" save "$TMP/base$1.safetensors" 1 "$1" 1,2,2 1 8 1 | val params; }

if has unet; then
PEAK=$("$BIN" sgemm "$THREADS" | val sgemm_gflops)
echo "OpenBLAS sgemm 1024^3: $PEAK GFLOP/s"
for BASE in 32 16; do
    MODEL=$TMP/base$BASE.safetensors
    NPARAM=$(save_unet "$BASE")
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
fi

if has recipe; then
S=$RECIPE_SIZE
I=$RECIPE_INPUT
echo
# RECIPE_DETAIL=1: the head reads the frame at twice the size as well (train.head_detail)
if [ "${RECIPE_DETAIL:-0}" = 1 ]; then DETAIL=detail; HEAD_KIND="train.head_detail on"; else DETAIL=; HEAD_KIND="train.head_zscore and head_detail off, the default"; fi
echo "recipe on ${S}x$S frames, model input ${I}x$I: one-step reconstruction (UNet base 32, mult 1,2,2, 1 res-block, groups 8) + head (base 16, groups 8, 4 levels; $HEAD_KIND) x 4 mirrored passes (detector.mirror: all) + sigmoid, average, max; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-15s %9s %9s %9s %10s\n' colour stage "C ms" "torch ms" "speedup" "C per s"
for COLOUR in gray rgb; do
    if [ "$COLOUR" = gray ]; then C=1; else C=3; fi
    MODEL=$TMP/recipe_$COLOUR.safetensors
    "$BIN" save "$MODEL" "$C" 32 1,2,2 1 8 1 >/dev/null
    "$BIN" savehead "$MODEL" 16 8 4 1 $DETAIL >/dev/null
    CO=$("$BIN" inspect "$MODEL" "$I" "$I" "$THREADS" "$RECIPE_REPS" "$S" "$S")
    TO=$("$PY" "$ROOT/bench/speed_torch.py" inspect "$MODEL" "$I" "$I" "$THREADS" "$RECIPE_REPS" "$S" "$S")
    awk -v col="$COLOUR" -v cr="$(echo "$CO" | val recon_ms)" -v tr="$(echo "$TO" | val recon_ms)" \
        -v ch="$(echo "$CO" | val head_ms)" -v th="$(echo "$TO" | val head_ms)" \
        -v ci="$(echo "$CO" | val ms)" -v ti="$(echo "$TO" | val ms)" 'BEGIN {
        row(col, "reconstruction", cr, tr)
        row(col, "head", ch, th)
        row(col, "inspection", ci, ti) }
        function row(col, w, c, t) { printf "%-6s %-15s %9.1f %9.1f %8.2fx %10.1f\n", col, w, c, t, t / c, 1000 / c }'
done
echo "(C per s of the inspection row = inspections/s of ${S}x$S frames; target >= 4 at 256x256 on 2 threads)"

echo
echo "head training, batch 8 of ${HEAD_CROP}x$HEAD_CROP crops, per step (median of $TRAIN_STEPS); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-22s %9s %9s %9s %10s %10s\n' colour part "C ms" "torch ms" "speedup" "C samp/s" "torch s/s"
for COLOUR in gray rgb; do
    MODEL=$TMP/recipe_$COLOUR.safetensors
    CO=$("$BIN" headtrain "$MODEL" "$HEAD_CROP" "$THREADS" "$TRAIN_STEPS")
    TO=$("$PY" "$ROOT/bench/speed_torch.py" headtrain "$MODEL" "$HEAD_CROP" "$THREADS" "$TRAIN_STEPS")
    awk -v col="$COLOUR" -v ch="$(echo "$CO" | val head_step_ms)" -v th="$(echo "$TO" | val head_step_ms)" \
        -v cr="$(echo "$CO" | val recon_ms)" -v tr="$(echo "$TO" | val recon_ms)" 'BEGIN {
        row(col, "head fwd+bwd+AdamW", ch, th)
        row(col, "8 one-step recons", cr, tr)
        row(col, "whole step", ch + cr, th + tr) }
        function row(col, w, c, t) { printf "%-6s %-22s %9.1f %9.1f %8.2fx %10.1f %10.1f\n", col, w, c, t, t / c, 8000 / c, 8000 / t }'
done
fi

if has cpu; then
echo
echo "one thread, process CPU time (robust to load from other jobs):"
printf '%-22s %9s %9s %9s\n' what "C ms" "torch ms" "speedup"
for BASE in 32 16; do
    MODEL=$TMP/base$BASE.safetensors
    [ -f "$MODEL" ] || save_unet "$BASE" >/dev/null
    for S in 256 128; do
        C1=$("$BIN" infer "$MODEL" "$S" "$S" 1 3 | val cpu_ms)
        T1=$(OMP_NUM_THREADS=1 "$PY" "$ROOT/bench/speed_torch.py" infer "$MODEL" "$S" "$S" 1 3 | val cpu_ms)
        awk -v w="base $BASE ${S}x$S" -v c="$C1" -v t="$T1" 'BEGIN { printf "%-22s %9.1f %9.1f %8.2fx\n", w, c, t, t / c }'
    done
    C1=$("$BIN" train "$MODEL" 1 3 | val train_cpu_ms_per_step)
    T1=$(OMP_NUM_THREADS=1 "$PY" "$ROOT/bench/speed_torch.py" train "$MODEL" 1 3 | val train_cpu_ms_per_step)
    awk -v w="base $BASE train step" -v c="$C1" -v t="$T1" 'BEGIN { printf "%-22s %9.1f %9.1f %8.2fx\n", w, c, t, t / c }'
done
fi
