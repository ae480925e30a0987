#!/bin/sh
# Runs INSIDE the vivid VM (busybox sh): the capture module, through
# vm_capture_probe, against the kernel's vivid driver and its fault
# injection controls. Prints one PASS/FAIL line per check and a RESULT line;
# exits with the number of failed checks.
#   capture-scenarios.sh PROBE V4L2CTL [full|extra]
# "extra" runs only what the daemon scenarios do not already cover (libv4l2's
# conversion path, anomalyctl capture, SIGTERM); "full" (the default, used while no daemon/model is available)
# runs everything.
PROBE=$1
CTL=$2
MODE=${3:-full}
DEV=/dev/video0
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# val OUTPUT KEY: the number after KEY= on the summary line
val() { echo "$1" | sed -n "s/^summary:.* $2=\([^ ]*\).*/\1/p"; }
has() { echo "$1" | grep -qF -- "$2"; }
count() { echo "$1" | grep -cF -- "$2"; }
ctl() { "$CTL" -d $DEV -c "$1" >/dev/null 2>&1 || echo "(v4l2-ctl -c $1 failed)"; }
expect() { # expect NAME CONDITION-TEXT SHELL-TEST...
    name=$1; what=$2; shift 2
    if "$@"; then ok "$name: $what"; else bad "$name: $what"; fi
}
ge() { [ "${1:-0}" -ge "$2" ] 2>/dev/null; }
run() { # run NAME ARGS...: the probe, output kept in $out
    name=$1; shift
    t0=$(cut -d' ' -f1 /proc/uptime)
    out=$("$PROBE" "$@" 2>&1)
    rc=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    echo "--- $name ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, exit $rc)"
    echo "$out" | grep -v '^libv4l2: ' | sed 's/^/    /'
}

if [ "$MODE" = full ]; then
run native_grey --format GREY --seconds 2
expect native_grey "GREY granted natively at 25 fps" has "$out" "granted: 640x480 GREY 25.00 fps, 4 buffers"
expect native_grey "frames arrive (>= 20 in 2 s)" ge "$(val "$out" frames)" 20
expect native_grey "1 channel, 640 wide" [ "$(val "$out" channels)" = 1 -a "$(val "$out" width)" = 640 ]
expect native_grey "the picture is not flat" [ "$(val "$out" max)" -gt "$(val "$out" min)" ]

run rgb24 --format RGB24 --seconds 2
expect rgb24 "RGB24 granted, gray computed in anomalyd" has "$out" "RGB3 25.00 fps, 4 buffers, gray computed from RGB"
expect rgb24 "frames arrive" ge "$(val "$out" frames)" 15

fi

# vivid offers RGB3 natively, so libv4l2 passes it through; the libv4lcontrol
# flags for a camera mounted upside down (LIBV4LCONTROL_FLAGS=3) force the
# conversion path (libv4l2 lists only its own formats and converts every frame).
out=$(LIBV4LCONTROL_FLAGS=3 "$PROBE" --format RGB24 --color rgb --seconds 2 2>&1)
echo "--- rgb24_libv4l2_conversion"; echo "$out" | grep -v '^libv4l2: ' | sed 's/^/    /'
expect rgb24_libv4l2_conversion "granted through libv4l2 conversion" has "$out" "converted by libv4l2"
expect rgb24_libv4l2_conversion "RGB frames arrive" [ "$(val "$out" channels)" = 3 -a "$(val "$out" frames)" -ge 10 ]

if [ "$MODE" = full ]; then
run adjusted --width 800 --height 600 --fps 24 --seconds 2
expect adjusted "the camera's own size and rate are reported" has "$out" "640x480 GREY 25.00 fps, 4 buffers (asked 800x600) (asked 24.00 fps)"
expect adjusted "frames have the granted size" [ "$(val "$out" width)" = 640 -a "$(val "$out" height)" = 480 ]

ctl percentage_of_dropped_buffers=50
run dropped50 --seconds 2.5
ctl percentage_of_dropped_buffers=0
expect dropped50 "drops are counted" ge "$(val "$out" dropped)" 10
expect dropped50 "nothing stalls: frames keep coming" ge "$(val "$out" frames)" 15
expect dropped50 "no timeouts" [ "$(val "$out" timeouts)" = 0 ]

( sleep 1; ctl inject_v4l2_buf_flag_error=1 ) &
run buf_flag_error --seconds 2.5
wait
expect buf_flag_error "the corrupt buffer is reported once and skipped" [ "$(count "$out" "corrupt frame (V4L2_BUF_FLAG_ERROR)")" = 1 -a "$(val "$out" bad)" = 1 ]
expect buf_flag_error "streaming goes on without a reopen" [ "$(val "$out" opens)" = 1 ] 

