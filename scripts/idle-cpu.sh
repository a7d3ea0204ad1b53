#!/usr/bin/env bash
# Issue 14, "idle costs nothing": CPU of every thread of each consumer over SECONDS with no
# traffic, against tcpdump.
#
# Usage: scripts/idle-cpu.sh [SECONDS] [REPEATS]     (defaults 10 3; as root)
#
# In a private sandbox (make_sandbox in common.sh, plus a second veth pair vout/vsink in the
# receiving namespace for the forwarder's output), each consumer is started, waits until ready
# ("listening on" / "forwarding"), rests 0.5 s, and then the CPU of all its threads (schedstat:
# ns on CPU, user and kernel) is read before and after SECONDS of no traffic; SIGINT ends it.
# Consumers: tcpdump -w /dev/null; `wirecap capture` on the plain ring (1 queue); `wirecap
# capture --queues 2 --pool-chunks 64`; `wirecap-ids --queues 2` (the pcap facade, a reader per
# queue, each in `dispatch` with a 1000 ms time-out); `wirecap fwd --queues 2`. REPEATS rounds,
# interleaved; the median per consumer, and each run with its busiest thread.
set -euo pipefail

SECONDS_IDLE=${1:-10}
REPEATS=${2:-3}

SCRIPT=idle-cpu
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count SECONDS "$SECONDS_IDLE"
require_count REPEATS "$REPEATS"
require_root_and tcpdump
build_wirecap
BIN=$(dirname "$WIRECAP")

open_sandbox idle
ip -n "$NS_RX" link add vout type veth peer name vsink
ip -n "$NS_RX" link set vout up
ip -n "$NS_RX" link set vsink up

consumer_cmd() {
    case $1 in
        tcpdump) CMD=(tcpdump -i vrx -w /dev/null) ;;
        capture) CMD=("$BIN/wirecap" capture -i vrx --queues 1) ;;
        pool) CMD=("$BIN/wirecap" capture -i vrx --queues 2 --pool-chunks 64) ;;
        facade) CMD=("$BIN/wirecap-ids" -i vrx --queues 2 --duration 100000) ;;
        fwd) CMD=("$BIN/wirecap" fwd -i vrx -o vout --queues 2) ;;
    esac
}

# thread_ns PID -> "TID NS" per thread
thread_ns() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{ print $1 }' "$t/schedstat")"; done 2>/dev/null; }

CONSUMERS=(tcpdump capture pool facade fwd)
echo "# idle seconds=$SECONDS_IDLE repeats=$REPEATS cpus=$(nproc)"
for ((r = 1; r <= REPEATS; r++)); do
    for name in "${CONSUMERS[@]}"; do
        p=$WORK/$name.$r
        consumer_cmd "$name"
        ip netns exec "$NS_RX" "${CMD[@]}" </dev/null >"$p.out" 2>"$p.err" &
        CAP_PID=$!
        for ((i = 0; i < 1200; i++)); do
            grep -qsE 'listening on|forwarding' "$p.err" && break
            kill -0 "$CAP_PID" 2>/dev/null || die "$name exited early: $(cat "$p.err")"
            sleep 0.05
        done
        sleep 0.5
        thread_ns "$CAP_PID" >"$p.before"
        sleep "$SECONDS_IDLE"
        thread_ns "$CAP_PID" >"$p.after"
        kill -INT "$CAP_PID"
        wait "$CAP_PID" || true
        CAP_PID=""
        read -r ms busiest threads < <(awk 'NR == FNR { b[$1] = $2; next }
            { d = $2 - b[$1]; s += d; if (d > m) m = d; n++ }
            END { printf "%.2f %.2f %d\n", s / 1e6, m / 1e6, n }' "$p.before" "$p.after")
        echo "$ms" >>"$WORK/$name.ms"
        echo "run $r $name cpu_ms=$ms threads=$threads busiest_thread_ms=$busiest"
    done
done
for name in "${CONSUMERS[@]}"; do
    echo "idle      $name median_cpu_ms_per_${SECONDS_IDLE}s=$(median <"$WORK/$name.ms") runs=$(paste -sd, "$WORK/$name.ms")"
done
