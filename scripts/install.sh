#!/usr/bin/env bash
# Installs everything smbwatch and its tests need on Debian 12: the system packages
# (as root, or through sudo) and a virtual environment in .venv with the package in it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# tshark is the differential-test oracle (through pyshark); tcpdump writes and reads test captures;
# prometheus brings promtool, which checks and unit-tests the alert rules in dashboards/prometheus.
# Live capture compiles its kernel filter with libpcap (libpcap0.8); its tests and bench/live_rate.py
# build namespaces and veth pairs (iproute2), replay captures (tcpreplay), drop privileges to
# CAP_NET_RAW alone (setpriv, util-linux) and pin to a core (taskset, util-linux); systemd-analyze
# verifies the unit in deploy/ (systemd) and openssl makes the exporter test's TLS certificate.
# gcc and python3-dev let pip compile the hot path with mypyc (setup.py; without them it stays plain Python).
SYSTEM_PACKAGES=(python3 python3-venv python3-pip tshark tcpdump prometheus libpcap0.8 iproute2 tcpreplay util-linux
                 systemd openssl gcc python3-dev)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing system packages: ${missing[*]}" >&2
    # Without this answer tshark's installer stops to ask about non-root capture.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves the sources uncompiled (pip byte-compiles only what it copies): without
# this, every run compiles them again where bytecode is not written (PYTHONDONTWRITEBYTECODE), about
# 0.1 s of each `smbwatch analyze`.
.venv/bin/python -m compileall -q monitor dissectors >/dev/null
if .venv/bin/python -c 'import sys, monitor.tcp.flows; sys.exit(monitor.tcp.flows.__file__.endswith(".py"))' 2>/dev/null; then
    echo "smbwatch installed; hot path compiled (mypyc)" >&2
else
    echo "smbwatch installed as plain Python (hot path not compiled: see pip's build output with -v)" >&2
fi
