#!/bin/sh
# Sourced INSIDE the vivid VM by the scenario files that run the real
# anomalyd (daemon-scenarios.sh, controls-scenarios.sh): PASS/FAIL counting,
# a config writer and a daemon runner. Sourced with the scenario file's own
# arguments: VM_BIN_DIR V4L2CTL SQLITE3 FIXTURES_DIR.
BIN=$1
CTL=$2
SQL=$3
FIX=$4
DEV=/dev/video0
MODEL=$FIX/model/parts.safetensors
# The ROI (64x64) is inspected at INPUTxINPUT: the UNet is emulated without
# hardware help under TCG, so a small input keeps several inspections a second.
INPUT=${VM_INPUT:-16}
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
has() { grep -qF -- "$2" "$1"; }
# count LOG TEXT: error/warning lines with TEXT (not the "... again (after N
# repeats of: TEXT)" recovery notes that quote it)
count() { grep -vF "repeats of:" "$1" | grep -cF -- "$2"; }
ctl() { "$CTL" -d $DEV -c "$1" >/dev/null 2>&1 || echo "(v4l2-ctl -c $1 failed)"; }
expect() { name=$1; what=$2; shift 2; if "$@"; then ok "$name: $what"; else bad "$name: $what"; fi; }
ge() { [ "${1:-0}" -ge "$2" ] 2>/dev/null; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# runnable WHAT: the daemon needs the fixture model, and sqlite3 to count
# rows with; else says the scenarios WHAT are skipped and returns 1
runnable() {
    [ -f "$MODEL" ] && [ -x "$SQL" ] && return 0
    echo "SKIP $1 scenarios: they need the model $MODEL and sqlite3 on the host"
    echo "RESULT $1 passed=0 failed=0 skipped"
    return 1
}

# config NAME PIXFMT WIDTH HEIGHT FPS [CAMERA_LINES]: /tmp/NAME.yaml, database
# /tmp/NAME.db; CAMERA_LINES (indented by two) end the camera section.
config() {
    cat > /tmp/$1.yaml <<EOF
line:
  name: $1
camera:
  source: v4l2
  device: $DEV
  width: $3
  height: $4
  pixel_format: $2
  fps: $5
  roi: {x: 200, y: 150, width: 64, height: 64}
  buffers: 4
  timeout_ms: 1000
${6:-}
model:
  path: $MODEL
  color: gray
  input_width: $INPUT
  input_height: $INPUT
  base_channels: 16
  channel_mult: [1, 2]
  res_blocks: 1
  groups: 8
detector:
  map: diff
  steps: 1
  draws: 1
  threads: 1
threshold: 0
reject_log:
  database: /tmp/$1.db
  image_dir: /tmp/$1-images
  save_images: false
EOF
}

# wait_log LOG TEXT N DEADLINE: until LOG holds N lines with TEXT, or the
# guest uptime passes DEADLINE; 0 if reached.
wait_log() {
    while :; do
        n=$(grep -cF -- "$2" "$1" 2>/dev/null)
        [ "${n:-0}" -ge "$3" ] && break
        awk -v u="$(uptime_s)" -v d="$4" 'BEGIN { exit !(u > d) }' && return 1
        sleep 0.2
    done
    return 0
}

# daemon NAME ACTIONS STEP...: runs anomalyd with /tmp/NAME.yaml; the
# ACTIONS shell snippet (may be empty) runs alongside; then goes through the
# steps in order: "TEXT N" waits until the log holds N lines with TEXT (the
# emulated machine's speed varies a lot, so no fixed durations; at most
# MAX_WAIT s in all), "!COMMAND" runs COMMAND; then SIGTERM. Log in /tmp/NAME.log, exit code in $rc, "stopped:" counters in
# $captured $inspected $dropped $rejects $written $lost, rows in $rows.
MAX_WAIT=${VM_MAX_WAIT:-40}
daemon() {
    name=$1; actions=$2; shift 2
    t0=$(uptime_s)
    deadline=$(awk -v t="$t0" -v m="$MAX_WAIT" 'BEGIN { print t + m }')
    : > /tmp/$name.log   # exists (empty) before anyone waits on it
    # one vCPU under TCG: no spinning OpenMP/OpenBLAS worker threads
    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 \
        "$BIN/anomalyd" --config /tmp/$name.yaml > /tmp/$name.log 2>&1 &
    pid=$!
    apid=
    if [ -n "$actions" ]; then sh -c "$actions" & apid=$!; fi
    waited=ok
    while [ $# -ge 1 ]; do
        case $1 in
            !*) eval "${1#!}"; shift ;;
            *) wait_log /tmp/$name.log "$1" "$2" "$deadline" ||
                   { waited="timed out waiting for $2 x '$1'"; break; }
               shift 2 ;;
        esac
    done
    [ -n "$apid" ] && wait $apid 2>/dev/null
    kill -TERM $pid
    wait $pid
    rc=$?
    t1=$(uptime_s)
    stopped=$(grep -F "stopped: captured" /tmp/$name.log | tail -n1)
    set -- $(echo "$stopped" | sed -e 's/.*stopped: //' -e 's/[^0-9 ]//g')
    captured=${1:-0} inspected=${2:-0} dropped=${3:-0} rejects=${4:-0} written=${5:-0} lost=${6:-0}
    rows=$("$SQL" /tmp/$name.db "SELECT count(*) FROM rejects" 2>&1)
    minute_inspected=$("$SQL" /tmp/$name.db "SELECT coalesce(sum(inspected),0) FROM counters" 2>&1)
    echo "--- daemon $name ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, exit $rc, rows $rows, wait: $waited)"
    grep -v '^libv4l2: ' /tmp/$name.log | grep -vF "reject: " | sed 's/^/    /'
}

# common checks after a run
books() {
    expect "$1" "the expected log lines appeared ($waited)" [ "$waited" = ok ]
    expect "$1" "SIGTERM exits 0" [ "$rc" = 0 ]
    expect "$1" "frames were inspected" ge "$inspected" "${2:-3}"
    expect "$1" "threshold 0: rows = inspected = rejects = written, none lost" \
        [ "$rows" = "$inspected" -a "$rejects" = "$inspected" -a "$written" = "$inspected" -a "$lost" = 0 ]
    expect "$1" "per-minute counters add up to inspected" [ "$minute_inspected" = "$inspected" ]
    expect "$1" "captured >= inspected" ge "$captured" "$inspected"
}
