#!/usr/bin/env bash
# The packaged unit under a real systemd: boots the vivid VM (vivid-vm.sh)
# into a minimal Debian with systemd and runs systemd-scenarios.sh there,
# which installs the .deb, starts anomalyd@line3 on vivid's /dev/video0 and
# checks camera, state folder, watchdog, reload, stop and the live
# `systemd-analyze security` score (at most 2.0).
#   systemd-vm-test.sh DEB|PKG_BUILD_DIR CACHE_DIR
# The root file system is made once with debootstrap (--variant=minbase,
# systemd, udev, sqlite3 and what the package depends on, from the mirror
# apt uses; ANOMALYD_VM_MIRROR overrides) and cached as CACHE_DIR/systemd/
# root.cpio, remade when the package list changes. The kernel is
# vivid-vm.sh's, in the same cache.
# Exit: the number of failed checks (0 all passed); 77 skipped (not root, no
# debootstrap, a host that cannot boot the VM, ANOMALYD_SKIP_VM=1, or the
# mirror unreachable), with the reason.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
VM=$SRC/tests/vm
T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }
skip() { echo "vm_systemd: SKIP: $*"; exit 77; }
die() { echo "vm_systemd: ERROR: $*" >&2; exit 1; }

(($# == 2)) || die "usage: $0 DEB|PKG_BUILD_DIR CACHE_DIR"
DEB=$1
if [[ -d $DEB ]]; then
    DEB=$(ls "$DEB"/anomalyd_*.deb 2>/dev/null | head -n1 || true)
    [[ -n $DEB ]] || die "no anomalyd_*.deb in $1 (packaging/test-deb.sh builds it)"
fi
[[ -f $DEB ]] || die "$DEB not found"
DEB=$(realpath "$DEB")
mkdir -p "$2"
CACHE=$(cd "$2" && pwd)

[[ ${ANOMALYD_SKIP_VM:-0} != 1 ]] || skip "ANOMALYD_SKIP_VM=1"
((EUID == 0)) || skip "debootstrap needs root"
command -v debootstrap >/dev/null || skip "no debootstrap (scripts/install-deps.sh installs it)"
"$VM/vivid-vm.sh" --check || exit $?
[[ -f $SRC/fixtures/model/parts.safetensors ]] || die "no fixture model in $SRC/fixtures/model"

# ---------------------------------------------------------------- the root
mirror=${ANOMALYD_VM_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "URIs:" && $2 ~ /debian\/?$/ {print $2; exit}' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /^http/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
# what the package needs, first alternative of each, without versions
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' |
       grep -v '^$' | LC_ALL=C sort -u | tr '\n' ',')
pkgs="systemd,systemd-sysv,udev,dbus,sqlite3,procps,kmod,${deps%,}"
key="$suite $mirror $pkgs"
R=$CACHE/systemd

exec 9> "$CACHE/.systemd-lock"
flock 9
if [[ ! -f $R/root.cpio || "$(cat "$R/key" 2>/dev/null)" != "$key" ]]; then
    echo "vm_systemd: making the root once: debootstrap $suite from $mirror with $pkgs"
    rm -rf "$R"
    mkdir -p "$R/tree"
    if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$R/tree/sysroot" "$mirror" \
            > "$CACHE/debootstrap.log" 2>&1; then
        tail -n 5 "$CACHE/debootstrap.log"
        rm -rf "$R/tree"
        grep -q -i -e 'Failed getting release file' -e 'Couldn.t download' -e 'Temporary failure' \
            "$CACHE/debootstrap.log" && skip "debootstrap could not reach $mirror; see $CACHE/debootstrap.log"
        die "debootstrap failed; see $CACHE/debootstrap.log"
    fi
    s=$R/tree/sysroot
    rm -rf "$s"/usr/share/{doc,man,info,locale} "$s"/var/cache/apt/* "$s"/var/lib/apt/lists/*
    echo anomalyd-vm > "$s/etc/hostname"
    : > "$s/etc/machine-id"
    (cd "$R/tree" && find sysroot | LC_ALL=C sort | cpio -o -H newc --quiet) > "$R/root.cpio.new"
    mv "$R/root.cpio.new" "$R/root.cpio"
    rm -rf "$R/tree"
    echo "$key" > "$R/key"
    echo "vm_systemd: root made in $(since) s, $(du -m "$R/root.cpio" | cut -f1) MB"
fi
flock -u 9

# --------------------------------------------------------------------- boot
set +e
"$VM/vivid-vm.sh" --cache "$CACHE" --rootfs "$R/root.cpio" --mem 2048 --timeout 600 \
    --append "systemd.show_status=0" \
    --copy "$DEB" --copy "$SRC/fixtures/model" --copy "$VM/systemd-scenarios.sh" \
    -- "$VM/systemd-scenarios.sh" "$DEB" "$SRC/fixtures" | tee "$CACHE/systemd-test.log"
rc=${PIPESTATUS[0]}
set -e
case $rc in
    0) echo "vm_systemd: all checks passed in $(since) s" ;;
    77) exit 77 ;;
    124) echo "vm_systemd: FAIL, the VM timed out (after $(since) s)" ;;
    125) echo "vm_systemd: FAIL, the VM gave no result" ;;
    *) echo "vm_systemd: FAIL ($rc checks), see the FAIL lines above (log: $CACHE/systemd-test.log)" ;;
esac
exit "$rc"
