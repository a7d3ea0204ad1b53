#!/usr/bin/env bash
# Runs the engine's, the facade's and the forwarder's tests under ThreadSanitizer and then
# AddressSanitizer, each in a build folder of its own (.build-tsan, .build-asan), and fails on
# any sanitizer report or test failure. As root, so the sandbox tests (the threads, rings and
# leases under real traffic) run too; elsewhere they are skipped with a reason.
# Usage: scripts/sanitizers.sh [FILTER]   (default: the suites below)
set -euo pipefail
cd "$(dirname "$0")/.."
filter="${1:-WirecapEngineTests|WirecapPcapTests|EngineLifecycle|LiveHandle|QueueReaderTests|FacadeSemanticsTests|PoolIntegrationTests|OffloadIntegrationTests|Forwarder}"
status=0
for sanitizer in thread address; do
    scratch=".build-${sanitizer:0:1}san"
    log="$(mktemp)"
    echo "== $sanitizer sanitizer: building in $scratch" >&2
    swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" >&2
    echo "== $sanitizer sanitizer: swift test --filter '$filter'" >&2
    if ! LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0" \
        swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" --filter "$filter" >"$log" 2>&1; then
        status=1
    fi
    grep -E "Test run with" "$log" || true
    if grep -qE "(WARNING|ERROR): (ThreadSanitizer|AddressSanitizer|LeakSanitizer)|SUMMARY: (ThreadSanitizer|AddressSanitizer)" "$log"; then
        grep -E "^SUMMARY: " "$log" | sort | uniq -c
        status=1
    else
        echo "$sanitizer sanitizer: no reports"
    fi
    rm -f "$log"
done
exit $status
