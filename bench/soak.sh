#!/bin/sh
# Soak benchmark of the daemon: anomalyd on the replay source (the fixture
# frames, looping) at 30 fps for a given time, like a camera on the line.
# Every INTERVAL seconds it samples frames captured / inspected / dropped,
# inspection latency p50/p99 (the daemon's STATUS: this minute so far),
# resident memory, open file descriptors (held, not those open for a
# moment) and threads; at the end it prints
# the per-minute counters the daemon wrote to SQLite and a verdict comparing
# the first and last samples (flat memory and descriptors mean no leak).
#
# Usage: bench/soak.sh [SECONDS]          (default 60)
#   BUILD=build/release  FPS=30  THREADS=2  THRESHOLD=<from demo.yaml>
#   INTERVAL=10 (seconds between samples; 60 for the hour-long run)
#   CHECK=1: exit 1 unless descriptors and threads end where they started,
#            resident memory grew by less than RSS_SLACK_KB (default 4096)
#            after the first sample, and every reject has its row
#   (ctest runs a short CHECK=1 soak, label soak)
#   OMP_WAIT_POLICY=PASSIVE (as the unit sets; ACTIVE to compare)
# Needs python3 only to receive sd_notify datagrams (no systemd needed).
set -eu
cd "$(dirname "$0")/.."
duration=${1:-60}
build=${BUILD:-build/release}
fps=${FPS:-30}
threads=${THREADS:-2}
threshold=${THRESHOLD:-$(sed -n 's/^threshold: *//p' fixtures/configs/demo.yaml)}
interval=${INTERVAL:-10}
check=${CHECK:-0}
rss_slack=${RSS_SLACK_KB:-4096}
# As in systemd/anomalyd@.service: OpenMP workers sleep instead of spinning
# between frames (spinning on a busy 2-core machine cost 10x in latency).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

