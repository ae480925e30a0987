#!/bin/sh
# Runs INSIDE the vivid VM (busybox sh): the real anomalyd daemon against
# /dev/video0 (vivid) with threshold 0, so every inspected frame is a reject
# row and "rows = inspected" checks that nothing is lost. Prints PASS/FAIL
# lines and a RESULT line; exits with the number of failed checks.
#   daemon-scenarios.sh VM_BIN_DIR V4L2CTL SQLITE3 FIXTURES_DIR
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

if [ ! -f "$MODEL" ]; then
    echo "SKIP daemon scenarios: no model at $MODEL"
    echo "RESULT daemon passed=0 failed=0 skipped"
    exit 0
fi
if [ ! -x "$SQL" ]; then
    echo "SKIP daemon scenarios: no sqlite3 on the host to count rows with"
    echo "RESULT daemon passed=0 failed=0 skipped"
    exit 0
fi

# config NAME PIXFMT WIDTH HEIGHT FPS: /tmp/NAME.yaml, database /tmp/NAME.db
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
    grep -v '^libv4l2: ' /tmp/$name.log | grep -vF "reject: frame" | sed 's/^/    /'
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

config grey GREY 640 480 25
daemon grey "" "reject: frame" 2
expect grey "granted format logged" has /tmp/grey.log "camera /dev/video0 open: 640x480 GREY 25.00 fps, 4 buffers"
books grey 2

# RGB24 (the ROI is converted to the gray model by anomalyd) at a size and
# rate the camera does not offer: it grants its nearest, and that is logged.
config rgb RGB24 800 600 24
daemon rgb "" "reject: frame" 2
expect rgb "RGB24 granted, the camera's own size and rate logged" has /tmp/rgb.log "camera /dev/video0 open: 640x480 RGB3 25.00 fps, 4 buffers (asked 800x600) (asked 24.00 fps)"
books rgb 2

# Faults while streaming, one daemon run: a corrupt buffer (skipped), a
# refused QBUF (reopen), a fatal streaming error (reopen), an unplug
# (reopen once vivid re-registers the node after the last close).
config faults GREY 640 480 25
R="reject: frame"; O="camera /dev/video0 open:"
daemon faults "" "$R" 1 \
    "!ctl inject_v4l2_buf_flag_error=1" "corrupt frame" 1 "$R" 2 \
    "!ctl inject_vidioc_qbuf_error=1" "$O" 2 "$R" 3 \
    "!ctl inject_fatal_streaming_error=1" "$O" 3 "$R" 4 \
    "!ctl disconnect=1" "$O" 4 "$R" 5
expect faults "corrupt buffer logged once" [ "$(count /tmp/faults.log "corrupt frame (V4L2_BUF_FLAG_ERROR)")" = 1 ]
expect faults "refused buffer logged once" [ "$(count /tmp/faults.log "failed a buffer exchange")" = 1 ]
expect faults "fatal streaming error logged once" [ "$(count /tmp/faults.log "stopped delivering frames (Input/output error)")" = 1 ]
expect faults "unplug logged once" [ "$(count /tmp/faults.log "stopped delivering frames (No such device)")" = 1 ]
expect faults "reopened after each of the last three (4 opens)" ge "$(count /tmp/faults.log "camera /dev/video0 open:")" 4
books faults 5

# Faults at open: REQBUFS and STREAMON refused once each; retried with backoff.
ctl inject_vidioc_reqbufs_error=1
ctl inject_vidioc_streamon_error=1
config startfaults GREY 640 480 25
daemon startfaults "" "camera /dev/video0 open:" 1 "reject: frame" 1
expect startfaults "REQBUFS refusal logged" has /tmp/startfaults.log "refused 4 memory-mapped buffers"
expect startfaults "STREAMON refusal logged" has /tmp/startfaults.log "refused to start streaming"
expect startfaults "streaming after the retries" has /tmp/startfaults.log "camera /dev/video0 open:"
books startfaults 1

ctl percentage_of_dropped_buffers=50
config drops GREY 640 480 25
daemon drops "" "reject: frame" 2 "!sleep 2"
ctl percentage_of_dropped_buffers=0
expect drops "drops are counted (more than the mailbox alone)" ge "$dropped" 10
expect drops "no timeouts, nothing stalls" [ "$(count /tmp/drops.log "no frame from camera")" = 0 ]
books drops 2

# Camera absent when the daemon starts (module unloaded), plugged in later:
# the daemon says so once, retries with backoff, and starts inspecting.
rmmod vivid
config absent GREY 640 480 25
daemon absent "" "camera /dev/video0 not found" 1 "!sleep 1.5" \
    "!insmod /lib/modules/vivid.ko $(cat /etc/vm/vivid-params)" \
    "camera /dev/video0 open:" 1 "reject: frame" 2
expect absent "missing camera logged once" [ "$(count /tmp/absent.log "camera /dev/video0 not found")" = 1 ]
expect absent "picked up when plugged in" [ "$(count /tmp/absent.log "camera /dev/video0 open:")" = 1 ]
books absent 2

echo "RESULT daemon passed=$pass failed=$fail"
exit $fail
