#!/usr/bin/env bash
# Installs the Debian packages wirecap needs that are missing (run as root): the system
# libraries, iproute2 for the sandbox, and gnuplot for the experiment's plots.
set -euo pipefail
missing=()
for pkg in libpcap-dev libnuma-dev iproute2 gnuplot-nox "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
