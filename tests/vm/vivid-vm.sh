#!/usr/bin/env bash
# vivid-vm.sh - boot a stock Debian kernel under qemu (TCG) with the kernel's
# virtual V4L2 driver `vivid` loaded and run a shell script inside it.
#
#   vivid-vm.sh --cache DIR [--copy PATH]... [--timeout S] [--vivid-params P]
#               [--rootfs CPIO] [--mem MB] [--append ARGS] [--keep]
#               -- SCRIPT [ARG]...
#   vivid-vm.sh --check      (exit 0 if this host has the tools, else 77)
#
# Once per cache folder: `apt-get download` the linux-image-*-amd64 package
# that linux-image-amd64 depends on (never installed), extract it, depmod,
# take vivid and its dependencies in insmod order (modprobe --show-depends),
# extract the uncompressed vmlinux from vmlinuz (PVH boot, ~3 s faster under
# TCG than the bzImage), and pack busybox-static + modules into base.cpio.
# Every run: a second cpio with /init, SCRIPT, each --copy'd file at the same
# path (ELF files with every library ldd lists and the loader), booted with
# `-accel tcg -cpu max`. /init mounts proc/sys/devtmpfs, insmods the modules
# (vivid with the given parameters), waits for /dev/video0, runs SCRIPT and
# prints its exit code between marker lines on the serial console.
#
# --rootfs CPIO: an uncompressed newc archive of a whole root file system
# (a Debian with systemd, entries under sysroot/; tests/vm/systemd-vm-test.sh
# makes one). /init then copies it into a tmpfs, adds /vm (with the modules
# in /vm/modules), /etc/vm and the --copy'd files, and switch_roots to
# /lib/systemd/systemd, which runs SCRIPT as the oneshot unit
# vm-test.service once multi-user.target is reached (as root, output on the
# serial console) and powers off. --mem sets the guest memory (default
# 512 MB; the root needs about three times its size).
#
# stdout: SCRIPT's output. stderr: progress and timings.
# Exit: SCRIPT's exit code; 77 when this host cannot run the VM (tools
# missing, kernel package not downloadable: the message says which);
# 124 when the VM timed out; 125 when it ended without a result.
set -euo pipefail

CACHE=""
TIMEOUT=240
VIVID_PARAMS="n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0"
MEM=512
ROOTFS=""
APPEND=""
KEEP=0
CHECK=0
COPIES=()

say() { printf '[vm] %s\n' "$*" >&2; }
skip() { printf '[vm] SKIP: %s\n' "$*" >&2; exit 77; }
die() { printf '[vm] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

while (($#)); do
    case $1 in
        --cache) CACHE=$2; shift 2 ;;
        --copy) COPIES+=("$2"); shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --vivid-params) VIVID_PARAMS=$2; shift 2 ;;
        --rootfs) ROOTFS=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --append) APPEND=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --check) CHECK=1; shift ;;
        --) shift; break ;;
        *) die "unknown option $1 (see the header of $0)" ;;
    esac
