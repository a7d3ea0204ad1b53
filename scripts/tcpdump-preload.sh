#!/usr/bin/env bash
# Issue 15: unmodified tcpdump with and without libwirecap-pcap.so, on the same burst.
#
# Usage: scripts/tcpdump-preload.sh [PACKETS] [REPEATS] [QUEUES]   (defaults 300000 3 2)
#
# In a private veth sandbox (open_sandbox in common.sh), interleaved REPEATS times, tcpdump
# decodes every frame (`-nn -v`, output to /dev/null: its own per-packet work, one thread) while
# `wirecap send` sends PACKETS 64-byte frames over 256 flows as fast as it can; 1 s after the
# send, SIGINT. Three set-ups of the same tcpdump binary:
#   tcpdump       libpcap's defaults (2 MiB ring)
#   tcpdump-B     libpcap with -B as large as the wirecap set-up's memory (rings + pools)
#   wirecap       LD_PRELOAD=libwirecap-pcap.so, -i wirecap:vrx:queues=QUEUES (ring 4 MiB and a
#                 64-chunk pool per queue, the library's defaults)
# For each: tcpdump's own closing lines (captured, dropped by kernel), the loss against what was
# sent, and CPU ns per packet of all its threads from readiness to SIGINT (schedstat).
set -euo pipefail

PACKETS=${1:-300000}
REPEATS=${2:-3}
QUEUES=${3:-2}
SCRIPT=tcpdump-preload
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count PACKETS "$PACKETS"
require_count REPEATS "$REPEATS"
require_count QUEUES "$QUEUES"
require_root_and tcpdump
build_wirecap
LIBRARY=$(dirname "$WIRECAP")/libwirecap-pcap.so
[[ -f $LIBRARY ]] || (cd "$ROOT" && swift build -c release --product wirecap-pcap >&2)
[[ -f $LIBRARY ]] || die "build did not produce $LIBRARY"
open_sandbox preload
# The wirecap set-up's memory: per queue a 4 MiB ring and 64 chunks of 512 KiB (the block that
# holds one 262,144-byte packet), as the library's defaults; tcpdump -B takes KiB.
EQUAL_KIB=$((QUEUES * (4096 + 64 * 512)))

for ((r = 1; r <= REPEATS; r++)); do
    for setup in tcpdump tcpdump-B wirecap; do
        case $setup in
            tcpdump) CMD=(tcpdump -i vrx -nn -v) ;;
            tcpdump-B) CMD=(tcpdump -i vrx -nn -v -B "$EQUAL_KIB") ;;
            wirecap) CMD=(env "LD_PRELOAD=$LIBRARY" tcpdump -i "wirecap:vrx:queues=$QUEUES" -nn -v) ;;
        esac
        err=$WORK/$setup.$r.err
        ip netns exec "$NS_RX" "${CMD[@]}" </dev/null >/dev/null 2>"$err" &
        CAP_PID=$!
        for ((i = 0; i < 600; i++)); do grep -qs 'listening on' "$err" && break; sleep 0.05; done
        grep -qs 'listening on' "$err" || die "$setup did not start: $(cat "$err")"
        # env execs tcpdump: the same process.
        ns_ready=$(task_cpu_ns "$CAP_PID")
        ip netns exec "$NS_TX" "$WIRECAP" send -i vtx --packets "$PACKETS" --flows 256 --size 64 >"$WORK/send.out" 2>&1 ||
            die "send failed: $(cat "$WORK/send.out")"
        sleep 1
        ns_sig=$(task_cpu_ns "$CAP_PID")
        kill -INT "$CAP_PID"
        wait "$CAP_PID" || true
        CAP_PID=""
        captured=$(awk '/packets captured/ { print $1 }' "$err" | tail -1)
        dropped=$(awk '/packets dropped by kernel/ { print $1 }' "$err" | tail -1)
        echo "run $r $setup captured=$captured dropped_by_kernel=$dropped lost_pct=$(awk -v c="$captured" -v n="$PACKETS" 'BEGIN { printf "%.2f", 100 * (n - c) / n }')" \
            "ns_per_pkt=$(awk -v a="$ns_ready" -v b="$ns_sig" -v n="$captured" 'BEGIN { printf "%.0f", (n > 0) ? (b - a) / n : 0 }')" \
            "send: $(grep -m1 '^sent' "$WORK/send.out" || true)"
    done
done
