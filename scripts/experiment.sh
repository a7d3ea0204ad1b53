#!/usr/bin/env bash
# The quick start's main job: installs what wirecap needs (Debian 12), builds it, and runs the
# drop-rate experiment with its defaults in a private sandbox. Arguments go to
# `wirecap experiment` (see `wirecap experiment --help`); results land in ./results.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "experiment.sh: the experiment creates network namespaces and needs root: run it with sudo" >&2
    exit 1
fi
missing=()
for pkg in libpcap-dev libnuma-dev iproute2 gnuplot-nox; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
swift build -c release --product wirecap >&2
exec .build/release/wirecap experiment "$@"