( sleep 1; ctl inject_vidioc_qbuf_error=1 ) &
run qbuf_error --seconds 2.5
wait
expect qbuf_error "the refused buffer is reported once" [ "$(count "$out" "failed a buffer exchange")" = 1 ]
expect qbuf_error "recovered by reopening" [ "$(val "$out" opens)" = 2 ]

( sleep 1; ctl inject_fatal_streaming_error=1 ) &
run fatal_streaming_error --seconds 2.5
wait
expect fatal_streaming_error "reported once" [ "$(count "$out" "stopped delivering frames (Input/output error)")" = 1 ]
expect fatal_streaming_error "recovered by reopening" [ "$(val "$out" opens)" = 2 ]

ctl inject_vidioc_streamon_error=1
run streamon_error --seconds 2
expect streamon_error "the refusal is reported" has "$out" "refused to start streaming"
expect streamon_error "the retry streams" [ "$(val "$out" failed_opens)" = 1 -a "$(val "$out" opens)" = 1 ]
expect streamon_error "frames arrive after the retry" ge "$(val "$out" frames)" 10

ctl inject_vidioc_reqbufs_error=1
run reqbufs_error --seconds 2
expect reqbufs_error "the refusal is reported" has "$out" "refused 4 memory-mapped buffers"
expect reqbufs_error "the retry streams" [ "$(val "$out" failed_opens)" = 1 -a "$(val "$out" opens)" = 1 ]

( sleep 1; ctl disconnect=1 ) &
run disconnect --seconds 2.5
wait
expect disconnect "unplug is reported once" [ "$(count "$out" "stopped delivering frames (No such device)")" = 1 ]
# vivid registers the node again once the last handle is closed: the probe's
# reopen (backoff 0.25 s) finds it, like a camera plugged back in.
expect disconnect "reopened after the camera came back" [ "$(val "$out" opens)" = 2 ]

fi

if [ "$MODE" = full ]; then
# Camera absent at start and plugged in later: module unloaded and loaded again.
rmmod vivid
( sleep 1.5; insmod /lib/modules/vivid.ko $(cat /etc/vm/vivid-params) ) &
run replug --seconds 5
wait
expect replug "missing camera reported once" [ "$(count "$out" "camera /dev/video0 not found")" = 1 ]
expect replug "opened when it appeared" [ "$(val "$out" opens)" = 1 ] 
expect replug "frames after the replug" ge "$(val "$out" frames)" 5

fi

# anomalyctl capture from the real camera: ROI crop of native GREY frames.
CTLBIN=$(dirname "$PROBE")/anomalyctl
cat > /tmp/capture.yaml <<EOF
camera:
  source: v4l2
  device: $DEV
  width: 640
  height: 480
  pixel_format: GREY
  fps: 25
  roi: {x: 200, y: 150, width: 64, height: 48}
model:
  path: /nonexistent.safetensors
threshold: 1
EOF
out=$("$CTLBIN" capture --config /tmp/capture.yaml --count 5 --out /tmp/set 2>&1)
rc=$?
echo "--- anomalyctl_capture (exit $rc)"; echo "$out" | grep -v '^libv4l2: ' | sed 's/^/    /'
expect anomalyctl_capture "exit 0, granted format printed" [ $rc = 0 -a -n "$(echo "$out" | grep -F 'camera: 640x480 GREY 25.00 fps')" ]
expect anomalyctl_capture "5 PNGs written" [ "$(ls /tmp/set | grep -c '^frame_00000[0-4].png$')" = 5 ]
# IHDR width and height (big-endian) of the last one: the ROI, 64x48
expect anomalyctl_capture "PNGs hold the ROI (64x48)" [ "$(od -An -tu1 -j16 -N8 /tmp/set/frame_000004.png | tr -s ' ')" = " 0 0 0 64 0 0 0 48" ]

out=$("$CTLBIN" capture --config /tmp/capture.yaml --list-formats 2>&1)
rc=$?
echo "--- list_formats (exit $rc)"; echo "$out" | head -n 4 | sed 's/^/    /'
expect list_formats "lists the camera's modes" [ $rc = 0 -a -n "$(echo "$out" | grep -E '^  GREY +640x480 +fps: .*25')" ]

"$PROBE" --seconds 60 > /tmp/term.out 2>&1 &
p=$!
sleep 1.5
kill -TERM $p
wait $p
rc=$?
out=$(cat /tmp/term.out)
echo "--- sigterm (exit $rc)"
expect sigterm "SIGTERM ends streaming cleanly (exit 0, summary printed)" [ $rc = 0 -a -n "$(val "$out" frames)" ]

echo "RESULT capture passed=$pass failed=$fail"
exit $fail
