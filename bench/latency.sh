#!/bin/sh
# Trigger-to-reject-signal latency of the real anomalyd, against a Modbus TCP
# server on loopback (a benchmark, not a test; the table is in docs/line.md).
#
#   bench/latency.sh [BUILD_DIR] [N]      (default build-bench, 200 triggers)
#
# Two rows: TRIGGERS="modbus mqtt" by default (name one to run one).
# bench/line_latency starts the PLC stand-in of the tests (a libmodbus server
# on a free loopback port), for mqtt also Debian's mosquitto broker, and
# anomalyd with trigger.mode modbus (or mqtt), the default
# detector recipe and MODEL (default: bench/models/mtd/model.safetensors, the
# committed recipe model, gray, input 128x128, with its learned head), the
# camera a replay of FRAMES (default: fixtures/replay/frames, 80x80, resized
# to the model's input as a camera ROI would be) at 30 fps in a loop, threshold 0
# so every part is a reject. It fires N triggers (3 more first, not counted,
# to warm up): raises the trigger input, or publishes a trigger message, and
# takes, per part, the time from then to the server receiving the reject
# coil's "on": the poll interval (10 ms) or the broker hop, the wait for the
# next frame (up to 33 ms at 30 fps), the inspection and the coil write.
# Prints a Markdown table, each row followed by the daemon's per-minute
# lines (its inspection time alone); the machine's cores and load average
# go beside it (the target, p99 <= 300 ms, is for 2 cores).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
N=${2:-200}
MODEL=${MODEL:-$ROOT/bench/models/mtd/model.safetensors}
FRAMES=${FRAMES:-$ROOT/fixtures/replay/frames}

if [ ! -x "$BUILD/anomalyd" ] || [ ! -x "$BUILD/bench/line_latency" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target anomalyd line_latency >/dev/null
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $MODEL; frames: $FRAMES; $N triggers"
echo
echo "| trigger -> signal | parts | p50 ms | p99 ms | max ms | missed |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for trigger in ${TRIGGERS:-modbus mqtt}; do
    "$BUILD/bench/line_latency" "$BUILD/anomalyd" "$MODEL" "$FRAMES" "$N" "$trigger" >"$BUILD/latency-$trigger.txt"
    grep '^|' "$BUILD/latency-$trigger.txt"
done
echo
for trigger in ${TRIGGERS:-modbus mqtt}; do
    echo "$trigger run, the daemon's inspection time:"
    grep '^daemon:' "$BUILD/latency-$trigger.txt" | sed 's/^daemon: /    /'
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
