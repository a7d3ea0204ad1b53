#!/usr/bin/env bash
# The quick start's main job: installs what wirecap needs (Debian 12), builds it, and runs the
# drop-rate experiment with its defaults in a private sandbox. Arguments go to
# `wirecap experiment` (see `wirecap experiment --help`); results land in ./results.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "experiment.sh: the experiment creates network namespaces and needs root: run it as root (for example `sudo` where installed)" >&2
    exit 1
fi
scripts/install-deps.sh
swift build -c release --product wirecap >&2
exec .build/release/wirecap experiment "$@"
