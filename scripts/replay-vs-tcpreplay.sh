#!/usr/bin/env bash
# Replay speed: `wirecap replay --topspeed` against `tcpreplay --topspeed` on the same trace.
#
# Usage: scripts/replay-vs-tcpreplay.sh [PACKETS] [REPEATS] [SIZE]   (defaults 1000000 3 64)
#
# Writes a trace of PACKETS IPv4/UDP frames of SIZE bytes (198.18.0.0/15 -> 198.19.0.1, 256
# flows, locally administered MACs, 1 us apart) with a few lines of python, builds a private veth
# pair between two throwaway network namespaces (IPv6 disabled before the veth exists, no IP
# addresses, so the only traffic on the link is ours; removed on exit by a trap), and for each
# repeat runs, one after the other, in the TX namespace:
#   wirecap    wirecap replay -i vtx --topspeed FILE        (TPACKET_V2 TX ring, qdisc bypass)
#   tcpreplay  tcpreplay --topspeed -i vtx FILE             (one send() per packet, reads the file as it goes)
#   tcpreplay-K tcpreplay -K --topspeed -i vtx FILE         (the same, file preloaded into memory)
# each under GNU time. Figures per run: the tool's own packets per second (both count from the
# first packet to the last, file loading excluded), the wall time of the whole process (loading
# included), its CPU time (user + sys), and how many frames the receiving veth end counted
# (rx_packets + rx_dropped: every frame sent shows up there).
# Output: one "run" line per run, then a "table" line per tool with the median, min and max pps
# and the median wall and CPU seconds.
set -euo pipefail

PACKETS=${1:-1000000}
REPEATS=${2:-3}
SIZE=${3:-64}

SCRIPT=replay-vs-tcpreplay
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count PACKETS "$PACKETS"
require_count REPEATS "$REPEATS"
[[ $SIZE =~ ^[0-9]+$ ]] && ((SIZE >= 60 && SIZE <= 1514)) || die "SIZE must be 60 to 1514 bytes"
require_root_and tcpreplay python3
build_wirecap
TCPREPLAY=$(command -v tcpreplay)

NS_TX=wirecap-replay-$$-tx
NS_RX=wirecap-replay-$$-rx
WORK=$(mktemp -d /tmp/wirecap-replay.XXXXXX)
TRACE=$WORK/trace.pcap

trap_sandbox_cleanup

# --- the trace -------------------------------------------------------------
python3 - "$TRACE" "$PACKETS" "$SIZE" <<'PY'
import struct, sys
path, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def checksum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

eth = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
payload_len = size - 42
with open(path, 'wb', buffering=1 << 20) as out:
    # pcap, nanosecond timestamps, Ethernet
    out.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, 65535, 1))
    t = 1_700_000_000 * 10**9
    headers = []
    for flow in range(256):
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + 8 + payload_len, 0, 0x4000, 64, 17, 0,
                         bytes([198, 18, 0, flow]), bytes([198, 19, 0, 1]))
        ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
        udp = struct.pack('!HHHH', 1024 + flow, 5000, 8 + payload_len, 0)   # UDP checksum 0: none
        headers.append(eth + ip + udp)
    for i in range(count):
        frame = headers[i % 256] + struct.pack('!IQ', 0x57434150, i) + bytes(payload_len - 12)
        ts = t + i * 1000
        out.write(struct.pack('<IIII', ts // 10**9, ts % 10**9, size, size))
        out.write(frame)
PY

# --- namespaces and veth --------------------------------------------------
make_sandbox "$NS_TX" "$NS_RX"

rx_count() {
    ip netns exec "$NS_RX" sh -c 'echo $(( $(cat /sys/class/net/vrx/statistics/rx_packets) + $(cat /sys/class/net/vrx/statistics/rx_dropped) ))'
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "NA"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.10g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run_one TOOL REPEAT -> a "run" line, and a line in $WORK/results
run_one() {
    local tool=$1 rep=$2 out=$WORK/$tool.$rep.out tim=$WORK/$tool.$rep.time
    local -a cmd
    case $tool in
        wirecap) cmd=("$WIRECAP" replay -i vtx --topspeed "$TRACE") ;;
        tcpreplay) cmd=("$TCPREPLAY" --topspeed -i vtx "$TRACE") ;;
        tcpreplay-K) cmd=("$TCPREPLAY" -K --topspeed -i vtx "$TRACE") ;;
    esac
    local before after
    before=$(rx_count)
    ip netns exec "$NS_TX" /usr/bin/time -o "$tim" -f 'time %e %U %S' "${cmd[@]}" >"$out" 2>&1 \
        || die "$tool failed: $(cat "$out")"
    sleep 0.2
    after=$(rx_count)
    local pps
    case $tool in
        wirecap) pps=$(awk '/^rate / { print $2 }' "$out") ;;
        *) pps=$(awk '/Rated:/ { for (i = 1; i <= NF; i++) if ($i == "pps") print $(i - 1) }' "$out") ;;
    esac
    local wall cpu
    wall=$(awk '$1 == "time" { print $2 }' "$tim")
    cpu=$(awk '$1 == "time" { printf "%.2f", $3 + $4 }' "$tim")
    [[ -n $pps && -n $wall ]] || die "$tool: could not parse: $(cat "$out" "$tim")"
    local extra=""
    [[ $tool == wirecap ]] && extra=" send_thread_ns_per_pkt=$(awk '/^cpu / { print $(NF - 3) }' "$out")"
    printf 'run tool=%s rep=%d pps=%s wall_s=%s cpu_s=%s received=%s%s\n' "$tool" "$rep" "$pps" "$wall" "$cpu" "$((after - before))" "$extra"
    echo "$tool $pps $wall $cpu $((after - before))" >>"$WORK/results"
}

echo "# packets=$PACKETS size=$SIZE repeats=$REPEATS cpus=$(nproc) kernel=$(uname -r) $("$TCPREPLAY" --version 2>&1 | head -1) load=$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/results"
TOOLS=(wirecap tcpreplay tcpreplay-K)
for ((rep = 1; rep <= REPEATS; rep++)); do
    for tool in "${TOOLS[@]}"; do
        run_one "$tool" "$rep"
    done
done

echo "table tool median_pps min_pps max_pps median_wall_s median_cpu_s"
for tool in "${TOOLS[@]}"; do
    col() { awk -v t="$tool" -v c="$1" '$1 == t { print $c }' "$WORK/results"; }
    printf 'table %-11s %s %s %s %s %s\n' "$tool" "$(col 2 | median)" "$(col 2 | sort -g | head -1)" \
        "$(col 2 | sort -g | tail -1)" "$(col 3 | median)" "$(col 4 | median)"
done
