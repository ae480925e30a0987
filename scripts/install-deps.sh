#!/bin/sh
# Installs the Debian 12 packages anomalyd needs to build, test and run.
# Idempotent; run as root (or through sudo). qemu-system-x86, busybox-static,
# cpio, kmod and v4l-utils are for the vivid VM test (tests/vm/, label vm);
# man-db, lintian, dpkg-dev and file for the package test (packaging/);
# systemd for systemd-analyze (unit verify and sandbox score), debootstrap
# for the root of the systemd VM test (tests/vm/systemd-vm-test.sh), valgrind for
# the memcheck stage of scripts/test.sh, python3 for the sd_notify listener
# of bench/soak.sh (its short CHECK run is a ctest).
# chromium renders the HTML report in its integration test (test_report_cli:
# headless, --no-sandbox as root; the screenshot is docs/report-demo.png).
# clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes, which
# clang only recommends) and libomp-14-dev (clang's OpenMP, which the
# detector links) are for the fuzz stage (tests/fuzz/, label fuzz).
# libmodbus-dev: the Modbus TCP link (outputs.modbus, trigger.mode modbus);
# the tests and bench/latency.sh also build their PLC stand-in with it.
# libmosquitto-dev: the MQTT link (outputs.mqtt, trigger.mode mqtt);
# mosquitto is the broker its tests start (test_mqtt_link, test_mqtt_daemon),
# openssl makes the certificates of their TLS case.
# gcc's ThreadSanitizer runtime (libtsan2, the TSan stage) comes with
# build-essential.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
    build-essential cmake pkg-config git ca-certificates \
    libv4l-dev libpng-dev libsqlite3-dev libyaml-dev libcmocka-dev \
    libopenblas-dev libjansson-dev libmodbus-dev sqlite3 procps python3 \
    libmosquitto-dev mosquitto openssl \
    qemu-system-x86 busybox-static cpio kmod v4l-utils xz-utils \
    clang libclang-rt-14-dev libomp-14-dev \
    man-db lintian adduser dpkg-dev file systemd debootstrap valgrind chromium \
    ${ANOMALYD_EXTRA_PACKAGES:-}
