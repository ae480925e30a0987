#!/bin/sh
# Builds the .deb and tests its life cycle on this machine with dpkg:
# install, upgrade over itself, remove (configs and data stay), purge (data
# and user go). Runs lintian and man on the result. Needs root; modifies the
# system (meant for CI machines and throwaway roots).
# Usage: packaging/test-deb.sh [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/pkg}
if [ "$(id -u)" -ne 0 ]; then
    echo "test-deb: SKIPPED: needs root (dpkg -i)"
    exit 0
fi
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DANOMALYD_NATIVE=OFF -DANOMALYD_TESTS=OFF >/dev/null
cmake --build "$build" --target anomalyd anomalyctl manpages -j"$(nproc)" >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/anomalyd_*.deb | head -n 1)
[ -f "$deb" ] || fail "no package built"
echo "test-deb: built $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
dpkg-deb -f "$deb" Depends | sed 's/^/test-deb: Depends: /'

if command -v lintian >/dev/null; then
    findings=$(lintian --tag-display-limit 0 "$deb" 2>/dev/null || true)
    if [ -n "$findings" ]; then
        echo "$findings" | sed 's/^/  lintian: /'
        echo "$findings" | grep -q '^[EW]:' && fail "lintian reports errors or warnings"
    fi
    echo "test-deb: lintian: no errors or warnings"
fi

dpkg -P anomalyd >/dev/null 2>&1 || true
rm -rf /var/lib/anomalyd /etc/anomalyd

# install
dpkg -i "$deb" >/dev/null 2>&1 || { apt-get install -f -y >/dev/null; dpkg -i "$deb" >/dev/null; }
getent passwd anomalyd >/dev/null || fail "user anomalyd not created"
id -nG anomalyd | grep -qw video || fail "anomalyd is not in group video"
[ "$(stat -c %U /var/lib/anomalyd)" = anomalyd ] || fail "/var/lib/anomalyd not owned by anomalyd"
[ -f /etc/anomalyd/line3.yaml.example ] || fail "example config missing"
[ -f /lib/systemd/system/anomalyd@.service ] || fail "unit missing"
/usr/sbin/anomalyd --version >/dev/null || fail "anomalyd does not run"
/usr/bin/anomalyctl --help >/dev/null || fail "anomalyctl does not run"
for page in anomalyd.8 anomalyctl.1 anomalyd.yaml.5; do
    section=${page##*.}
    f=/usr/share/man/man$section/$page.gz
    [ -f "$f" ] || f=/usr/share/man/man$section/$page
    [ -f "$f" ] || fail "man page $page not installed"
    if command -v man >/dev/null; then
        warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
        [ -z "$warn" ] || fail "man $page warns: $warn"
    fi
done
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/anomalyd@.service 2>&1 | grep -v -e 'Failed to' -e '^$' || true
fi

# a user's config and data survive upgrade and remove
cp /etc/anomalyd/line3.yaml.example /etc/anomalyd/line3.yaml
echo "reject log" > /var/lib/anomalyd/line3.db
dpkg -i "$deb" >/dev/null || fail "upgrade over itself failed"
[ -f /etc/anomalyd/line3.yaml ] && [ -f /var/lib/anomalyd/line3.db ] || fail "upgrade lost user files"
dpkg -r anomalyd >/dev/null || fail "remove failed"
[ ! -e /usr/sbin/anomalyd ] || fail "remove left the binary"
[ -f /etc/anomalyd/line3.yaml ] && [ -f /var/lib/anomalyd/line3.db ] || fail "remove lost user files"
getent passwd anomalyd >/dev/null || fail "remove deleted the user"
dpkg -P anomalyd >/dev/null || fail "purge failed"
[ ! -e /var/lib/anomalyd ] || fail "purge left /var/lib/anomalyd"
! getent passwd anomalyd >/dev/null || fail "purge left the user"
[ -f /etc/anomalyd/line3.yaml ] || fail "purge deleted the user's own config"
rm -rf /etc/anomalyd
echo "test-deb: install, upgrade, remove, purge: ok"