if [ ! -x "$build/anomalyd" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$(nproc)" --target anomalyd >/dev/null
fi

work=$(mktemp -d /tmp/anomalyd-soak.XXXXXX)
daemon_pid=""
listener_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

root=$(pwd)
cat > "$work/soak.yaml" <<YAML
line:
  name: soak
camera:
  source: replay
  replay_dir: $root/fixtures/replay/frames
  replay_loop: true
  width: 80
  height: 80
  fps: $fps
  roi: {x: 8, y: 8, width: 64, height: 64}
model:
  path: $root/fixtures/model/parts.safetensors
  color: gray
  input_width: 64
  input_height: 64
detector:
  noise_level: 0.25
  steps: 1
  draws: 1
  sigma: 2
  threads: $threads
threshold: $threshold
reject_log:
  database: $work/soak.db
  image_dir: $work/images
  max_megabytes: 50
YAML

# sd_notify listener: the last STATUS line goes to status.txt, every
# message to notify.log.
python3 - "$work" <<'PY' &
import socket, sys
work = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(work + "/notify.sock")
open(work + "/listening", "w").close()
with open(work + "/notify.log", "a") as log:
    while True:
        m = s.recv(65536).decode(errors="replace")
        log.write(m.replace("\n", " ") + "\n")
        log.flush()
        for part in m.split("\n"):
            if part.startswith("STATUS="):
                with open(work + "/status.tmp", "w") as f:
                    f.write(part[7:] + "\n")
                import os
                os.replace(work + "/status.tmp", work + "/status.txt")
PY
listener_pid=$!
while [ ! -e "$work/listening" ]; do sleep 0.1; done

NOTIFY_SOCKET="$work/notify.sock" OPENBLAS_NUM_THREADS=1 \
    "$build/anomalyd" --config "$work/soak.yaml" 2> "$work/anomalyd.log" &
daemon_pid=$!
while ! grep -q READY=1 "$work/notify.log" 2>/dev/null; do
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/anomalyd.log"; exit 1; }
    sleep 0.1
done

field() { # field NAME STATUS-TEXT: the number after NAME
    printf '%s\n' "$2" | sed -n "s/.*$1 \([0-9.]*\).*/\1/p"
}

echo "anomalyd soak: replay at $fps fps for $duration s, detector threads $threads, threshold $threshold, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%6s %9s %9s %8s %7s %8s %8s %9s %5s %7s\n' \
    "t_s" "captured" "inspected" "dropped" "drop%" "p50_ms" "p99_ms" "rss_kB" "fds" "threads"
start=$(date +%s)
elapsed=0
first_rss=""; first_fds=""; first_threads=""
while [ "$elapsed" -lt "$duration" ]; do
    step=$interval
    [ $((duration - elapsed)) -lt "$step" ] && step=$((duration - elapsed))
    sleep "$step"
    elapsed=$(( $(date +%s) - start ))
    st=$(cat "$work/status.txt" 2>/dev/null || true)
    cap=$(field captured "$st"); ins=$(field inspected "$st"); drp=$(field dropped "$st")
    p50=$(field "p50" "$st"); p99=$(field "p99" "$st")
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status")
    # Descriptors held open: the fewest of five looks 50 ms apart, so one
    # the writer or the notifier has open for a moment (a PNG being written,
    # its folder being synced, the sd_notify socket) does not look like a
    # leak; a leaked one is in every look.
    fds=""
    for _ in 1 2 3 4 5; do
        n=$(ls "/proc/$daemon_pid/fd" | wc -l)
        [ -z "$fds" ] || [ "$n" -lt "$fds" ] && fds=$n
        sleep 0.05
    done
    threads=$(awk '/^Threads:/ { print $2 }' "/proc/$daemon_pid/status")
    if [ -z "$first_rss" ]; then first_rss=$rss; first_fds=$fds; first_threads=$threads; fi
    pct=$(awk -v d="${drp:-0}" -v c="${cap:-0}" 'BEGIN { printf "%.1f", (c > 0) ? 100 * d / c : 0 }')
    printf '%6s %9s %9s %8s %7s %8s %8s %9s %5s %7s\n' \
        "$elapsed" "${cap:--}" "${ins:--}" "${drp:--}" "$pct" "${p50:--}" "${p99:--}" "$rss" "$fds" "$threads"
done
last_rss=$rss; last_fds=$fds; last_threads=$threads

kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=""
echo "anomalyd exit status: $rc (0 = clean stop, every row flushed)"
echo
echo "per-minute counters (SQLite table counters):"
sqlite3 -header -column "$work/soak.db" "
SELECT minute, printf('%.0f', seconds) AS s, captured, inspected, dropped,
       printf('%.1f', 100.0 * dropped / MAX(captured, 1)) AS drop_pct, rejects,
       printf('%.1f', latency_ms_p50) AS p50_ms, printf('%.1f', latency_ms_p99) AS p99_ms,
       printf('%.1f', latency_ms_max) AS max_ms
FROM counters ORDER BY id;"
sqlite3 "$work/soak.db" "
SELECT 'total: captured ' || SUM(captured) || ', inspected ' || SUM(inspected) ||
       ', dropped ' || SUM(dropped) || ' (' || printf('%.1f', 100.0 * SUM(dropped) / MAX(SUM(captured), 1)) ||
       '%), rejects ' || SUM(rejects) || ' (rows in rejects: ' || (SELECT COUNT(*) FROM rejects) || ')'
FROM counters;"
lost=0
grep -q 'NOT recorded' "$work/anomalyd.log" && { echo "WARNING: rows not recorded, see log"; lost=1; }
rejects=$(sqlite3 "$work/soak.db" "SELECT COALESCE(SUM(rejects), 0) FROM counters;")
rows=$(sqlite3 "$work/soak.db" "SELECT COUNT(*) FROM rejects;")
echo "first/last sample: rss $first_rss/$last_rss kB, fds $first_fds/$last_fds, threads $first_threads/$last_threads"
if [ "$check" = 1 ]; then
    verdict=ok
    [ "$last_fds" -le "$first_fds" ] || { echo "FAIL: descriptors grew"; verdict=fail; }
    [ "$last_threads" -le "$first_threads" ] || { echo "FAIL: threads grew"; verdict=fail; }
    [ $((last_rss - first_rss)) -lt "$rss_slack" ] || { echo "FAIL: resident memory grew by $((last_rss - first_rss)) kB"; verdict=fail; }
    [ "$lost" = 0 ] || verdict=fail
    # max_megabytes prunes image files, not rows; rows go only after
    # retention_days (default 90), so every counted reject has its row.
    [ "$rows" -eq "$rejects" ] || { echo "FAIL: $rejects rejects counted but $rows rows"; verdict=fail; }
    [ "$rc" = 0 ] || verdict=fail
    echo "soak check: $verdict"
    [ "$verdict" = ok ] || exit 1
fi
exit "$rc"
