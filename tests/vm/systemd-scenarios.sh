#!/bin/sh
# Runs INSIDE the systemd VM (tests/vm/systemd-vm-test.sh), as root under a
# real systemd, with vivid's /dev/video0: installs the anomalyd package,
# writes a station config with `anomalyctl init`, starts anomalyd@line3 and
# checks that the sandboxed unit reads the camera, writes its state folder,
# pings the watchdog, reloads and stops cleanly, scores the sandbox with a
# live `systemd-analyze security`, and starts once more with the camera
# unplugged until it is plugged in. threshold 0 makes every inspected
# frame a reject, so rows = rejects counted checks that nothing is lost.
# Prints PASS/FAIL lines and a RESULT line; exits with the failed count.
#   systemd-scenarios.sh DEB FIXTURES_DIR
DEB=$1
FIX=$2
UNIT=anomalyd@line3.service
STATE=/var/lib/anomalyd
DB=$STATE/line3.db
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
expect() { what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
prop() { systemctl show -P "$1" "$UNIT"; }
uptime_s() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }
rows() { sqlite3 "$DB" "SELECT COUNT(*) FROM rejects" 2>/dev/null || echo 0; }
journal() { journalctl -q -o cat -u "$UNIT" --no-pager; }
# until SECONDS pass or the command succeeds
wait_for() {
    limit=$(($(uptime_s) + $1))
    shift
    while ! "$@"; do
        [ "$(uptime_s)" -lt "$limit" ] || return 1
        sleep 1
    done
}
rows_at_least() { [ "$(rows)" -ge "$1" ]; }
journal_has() { journal | grep -qF -- "$1"; }
finish() {
    if [ "$fail" -gt 0 ]; then
        echo "---- journal of $UNIT (last 40 lines)"
        journal | tail -n 40
    fi
    echo "RESULT systemd passed=$pass failed=$fail"
    exit "$fail"
}

echo "systemd $(systemctl --version | head -n1 | cut -d' ' -f2), system $(systemctl is-system-running)"

# ---- the package, as a line engineer installs it
if dpkg -i "$DEB" > /tmp/dpkg.log 2>&1; then
    ok "package: dpkg -i $(basename "$DEB")"
else
    cat /tmp/dpkg.log
    bad "package: dpkg -i $(basename "$DEB")"
    finish
fi
expect "package: user anomalyd is in group video" sh -c 'id -nG anomalyd | grep -qw video'
expect "package: systemd knows the unit" sh -c "systemctl cat $UNIT >/dev/null 2>&1"

# udev gives the camera to group video (the unit's SupplementaryGroups)
udevadm settle -t 30 2>/dev/null || true
expect "udev: /dev/video0 belongs to group video ($(stat -c '%G %a' /dev/video0))" \
    sh -c '[ "$(stat -c %G /dev/video0)" = video ]'

# ---- a station config: anomalyctl init probes the camera; the fixture model
# is small (16x16 input) so that TCG keeps several inspections a second.
cp "$FIX/model/parts.safetensors" "$STATE/line3.safetensors"
cp "$FIX/model/parts.head.safetensors" "$STATE/line3.head.safetensors"
chmod 0644 "$STATE"/line3*.safetensors
if anomalyctl init --line line3 --device /dev/video0 > /tmp/init.log 2>&1; then
    ok "config: anomalyctl init --line line3 --device /dev/video0"
else
    cat /tmp/init.log
    bad "config: anomalyctl init --line line3 --device /dev/video0"
    finish
fi
sed -i -e 's/^\(  input_width:\).*/\1 16/' -e 's/^\(  input_height:\).*/\1 16/' \
    -e 's/^\(  base_channels:\).*/\1 16/' -e 's/^\(  channel_mult:\).*/\1 [1, 2]/' \
    -e 's/^\(  res_blocks:\).*/\1 1/' -e 's/^\(  groups:\).*/\1 8/' \
    -e 's/^\(  threads:\).*/\1 1/' -e 's/^threshold:.*/threshold: 0/' \
    -e 's/^\(  fps:\).*/\1 10/' /etc/anomalyd/line3.yaml
expect "config: anomalyd --check-config accepts it" \
    sh -c 'anomalyd --config /etc/anomalyd/line3.yaml --check-config > /tmp/check.log 2>&1 || { cat /tmp/check.log; false; }'

# ---- start: Type=notify, so start returns once READY=1 was sent
t0=$(uptime_s)
if timeout 180 systemctl start "$UNIT"; then
    ok "start: systemctl start $UNIT returned (READY=1) after $(($(uptime_s) - t0)) s"
else
    bad "start: systemctl start $UNIT"
    systemctl status --no-pager "$UNIT" | head -n 20
    finish
fi
expect "start: the unit is active" sh -c "[ \"\$(systemctl is-active $UNIT)\" = active ]"
echo "status: $(prop StatusText)"
expect "sandbox: runs as user anomalyd" sh -c "[ \"\$(ps -o user= -p $(prop MainPID))\" = anomalyd ]"

# ---- the camera is read and the state folder written
if wait_for 120 rows_at_least 5; then
    ok "camera + state folder: $(rows) reject rows in $DB"
else
    bad "camera + state folder: rows in $DB (have $(rows))"
fi
img=$(sqlite3 "$DB" "SELECT image_path FROM rejects WHERE image_path IS NOT NULL LIMIT 1" 2>/dev/null)
if [ -n "$img" ] && [ -s "$img" ]; then
    ok "state folder: reject image $img ($(stat -c '%U:%G %a' "$img"))"
    expect "state folder: UMask 0027 (image mode $(stat -c %a "$img"))" \
        sh -c "[ \"\$(stat -c %a '$img')\" = 640 ]"