done
if ((CHECK == 0)); then
    (($# >= 1)) || die "no script given (see the header of $0)"
    [[ -n $CACHE ]] || die "--cache DIR is required"
    SCRIPT=$1; shift
    SCRIPT_ARGS=("$@")
    [[ -f $SCRIPT ]] || die "script $SCRIPT not found"
    [[ -z $ROOTFS || -f $ROOTFS ]] || die "--rootfs $ROOTFS not found"
fi

# ---------------------------------------------------------------- host tools
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=("qemu-system-x86_64 (qemu-system-x86)")
command -v cpio >/dev/null || missing+=("cpio")
command -v depmod >/dev/null && command -v modprobe >/dev/null || missing+=("depmod/modprobe (kmod)")
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || missing+=("apt-get/dpkg-deb")
[[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=("a static /bin/busybox (busybox-static)")
if ((${#missing[@]})); then
    skip "missing ${missing[*]}; scripts/install-deps.sh installs them"
fi
((CHECK == 0)) || exit 0

T0=$(now)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

# ------------------------------------------------------ kernel + modules, once
extract_vmlinux() {  # extract_vmlinux BZIMAGE OUT: the ELF inside (PVH entry)
    local img=$1 out=$2 off o
    local -a tool
    for kind in xz gzip zstd; do
        case $kind in
            xz)   tool=(xz -dcq);   off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$img" | cut -d: -f1 || true) ;;
            gzip) tool=(gzip -dcq); off=$(LC_ALL=C grep -abo $'\x1f\x8b\x08' "$img" | cut -d: -f1 || true) ;;
            zstd) tool=(zstd -dcq); off=$(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$img" | cut -d: -f1 || true) ;;
        esac
        command -v "${tool[0]}" >/dev/null || continue
        for o in $off; do
            tail -c +$((o + 1)) "$img" | "${tool[@]}" > "$out" 2>/dev/null || true
            [[ $(head -c4 "$out" | od -An -c | tr -d ' ') == '177ELF' ]] && return 0
        done
    done
    rm -f "$out"
    return 1
}

setup_kernel() {
    local pkg work deb root kver modlist src name b app
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
    [[ -n $pkg ]] || skip "apt-cache knows no linux-image-amd64 (run apt-get update)"
    say "setup (once, cached in $CACHE): downloading $pkg"
    work=$CACHE/setup.$$
    rm -rf "$work"
    mkdir -p "$work/dl" "$work/root" "$work/base"
    # as root, apt's download sandbox user (_apt) could not write into $work
    local -a aptopt=()
    ((EUID == 0)) && aptopt=(-o APT::Sandbox::User=root)
    if ! (cd "$work/dl" && apt-get download -q "${aptopt[@]}" "$pkg") \
            > "$CACHE/apt.log" 2>&1; then
        rm -rf "$work"
        skip "apt-get download $pkg failed (no network or no apt lists?); see $CACHE/apt.log"
    fi
    deb=$(ls "$work"/dl/*.deb)
    dpkg-deb -x "$deb" "$work/root"
    root=$work/root
    if [[ -d $root/usr/lib/modules && ! -d $root/lib/modules ]]; then
        mkdir -p "$root/lib"
        mv "$root/usr/lib/modules" "$root/lib/modules"
    fi
    kver=$(ls "$root/lib/modules" | head -n1)
    [[ -n $kver && -f $root/boot/vmlinuz-$kver ]] || die "no kernel or modules in $deb"
    depmod -b "$root" "$kver"
    modlist=$(modprobe -d "$root" -S "$kver" --show-depends vivid | awk '$1 == "insmod" {print $2}')
    [[ -n $modlist ]] || die "$pkg has no vivid module"
    b=$work/base
    mkdir -p "$b/lib/modules" "$b/etc/vm" "$b"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,var/tmp}
    chmod 1777 "$b/tmp" "$b/var/tmp"
    : > "$b/etc/vm/modules"
    while read -r src; do
        [[ -n $src ]] || continue
        name=${src##*/}
        case $name in
            *.ko.xz)  name=${name%.xz};  xz -dc "$src" > "$b/lib/modules/$name" ;;
            *.ko.zst) name=${name%.zst}; zstd -q -dc "$src" > "$b/lib/modules/$name" ;;
            *.ko.gz)  name=${name%.gz};  gzip -dc "$src" > "$b/lib/modules/$name" ;;
            *.ko)     cp "$src" "$b/lib/modules/$name" ;;
            *) die "unexpected module file $src" ;;
        esac
        echo "${name%.ko}" >> "$b/etc/vm/modules"
    done <<< "$modlist"
    cp /bin/busybox "$b/bin/busybox"
    while read -r app; do
        [[ -n $app && $app != bin/busybox ]] || continue
        mkdir -p "$b/$(dirname "$app")"
        ln -sf /bin/busybox "$b/$app"
    done < <(/bin/busybox --list-full)
    mknod -m 600 "$b/dev/console" c 5 1 2>/dev/null || true
    mknod -m 666 "$b/dev/null" c 1 3 2>/dev/null || true
    (cd "$b" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$work/base.cpio"
    cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
    extract_vmlinux "$work/vmlinuz" "$work/vmlinux" ||
        say "no uncompressed vmlinux found in vmlinuz; booting the bzImage (slower)"
    echo "$kver" > "$work/kernel-release"
    tr '\n' ' ' < "$b/etc/vm/modules" > "$work/modules"
    rm -rf "$work/dl" "$work/root" "$work/base"
    rm -rf "$CACHE/kernel"
    mv "$work" "$CACHE/kernel"
    say "setup done in $(since "$T0") s: kernel $kver, modules $(cat "$CACHE/kernel/modules")"
}

exec 9> "$CACHE/.lock"
flock 9
[[ -f $CACHE/kernel/base.cpio ]] || setup_kernel
flock -u 9
K=$CACHE/kernel
KREL=$(cat "$K/kernel-release")

# ------------------------------------------------------------ per-run overlay
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QEMU_PID=""
cleanup() {
    [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null || true
    if ((KEEP)); then say "kept $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
OV=$RUN/overlay
mkdir -p "$OV/etc/vm" "$OV/vm"

declare -A COPIED=()
copy_one() {
    [[ -n ${COPIED[$1]:-} ]] && return 0
    COPIED[$1]=1
    mkdir -p "$OV$(dirname "$1")"
    cp -L --preserve=mode "$1" "$OV$1"
}
is_elf() { [[ $(head -c4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; }
copy_libs() {  # every library ldd lists, and the ELF interpreter
    local out line lib
    out=$(ldd "$1" 2>&1) || return 0
    if grep -q 'not found' <<< "$out"; then die "ldd $1: $(grep 'not found' <<< "$out")"; fi
    while read -r line; do
        case $line in
            *' => '/*) lib=${line#* => }; lib=${lib%% (*} ;;
            /*) lib=${line%% (*} ;;
            *) continue ;;
        esac
        [[ -e $lib ]] && copy_one "$lib"
    done <<< "$out"
}
for p in "${COPIES[@]}"; do
    [[ -e $p ]] || die "--copy $p: not found"
    p=$(realpath -s "$p")
    printf '%s\n' "${p#/}" >> "$OV/etc/vm/copies"
    if [[ -d $p ]]; then
        while IFS= read -r -d '' f; do
            copy_one "$f"
            if is_elf "$f"; then copy_libs "$f"; fi
        done < <(find "$p" -xtype f -print0)
    else
        copy_one "$p"
        if is_elf "$p"; then copy_libs "$p"; fi
    fi
done
cp "$SCRIPT" "$OV/vm/script.sh"
{
    printf 'exec sh /vm/script.sh'
    for a in "${SCRIPT_ARGS[@]}"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
    printf '\n'
} > "$OV/vm/run.sh"
NONCE=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
MARK="@@VM-$NONCE@@"
echo "$MARK" > "$OV/etc/vm/marker"
echo "$VIVID_PARAMS" > "$OV/etc/vm/vivid-params"
echo "$KREL" > "$OV/etc/vm/kernel-release"
touch "$OV/etc/vm/copies"
if [[ -n $ROOTFS ]]; then
    # SCRIPT as a unit of the guest's systemd, once the system is up
    cat > "$OV/vm/vm-test.service" <<'UNIT'
[Unit]
Description=vivid-vm.sh test script
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh /vm/systemd-run.sh
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/console
TTYReset=no
TTYVHangup=no
UNIT
    cat > "$OV/vm/systemd-run.sh" <<'RUN'
M=$(cat /etc/vm/marker)
read -r up _ < /proc/uptime
echo "$M BEGIN uptime=$up modules_ok=$(cat /etc/vm/modules-ok) system=$(systemctl is-system-running)"
cd /tmp
sh /vm/run.sh </dev/null 2>&1
rc=$?
read -r up _ < /proc/uptime
echo "$M END rc=$rc uptime=$up"
sync
systemctl --force --force poweroff
RUN
fi
[[ -e $OV/etc/passwd ]] || printf 'root:x:0:0:root:/root:/bin/sh\n' > "$OV/etc/passwd"
[[ -e $OV/etc/group ]] || printf 'root:x:0:\nvideo:x:44:\n' > "$OV/etc/group"
cat > "$OV/init" <<'INIT'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
M=$(cat /etc/vm/marker)
echo 1 > /proc/sys/kernel/printk
ok=1
while read -r m; do
    [ -n "$m" ] || continue
    params=
    [ "$m" = vivid ] && params=$(cat /etc/vm/vivid-params)
    # shellcheck disable=SC2086
    insmod "/lib/modules/$m.ko" $params || { echo "$M insmod $m failed"; ok=0; }
done < /etc/vm/modules
i=0
while [ ! -e /dev/video0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
if [ -d /sysroot ]; then
    # --rootfs: move into the whole system, which runs the script as a unit
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 tmpfs /newroot
    if ! cp -a /sysroot/. /newroot/; then
        echo "$M copying the root file system failed"
        poweroff -f
    fi
    rm -rf /sysroot
    # shellcheck disable=SC2046
    (cd / && tar -cf - vm etc/vm $(cat /etc/vm/copies)) | tar -xf - -C /newroot
    echo $ok > /newroot/etc/vm/modules-ok
    mkdir -p /newroot/vm/modules  # for a script that unplugs vivid and plugs it in again
    cp /lib/modules/*.ko /newroot/vm/modules/
    u=/newroot/etc/systemd/system
    mkdir -p $u/multi-user.target.wants
    cp /vm/vm-test.service $u/
    ln -sf ../vm-test.service $u/multi-user.target.wants/vm-test.service
    ln -sf /dev/null $u/serial-getty@ttyS0.service  # no login prompt amid the output
    # keep what was copied under /tmp (Debian's tmp.conf empties it at boot)
    mkdir -p /newroot/etc/tmpfiles.d
    echo 'd /tmp 1777 root root -' > /newroot/etc/tmpfiles.d/tmp.conf
    umount /dev/shm
    mount --move /dev /newroot/dev
    mount --move /proc /newroot/proc
    mount --move /sys /newroot/sys
    exec switch_root /newroot /lib/systemd/systemd
fi
read -r up _ < /proc/uptime
echo "$M BEGIN uptime=$up modules_ok=$ok"
cd /tmp
sh /vm/run.sh </dev/null
rc=$?
read -r up _ < /proc/uptime
echo "$M END rc=$rc uptime=$up"
sync
poweroff -f
INIT
chmod 755 "$OV/init"
(cd "$OV" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$RUN/overlay.cpio"
cat "$K/base.cpio" ${ROOTFS:+"$ROOTFS"} "$RUN/overlay.cpio" > "$RUN/initrd.cpio"

# ---------------------------------------------------------------------- boot
KIMG=$K/vmlinuz
[[ -f $K/vmlinux ]] && KIMG=$K/vmlinux
T_QEMU=$(now)
RC=125
IN_SCRIPT=0
exec 8< <(exec timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -m "$MEM" -smp 1 -nographic -no-reboot \
    -nic none -accel tcg -cpu max -kernel "$KIMG" -initrd "$RUN/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1${APPEND:+ $APPEND}" </dev/null 2>&1; echo "@@QEMU-EXIT-$NONCE@@ $?")
: > "$RUN/console.log"
QEMU_RC=""
while IFS= read -r line <&8 || [[ -n $line ]]; do
    line=${line%$'\r'}
    printf '%s\n' "$line" >> "$RUN/console.log"
    case $line in
        *"@@QEMU-EXIT-$NONCE@@ "*) QEMU_RC=${line##* }; break ;;
        *"$MARK BEGIN"*) IN_SCRIPT=1; say "booted in $(since "$T_QEMU") s (${line#*"$MARK "}); running $(basename "$SCRIPT")" ;;
        *"$MARK END rc="*) IN_SCRIPT=0; RC=${line#*END rc=}; RC=${RC%% *} ;;
        *"$MARK "*) say "guest: ${line#*"$MARK "}" ;;
        *) ((IN_SCRIPT)) && printf '%s\n' "$line" ;;
    esac
done
exec 8<&-
if [[ $RC == 125 && ( $QEMU_RC == 124 || $QEMU_RC == 137 ) ]]; then
    RC=124
    say "TIMEOUT: the VM ran longer than $TIMEOUT s; console log kept in $RUN"
    KEEP=1
elif [[ $RC == 125 ]]; then
    say "the VM ended without a result (qemu exit ${QEMU_RC:-?}); last console lines:"
    tail -n 20 "$RUN/console.log" >&2
    KEEP=1
fi
say "total $(since "$T0") s (qemu $(since "$T_QEMU") s), script exit code $RC"
exit "$RC"
