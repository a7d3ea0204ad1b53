#!/usr/bin/env bash
# Compare the CPU cost of capturing to /dev/null: wirecap (1 queue) vs tcpdump.
#
# Usage: scripts/cpu-vs-tcpdump.sh [PACKETS] [REPEATS] [OUTDIR]   (defaults 1000000 3, no OUTDIR)
# With OUTDIR, also writes OUTDIR/cpu-vs-tcpdump.dat and, if gnuplot is installed,
# OUTDIR/cpu-vs-tcpdump.png (CPU ns per packet of every run, both engines).
#
# Builds a private veth pair between two throwaway network namespaces (IPv6
# disabled before the veth exists, no IP addresses, so the only traffic on the
# link is ours), then for each engine and repeat:
#   - starts the capturer in the RX namespace, writing to /dev/null, under
#     GNU time (/usr/bin/time), and waits for its "listening on" line;
#   - sends PACKETS frames (256 flows, 64 bytes) with `wirecap send` from TX;
#   - waits 1 s, reads utime+stime of the capture process from /proc/PID/stat,
#     sends it SIGINT, waits for it, and reads its lifetime user+sys from time;
#   - parses "N packets captured" / "N packets dropped by kernel" from its
#     summary (wirecap and tcpdump print the same three lines).
# tcpdump gets -B 32768 (32 MiB kernel buffer), the same size as wirecap's
# default ring (32 blocks x 1 MiB).
#
# CPU figures are raw: nothing is subtracted. They include start-up, the idle
# polling while waiting for traffic and during the ~1 s wait after sending,
# and (for the "total" column) shutdown. Resolution is one clock tick (10 ms).
#
# Output: one "run" line per run and a final "table" with, per engine, the
# medians of CPU seconds per million captured packets (lifetime total and as
# read just before SIGINT), packets captured, packets dropped, and the CPU
# nanoseconds per packet from readiness to SIGINT (all threads, summed from
# /proc/PID/task/*/schedstat: exact, and free of the set-up cost of the ring).
set -euo pipefail

PACKETS=${1:-1000000}
REPEATS=${2:-3}
OUTDIR=${3:-}
FLOWS=256
SIZE=64
TAIL_WAIT=1
TCPDUMP_BUFFER_KIB=32768   # = wirecap's default ring: 32 blocks x 1 MiB

SCRIPT=cpu-vs-tcpdump
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count PACKETS "$PACKETS"
require_count REPEATS "$REPEATS"
require_root_and tcpdump
build_wirecap
TCPDUMP=$(command -v tcpdump)
HZ=$(getconf CLK_TCK)

NS_TX=wirecap-cpu-$$-tx
NS_RX=wirecap-cpu-$$-rx
WORK=$(mktemp -d /tmp/wirecap-cpu.XXXXXX)
CAP_PID=""     # the capture process (child of time)
TIME_PID=""    # /usr/bin/time wrapping it (our direct child)

stop_children() {
    for p in $CAP_PID $TIME_PID; do
        kill -TERM "$p" 2>/dev/null || true
    done
    [[ -n $TIME_PID ]] && wait "$TIME_PID" 2>/dev/null || true
    return 0
}
trap_sandbox_cleanup

# --- namespaces and veth --------------------------------------------------
make_sandbox "$NS_TX" "$NS_RX"

# proc_cpu PID -> user+sys seconds from /proc/PID/stat (fields 14, 15)
proc_cpu() {
    local stat rest
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }          # comm may contain spaces; skip past ")"
    awk -v hz="$HZ" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$rest"
}