else
    bad "state folder: a reject image on disk (row says '$img')"
fi

# ---- the watchdog (WatchdogSec=30) is pinged through the sandbox
elapsed=$(($(uptime_s) - t0))
[ "$elapsed" -ge 40 ] || sleep $((40 - elapsed))
expect "watchdog: still active after 40 s, no restarts (NRestarts=$(prop NRestarts))" \
    sh -c "[ \"\$(systemctl is-active $UNIT)\" = active ] && [ \"\$(systemctl show -P NRestarts $UNIT)\" = 0 ]"
expect "watchdog: no watchdog timeout in the journal" \
    sh -c "! journalctl -q -o cat --no-pager | grep -qF 'Watchdog timeout'"

# ---- reload (ExecReload sends SIGHUP)
before=$(rows)
expect "reload: systemctl reload $UNIT" timeout 60 systemctl reload "$UNIT"
if wait_for 60 journal_has "inspection now uses the reloaded config"; then
    ok "reload: the daemon took the reloaded config"
else
    bad "reload: the daemon took the reloaded config"
fi
wait_for 60 rows_at_least $((before + 3)) || true
expect "reload: rows keep coming ($before -> $(rows))" rows_at_least $((before + 3))

# ---- the live sandbox score
systemd-analyze security --no-pager "$UNIT" > /tmp/security.txt 2>&1
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p' /tmp/security.txt)
echo "security: $(grep -F 'Overall exposure level' /tmp/security.txt)"
if [ -n "$exposure" ] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'; then
    ok "sandbox: systemd-analyze security exposure $exposure <= $MAX_EXPOSURE"
else
    cat /tmp/security.txt
    bad "sandbox: systemd-analyze security exposure '$exposure' <= $MAX_EXPOSURE"
fi

# nothing the sandbox refused
if journal | grep -E -i 'permission denied|operation not permitted|read-only file system|seccomp|bad system call' > /tmp/refused.txt; then
    cat /tmp/refused.txt
    bad "sandbox: nothing refused in the journal"
else
    ok "sandbox: nothing refused in the journal"
fi

# ---- stop: SIGTERM, every reject recorded, exit 0
expect "stop: systemctl stop $UNIT" timeout 90 systemctl stop "$UNIT"
expect "stop: Result=$(prop Result), exit status $(prop ExecMainStatus)" \
    sh -c "[ \"\$(systemctl show -P Result $UNIT)\" = success ] && [ \"\$(systemctl show -P ExecMainStatus $UNIT)\" = 0 ]"
counted=$(sqlite3 "$DB" "SELECT COALESCE(SUM(rejects), 0) FROM counters" 2>/dev/null)
expect "stop: every counted reject is a row ($counted counted, $(rows) rows)" \
    sh -c "[ -n '$counted' ] && [ '$counted' -gt 0 ] && [ '$counted' = \"\$(sqlite3 $DB 'SELECT COUNT(*) FROM rejects')\" ]"
expect "stop: no reject reported as not recorded" sh -c "! journalctl -q -o cat -u $UNIT --no-pager | grep -qF 'NOT recorded'"
expect "stop: database intact" sh -c "[ \"\$(sqlite3 $DB 'PRAGMA integrity_check')\" = ok ]"

# ---- started while the camera is unplugged (vivid unloaded): the unit waits
# in "activating" with STATUS saying so, the watchdog keeps it alive past
# WatchdogSec, and once the camera is plugged in (a new device node, which
# the device policy must let in) it becomes active and records again.
if ! rmmod vivid 2>/tmp/rmmod.log; then
    cat /tmp/rmmod.log
    bad "unplugged: rmmod vivid"
    finish
fi
expect "unplugged: /dev/video0 is gone" sh -c '[ ! -e /dev/video0 ]'
rows_before=$(rows)
t1=$(uptime_s)
expect "unplugged: systemctl start --no-block $UNIT" systemctl start --no-block "$UNIT"
status_waiting() { prop StatusText | grep -qF "waiting for camera"; }
if wait_for 60 status_waiting; then
    ok "unplugged: status '$(prop StatusText)'"
else
    bad "unplugged: status says waiting for camera (it says '$(prop StatusText)')"
fi
elapsed=$(($(uptime_s) - t1))
[ "$elapsed" -ge 40 ] || sleep $((40 - elapsed))
expect "unplugged: after 40 s still activating (ActiveState=$(prop ActiveState)), no restart (NRestarts=$(prop NRestarts))" \
    sh -c "[ \"\$(systemctl show -P ActiveState $UNIT)\" = activating ] && [ \"\$(systemctl show -P NRestarts $UNIT)\" = 0 ]"
# shellcheck disable=SC2046
if insmod /vm/modules/vivid.ko $(cat /etc/vm/vivid-params) 2>/tmp/insmod.log; then
    ok "plugged in: insmod vivid"
else
    cat /tmp/insmod.log
    bad "plugged in: insmod vivid"
fi
is_active() { [ "$(systemctl is-active "$UNIT")" = active ]; }
t2=$(uptime_s)
if wait_for 90 is_active; then
    ok "plugged in: the unit is active (READY=1) $(($(uptime_s) - t2)) s after the camera came"
else
    bad "plugged in: the unit became active (ActiveState=$(prop ActiveState), status '$(prop StatusText)')"
fi
if wait_for 90 rows_at_least $((rows_before + 3)); then
    ok "plugged in: rows recorded again ($rows_before -> $(rows))"
else
    bad "plugged in: rows recorded again ($rows_before -> $(rows))"
fi
expect "plugged in: systemctl stop $UNIT, Result=success" \
    sh -c "timeout 90 systemctl stop $UNIT && [ \"\$(systemctl show -P Result $UNIT)\" = success ]"
finish
