#!/bin/sh
# Sets up a fresh Debian 12 machine and runs every test: the normal build
# (warnings are errors; includes a short soak and the vivid VM), the Debian
# package (as root) and its unit under a real systemd in a VM, valgrind memcheck on the integration run, the AddressSanitizer+UBSan build,
# the ThreadSanitizer build on the tests that run the daemon's threads,
# and every libFuzzer harness for a short bounded time (its ctest summary
# comes last, before the final stage line).
# Usage: scripts/test.sh            (as root, or a user with sudo)
set -eu
cd "$(dirname "$0")/.."
# One line per stage with the seconds since the start, so a CI log shows
# where the time goes.
t0=$(date +%s)
stage() { echo "== scripts/test.sh: $1 (at $(($(date +%s) - t0)) s)"; }
stage "installing dependencies"
scripts/install-deps.sh
jobs=$(nproc)

stage "release build and tests"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANOMALYD_WERROR=ON
cmake --build build/release -j"$jobs"
(cd build/release && ctest --output-on-failure -j"$jobs")

# The Debian package: build, lintian, install/upgrade/remove/purge (root only).
stage "Debian package"
packaging/test-deb.sh build/pkg

# That package's unit under a real systemd, in a qemu VM with vivid's camera:
# start, camera, state folder, watchdog, reload, stop, live sandbox score
# (exit 77: skipped, the reason printed; e.g. not root).
stage "systemd unit in a VM"
rc=0
tests/vm/systemd-vm-test.sh build/pkg build/release/vm-cache || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || exit "$rc"

# valgrind memcheck on the integration run (daemon on the replay, score,
# eval): a build without -march=native, as valgrind 3.19 lacks AVX-512.
stage "valgrind memcheck"
cmake -S . -B build/valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANOMALYD_WERROR=ON -DANOMALYD_NATIVE=OFF
cmake --build build/valgrind -j"$jobs" --target anomalyd anomalyctl
(cd build/valgrind && ctest --output-on-failure -L memcheck)

stage "AddressSanitizer+UBSan build and tests"
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DANOMALYD_WERROR=ON -DANOMALYD_SANITIZE=ON
cmake --build build/sanitize -j"$jobs"
(cd build/sanitize && ctest --output-on-failure -j"$jobs")

# ThreadSanitizer on the daemon's threads (capture, inspection, writer, the
# main thread's reloads): the tests that run anomalyd, label tsan, and only
# the programs they need. A report from any program they start fails the
# stage (tests/cmake/tsan.cmake).
stage "ThreadSanitizer"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANOMALYD_WERROR=ON -DANOMALYD_TSAN=ON
cmake --build build/tsan -j"$jobs" --target tsan_programs
(cd build/tsan && ctest --output-on-failure -L tsan)

# libFuzzer harnesses (tests/fuzz/, clang): each runs ANOMALYD_FUZZ_SECONDS
# (20) over a copy of its seed corpus with ASan+UBSan; a finding fails the
# stage and leaves its reproducer in build/fuzz/tests/fuzz/run/<name>/.
stage "libFuzzer harnesses"
CC=clang cmake -S . -B build/fuzz -DANOMALYD_FUZZ=ON -DANOMALYD_WERROR=ON
cmake --build build/fuzz -j"$jobs"
(cd build/fuzz && ctest -L fuzz --output-on-failure -j"$jobs")
stage "done"
