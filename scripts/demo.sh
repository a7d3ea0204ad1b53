#!/usr/bin/env bash
# The quick start's main job: installs what wirecap needs (Debian 12), builds it, and runs the
# sandboxed capture demo. Arguments go to `wirecap demo` (see `wirecap demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: the demo creates network namespaces and needs root: run it with sudo" >&2
    exit 1
fi
missing=()
for pkg in libpcap-dev libnuma-dev iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
swift build -c release --product wirecap >&2
exec .build/release/wirecap demo "$@"
