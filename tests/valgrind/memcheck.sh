#!/bin/sh
# valgrind memcheck on the integration run: the real programs, on
# the project's fixtures, each under memcheck; any error or leaked block
# fails the run.
#   1. anomalyd on the demo replay (24 frames, --no-drop, learned head,
#      one head pass per frame: detector.mirror: none gives the same 4
#      rejects, and a head pass is most of an inspection's 30 s under
#      memcheck), then the rows are checked with sqlite3: exactly the 4
#      defective frames; it runs in the background beside 2b and 3
#      (valgrind keeps each program on one core), its report printed last;
#   2. anomalyd --check-config;
#   2b. anomalyd on the looping replay through a SIGHUP with a garbage
#      model (refused), a SIGHUP with the good one (reloaded) and SIGTERM;
#   3. anomalyctl score on one defective frame (exit status 3: reject) of
#      the replay, and eval on one image of each type of fixtures/parts
#      (config head_parts.yaml); 2b and 3 keep the four mirrored passes.
# Usage: tests/valgrind/memcheck.sh BUILD_DIR   (a -DANOMALYD_NATIVE=OFF build:
#        valgrind 3.19 does not decode AVX-512)
set -eu
build=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
work=$(mktemp -d /tmp/anomalyd-memcheck.XXXXXX)
replay="" pid=""
cleanup() { # stop what still runs under valgrind, then remove the work folder
    for p in $replay $pid; do
        pkill -KILL -P "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# OpenBLAS picks its kernels at run time; keep it off AVX-512 for valgrind.
# OMP_WAIT_POLICY set: the programs then do not re-exec themselves (under
# valgrind /proc/self/exe is valgrind's tool, not the program).
export OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# valgrind's options for every run (each adds --log-file=$work/NAME.vg)
vgopts="--tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
        --errors-for-leak-kinds=definite,indirect --track-origins=yes"
vg() { # vg NAME EXPECTED_EXIT_STATUS PROGRAM ARGS...
    name=$1
    want=$2
    shift 2
    echo "== memcheck: $name"
    rc=0
    # shellcheck disable=SC2086
    valgrind $vgopts --log-file="$work/$name.vg" "$@" > "$work/$name.out" 2>&1 || rc=$?
    if [ "$rc" != "$want" ]; then
        echo "exit status $rc, expected $want (99 = memcheck errors)"
        cat "$work/$name.out" "$work/$name.vg"
        echo "memcheck FAILED: $name"
        exit 1
    fi
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks" "$work/$name.vg"
}

sed -e "s#\.\./replay/frames#$src/fixtures/replay/frames#" \
    -e "s#\.\./model/parts.safetensors#$src/fixtures/model/parts.safetensors#" \
    -e "s#\.\./\.\./build/demo#$work#" \
    "$src/fixtures/configs/demo.yaml" > "$work/demo.yaml"

vg check_config 0 "$build/anomalyd" --config "$work/demo.yaml" --check-config
sed 's/^detector:$/&\n  mirror: none/' "$work/demo.yaml" > "$work/replay.yaml"
grep -q '^  mirror: none$' "$work/replay.yaml" || { echo "memcheck: demo.yaml has no 'detector:' section"; exit 1; }
vg daemon_replay 0 "$build/anomalyd" --config "$work/replay.yaml" --no-drop > "$work/replay.report" 2>&1 &
replay=$!
# The fault path: the daemon on the looping replay, its model replaced by
# garbage before a SIGHUP (refused, the old model stays), then by the good
# file again (reloaded), then SIGTERM (rows flushed, exit 0).
echo "== memcheck: daemon_reload"
mkdir -p "$work/m"
cp "$src/fixtures/model/parts.safetensors" "$src/fixtures/model/parts.head.safetensors" "$work/m/"
sed -e "s#^\( *path:\).*#\1 $work/m/parts.safetensors#" -e "s#replay_loop: false#replay_loop: true#" \
    -e "s#fps: 30#fps: 4#" -e "s#$work/demo.db#$work/reload.db#" -e "s#$work/images#$work/reload-images#" \
    "$work/demo.yaml" > "$work/reload.yaml"
# shellcheck disable=SC2086
valgrind $vgopts --log-file="$work/daemon_reload.vg" "$build/anomalyd" --config "$work/reload.yaml" > "$work/daemon_reload.out" 2>&1 &
pid=$!
wait_log() { # wait_log TEXT: up to 600 s for TEXT in the daemon's log
    t=0
    until grep -q "$1" "$work/daemon_reload.out"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$t" -ge 6000 ]; then
            cat "$work/daemon_reload.out" "$work/daemon_reload.vg"
            echo "memcheck FAILED: daemon_reload never logged '$1'"
            exit 1
        fi
        sleep 0.1
        t=$((t + 1))
    done
}
wait_log "ready: model and camera are up"
echo "not a model" > "$work/m/parts.safetensors"
kill -HUP "$pid"
wait_log "reload failed, still running on the previous config and model"
cp "$src/fixtures/model/parts.safetensors" "$work/m/parts.safetensors"
kill -HUP "$pid"
wait_log "inspection now uses the reloaded config"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if [ "$rc" != 0 ]; then
    cat "$work/daemon_reload.out" "$work/daemon_reload.vg"
    echo "memcheck FAILED: daemon_reload exit status $rc, expected 0 (99 = memcheck errors)"
    exit 1
fi
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks" "$work/daemon_reload.vg"

vg score 3 "$build/anomalyctl" score --config "$work/demo.yaml" "$src/fixtures/replay/frames/frame_0005.png"
vg eval 0 "$build/anomalyctl" eval --config "$src/fixtures/configs/head_parts.yaml" --dataset "$src/fixtures/parts" --limit 1
rc=0
wait "$replay" || rc=$?
replay=""
cat "$work/replay.report"
[ "$rc" = 0 ] || exit 1
rows=$(sqlite3 "$work/demo.db" "SELECT group_concat(frame_seq) FROM (SELECT frame_seq FROM rejects ORDER BY frame_seq);")
want=$(awk -F, 'NR > 1 && $2 != "good" { sub(/^frame_0*/, "", $1); sub(/\.png$/, "", $1); printf "%s%s", sep, ($1 == "" ? 0 : $1); sep = "," }' \
       "$src/fixtures/replay/labels.csv")
echo "rows for frames: $rows (defective: $want)"
[ "$rows" = "$want" ] || { echo "memcheck run logged the wrong frames"; exit 1; }

echo "memcheck: 0 errors, 0 bytes definitely or indirectly lost in every run"