# run_one ENGINE REPEAT -> prints a "run" line and appends to $WORK/results
run_one() {
    local engine=$1 rep=$2 err=$WORK/$engine.$rep.err tim=$WORK/$engine.$rep.time
    local -a cmd
    case $engine in
        wirecap) cmd=("$WIRECAP" capture -i vrx --queues 1 -w /dev/null) ;;
        tcpdump) cmd=("$TCPDUMP" -i vrx -w /dev/null -n -B "$TCPDUMP_BUFFER_KIB") ;;
    esac

    # `ip netns exec` execs its command, so $! is /usr/bin/time itself.
    ip netns exec "$NS_RX" /usr/bin/time -o "$tim" -f 'cpu %U %S' "${cmd[@]}" \
        </dev/null >/dev/null 2>"$err" &
    TIME_PID=$!

    local i
    for ((i = 0; i < 100; i++)); do
        CAP_PID=$(pgrep -P "$TIME_PID" || true)
        [[ -n $CAP_PID ]] && break
        sleep 0.05
    done
    [[ -n $CAP_PID ]] || die "$engine: capture process did not start: $(cat "$err")"
    [[ $(<"/proc/$TIME_PID/comm") == time ]] || die "$engine: pid $TIME_PID is not time"
    local comm
    comm=$(<"/proc/$CAP_PID/comm")
    [[ $comm == "$engine" ]] || die "$engine: pid $CAP_PID is '$comm', not $engine"

    for ((i = 0; i < 200; i++)); do
        grep -q 'listening on' "$err" && break
        kill -0 "$CAP_PID" 2>/dev/null || die "$engine exited early: $(cat "$err")"
        sleep 0.05
    done
    grep -q 'listening on' "$err" || die "$engine: not ready after 10 s: $(cat "$err")"
    local ns_ready
    ns_ready=$(task_cpu_ns "$CAP_PID")

    ip netns exec "$NS_TX" "$WIRECAP" send -i vtx --packets "$PACKETS" \
        --flows "$FLOWS" --size "$SIZE" >"$WORK/send.out" 2>&1 \
        || die "send failed: $(cat "$WORK/send.out")"
    sleep "$TAIL_WAIT"

    local cpu_sig ns_sig
    cpu_sig=$(proc_cpu "$CAP_PID")
    ns_sig=$(task_cpu_ns "$CAP_PID")
    kill -INT "$CAP_PID"
    local rc=0
    wait "$TIME_PID" || rc=$?
    CAP_PID="" TIME_PID=""
    [[ $rc -eq 0 ]] || die "$engine exited with status $rc: $(cat "$err")"

    local cpu_tot captured dropped
    cpu_tot=$(awk '$1 == "cpu" { printf "%.2f", $2 + $3 }' "$tim")
    captured=$(awk '/^[0-9]+ packets? captured/ { print $1 }' "$err" | tail -1)
    dropped=$(awk '/^[0-9]+ packets? dropped by kernel/ { print $1 }' "$err" | tail -1)
    [[ -n $cpu_tot && -n $captured && -n $dropped ]] \
        || die "$engine: could not parse results: $(cat "$err" "$tim")"

    local per_m_tot=NA per_m_sig=NA ns_per_pkt=NA
    if ((captured > 0)); then
        ns_per_pkt=$(awk -v a="$ns_ready" -v b="$ns_sig" -v n="$captured" 'BEGIN { printf "%.1f", (b - a) / n }')
        per_m_tot=$(awk -v c="$cpu_tot" -v n="$captured" 'BEGIN { printf "%.3f", c * 1e6 / n }')
        per_m_sig=$(awk -v c="$cpu_sig" -v n="$captured" 'BEGIN { printf "%.3f", c * 1e6 / n }')
    fi
    local sent_pps
    sent_pps=$(awk '/^sent/ { for (i = 1; i <= NF; i++) if ($i == "pps") print $(i - 1) }' "$WORK/send.out")
    printf 'run engine=%s rep=%d cpu_total_s=%s cpu_at_sigint_s=%s cpu_s_per_Mpkt=%s ns_per_pkt_after_ready=%s captured=%s dropped=%s send_pps=%s\n' \
        "$engine" "$rep" "$cpu_tot" "$cpu_sig" "$per_m_tot" "$ns_per_pkt" "$captured" "$dropped" "${sent_pps:-?}"
    echo "$engine $per_m_tot $per_m_sig $captured $dropped $ns_per_pkt" >>"$WORK/results"
}

echo "# packets=$PACKETS repeats=$REPEATS flows=$FLOWS size=$SIZE tail_wait=${TAIL_WAIT}s tcpdump_B=${TCPDUMP_BUFFER_KIB}KiB wirecap_ring=32x1MiB cpus=$(nproc)"
: >"$WORK/results"
for ((rep = 1; rep <= REPEATS; rep++)); do
    for engine in wirecap tcpdump; do
        run_one "$engine" "$rep"
    done
done

echo "table engine cpu_s_per_Mpkt(total) cpu_s_per_Mpkt(at_sigint) captured dropped ns_per_pkt_after_ready (medians)"
for engine in wirecap tcpdump; do
    col() { awk -v e="$engine" -v c="$1" '$1 == e { print $c }' "$WORK/results" | median; }
    printf 'table %-8s %s %s %s %s %s\n' "$engine" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)"
done

if [[ -n $OUTDIR ]]; then
    mkdir -p "$OUTDIR"
    {
        echo "# run wirecap_ns_per_pkt tcpdump_ns_per_pkt (CPU from readiness to SIGINT, all threads; $PACKETS packets of $SIZE bytes per run)"
        paste <(awk '$1 == "wirecap" { print $6 }' "$WORK/results") <(awk '$1 == "tcpdump" { print $6 }' "$WORK/results") | awk '{ print NR, $1, $2 }'
    } >"$OUTDIR/cpu-vs-tcpdump.dat"
    if command -v gnuplot >/dev/null; then
        gnuplot <<GP
set terminal pngcairo size 720,400 font ",11"
set output "$OUTDIR/cpu-vs-tcpdump.png"
set title "CPU per captured packet, pcap to /dev/null, $PACKETS x $SIZE B per run"
set ylabel "ns of CPU per packet"
set xlabel "run"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set key top left
plot "$OUTDIR/cpu-vs-tcpdump.dat" using 2:xtic(1) title "wirecap capture -w (1 queue)", '' using 3 title "tcpdump -w (-B 32768)"
GP
        echo "wrote $OUTDIR/cpu-vs-tcpdump.dat and $OUTDIR/cpu-vs-tcpdump.png"
    else
        echo "wrote $OUTDIR/cpu-vs-tcpdump.dat (install gnuplot for the plot)"
    fi
fi
