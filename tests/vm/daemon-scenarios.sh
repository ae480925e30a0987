#!/bin/sh
# Runs INSIDE the vivid VM (busybox sh): the real anomalyd daemon against
# /dev/video0 (vivid) with threshold 0, so every inspected frame is a reject
# row and "rows = inspected" checks that nothing is lost. Prints PASS/FAIL
# lines and a RESULT line; exits with the number of failed checks.
#   daemon-scenarios.sh VM_BIN_DIR V4L2CTL SQLITE3 FIXTURES_DIR
. "$(dirname "$0")/daemon-lib.sh"
runnable daemon || exit 0

config grey GREY 640 480 25
daemon grey "" "reject: " 2
expect grey "granted format logged" has /tmp/grey.log "camera /dev/video0 open: 640x480 GREY 25.00 fps, 4 buffers"
books grey 2

# RGB24 (the ROI is converted to the gray model by anomalyd) at a size and
# rate the camera does not offer: it grants its nearest, and that is logged.
config rgb RGB24 800 600 24
daemon rgb "" "reject: " 2
expect rgb "RGB24 granted, the camera's own size and rate logged" has /tmp/rgb.log "camera /dev/video0 open: 640x480 RGB3 25.00 fps, 4 buffers (asked 800x600) (asked 24.00 fps)"
books rgb 2

# Faults while streaming, one daemon run: a corrupt buffer (skipped), a
# refused QBUF (reopen), a fatal streaming error (reopen), an unplug
# (reopen once vivid re-registers the node after the last close).
config faults GREY 640 480 25
R="reject: "; O="camera /dev/video0 open:"
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
daemon startfaults "" "camera /dev/video0 open:" 1 "reject: " 1
expect startfaults "REQBUFS refusal logged" has /tmp/startfaults.log "refused 4 memory-mapped buffers"
expect startfaults "STREAMON refusal logged" has /tmp/startfaults.log "refused to start streaming"
expect startfaults "streaming after the retries" has /tmp/startfaults.log "camera /dev/video0 open:"
books startfaults 1

ctl percentage_of_dropped_buffers=50
config drops GREY 640 480 25
daemon drops "" "reject: " 2 "!sleep 2"
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
    "camera /dev/video0 open:" 1 "reject: " 2
expect absent "missing camera logged once" [ "$(count /tmp/absent.log "camera /dev/video0 not found")" = 1 ]
expect absent "picked up when plugged in" [ "$(count /tmp/absent.log "camera /dev/video0 open:")" = 1 ]
books absent 2

echo "RESULT daemon passed=$pass failed=$fail"
exit $fail
