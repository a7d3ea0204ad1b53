#!/usr/bin/env bash
# Builds the DocC documentation of WirecapEngine and WirecapPcap with the toolchain's own docc
# (no plugin dependency): symbol graphs from `swift package dump-symbol-graph`, then `docc
# convert` per catalog.
# Usage: scripts/docs.sh [OUTPUT_DIR]   (default .build/docs); exits non-zero on any docc warning.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/docs}"
graphs=.build/docs-symbol-graphs
rm -rf "$graphs" && mkdir -p "$graphs" "$out"
dumped="$(swift package dump-symbol-graph 2>&1 | sed -n 's/^Files written to //p')"
[ -d "$dumped" ] || { echo "docs: swift package dump-symbol-graph wrote no symbol graphs" >&2; exit 1; }
docc_bin="$(dirname "$(readlink -f "$(command -v swift)")")/docc"
status=0
for module in WirecapEngine WirecapPcap; do
    mkdir -p "$graphs/$module"
    cp "$dumped/$module".symbols.json "$graphs/$module"/
    cp "$dumped/$module"@*.symbols.json "$graphs/$module"/ 2>/dev/null || true
    log="$(mktemp)"
    "$docc_bin" convert "Sources/$module/$module.docc" --fallback-display-name "$module" --fallback-bundle-identifier "wirecap.$module" \
        --additional-symbol-graph-dir "$graphs/$module" --output-path "$out/$module.doccarchive" >"$log" 2>&1 || status=1
    if grep -q "warning:\|error:" "$log"; then
        grep "warning:\|error:" "$log"
        status=1
    fi
    echo "$module: $out/$module.doccarchive"
done
exit $status
