#!/usr/bin/env bash
# A short check: installs what wirecap needs (Debian 12), builds it, and runs the sandboxed
# exactly-once capture demo. Arguments go to `wirecap demo` (see `wirecap demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: the demo creates network namespaces and needs root: run it as root (for example `sudo` where installed)" >&2
    exit 1
fi
scripts/install-deps.sh
swift build -c release --product wirecap >&2
exec .build/release/wirecap demo "$@"
