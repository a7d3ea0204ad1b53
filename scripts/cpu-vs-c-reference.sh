#!/usr/bin/env bash
# Issue 14: instructions and CPU per packet of `wirecap capture` (1 queue: the plain ring, the
# hybrid pool, and the pool copying every block) against the C reference consumer in Benchmarks/
# (a bare TPACKET_V3 loop), on the same traffic.
#
# Usage: scripts/cpu-vs-c-reference.sh [PACKETS] [VALGRIND_PPS] [POOL_CHUNKS] [REPEATS] [SEND_PPS]
#        (defaults 1000000 100000 64 5 300000; POOL_CHUNKS 0 leaves out the pool runs; SEND_PPS 0
#        sends at full speed)
#
# The same traffic for every consumer: SEND_PPS frames a second, a rate all of them keep up
# with. At full speed the sender's rate depends on the consumer (the veth receive path runs on
# the sender's core), so a consumer that slowed the sender had fewer packets per retired block,
# more wake-ups per packet, and a higher figure for a reason outside its own loop. Placement is
# fixed too: the sender on the last CPU; the C loop on CPU 0 (`taskset -c 0`), where wirecap
# pins its queue's capture thread by itself; wirecap's other threads (the pool's work thread,
# the main thread) where wirecap puts them, as a user gets them. (With the whole wirecap process
# forced onto CPU 0 the pool's two threads take turns on one CPU: 1.47x the plain ring against
# 1.21x, 5 runs each.)
#
# In a private veth sandbox (make_sandbox in common.sh), for each consumer:
#   cpu       REPEATS normal runs, the consumers interleaved (cref, plain, pool, pool-copy, cref,
#             ...), so that a slow spell of the machine hits all of them: started with no count,
#             ready ("listening on"), PACKETS 64-byte frames over 256 flows from `wirecap send`
#             at SEND_PPS, 1 s wait, SIGINT; CPU ns per packet from /proc/PID/task/*/schedstat
#             between readiness and SIGINT, as cpu-vs-tcpdump.sh measures it (so without
#             start-up, with the idle tail). The median of the runs, and each run; for the pool,
#             the copy rate the capture reported (blocks copied / blocks handled); the sleeps
#             (voluntary context switches of all threads, same window) per run; and per
#             thread, in start order (wirecap: main, capture thread, work thread), its ns per packet /
#             sleeps / preemptions (involuntary switches) over the same window.
#   idle      under `valgrind --tool=callgrind`: started, ready, 2 s with no traffic, SIGINT. Its
#             Ir is the start-up, 2 s of idling and shutdown.
#   callgrind under callgrind: started with a count of PACKETS, ready, the same frames sent at
#             VALGRIND_PPS (slow enough for a consumer under valgrind; drops are reported), and
#             it stops by itself at the count. Ir per packet = (Ir of this run - Ir of the idle
#             run) / packets seen: start-up and shutdown cancel; idle polling during the longer
#             run does not (the idle run's Ir is printed so its size can be judged).
# Ir is the process's total (every thread, user space only: valgrind does not see the kernel).
# valgrind runs `strip -g` copies of the binaries: it cannot read the DWARF 5 that Swift emits.
# At the end, callgrind_annotate's top functions (self Ir, demangled) of each wirecap run.
set -euo pipefail

PACKETS=${1:-1000000}
VG_PPS=${2:-100000}
POOL_CHUNKS=${3:-64}
REPEATS=${4:-5}
SEND_PPS=${5:-300000}
FLOWS=256
SIZE=64
TAIL_WAIT=1
IDLE_WAIT=2
TOP=10

SCRIPT=cpu-vs-c-reference
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count PACKETS "$PACKETS"
require_count VALGRIND_PPS "$VG_PPS"
[[ $POOL_CHUNKS =~ ^[0-9]+$ ]] || die "POOL_CHUNKS must be a number"
require_count REPEATS "$REPEATS"
[[ $SEND_PPS =~ ^[0-9]+$ ]] || die "SEND_PPS must be a number"
require_root_and valgrind strip
command -v callgrind_annotate >/dev/null || die "callgrind_annotate not found (apt-get install -y valgrind)"
build_wirecap
CREF=$ROOT/Benchmarks/.build/release/c-reference-consumer
if [[ ! -x $CREF ]]; then
    echo "$SCRIPT: building $CREF" >&2
    (cd "$ROOT/Benchmarks" && swift build -c release --product c-reference-consumer >&2)
    [[ -x $CREF ]] || die "build did not produce $CREF"
fi

open_sandbox cref
strip -g -o "$WORK/wirecap" "$WIRECAP"
strip -g -o "$WORK/c-reference-consumer" "$CREF"

# consumer_cmd NAME BIN COUNT: the command line of consumer NAME from BIN, stopping after COUNT
# packets (0: only on SIGINT).
consumer_cmd() {
    local name=$1 bin=$2 count=$3
    case $name in
        cref) CMD=("$bin/c-reference-consumer" vrx "$count") ;;
        plain | pool | pool-copy)
            CMD=("$bin/wirecap" capture -i vrx --queues 1)
            [[ $name == pool* ]] && CMD+=(--pool-chunks "$POOL_CHUNKS")
            [[ $name == pool-copy ]] && CMD+=(--pool-copy-all)
            if ((count > 0)); then CMD+=(-c "$count"); fi
            ;;
    esac
}

# start PREFIX CMD...: starts CMD in the RX namespace (stderr to PREFIX.err), sets CAP_PID and
# returns once it printed "listening on". `ip netns exec` and valgrind exec, so $! is the process.
start() {
    local prefix=$1 i
    shift
    local -a pin=()
    if [[ $* == *c-reference-consumer* ]]; then pin=("${PIN_CREF[@]}"); fi
    ip netns exec "$NS_RX" "${pin[@]}" "$@" </dev/null >"$prefix.out" 2>"$prefix.err" &
    CAP_PID=$!
    for ((i = 0; i < 1200; i++)); do
        grep -qs 'listening on' "$prefix.err" && return 0
        kill -0 "$CAP_PID" 2>/dev/null || die "$prefix exited early: $(cat "$prefix.err")"
        sleep 0.05
    done
    die "$prefix: not ready after 60 s: $(cat "$prefix.err")"
}

# finish PREFIX [SIGNAL]: signals (unless no SIGNAL) and waits for CAP_PID; its exit status must be 0.
finish() {
    local rc=0
    [[ -n ${2:-} ]] && kill "-$2" "$CAP_PID"
    wait "$CAP_PID" || rc=$?
    CAP_PID=""
    [[ $rc -eq 0 ]] || die "$1 exited with status $rc: $(cat "$1.err")"
}

send() { # send PPS (0: full speed)
    local -a rate=()
    if (($1 > 0)); then rate=(--pps "$1"); fi
    ip netns exec "$NS_TX" "${PIN_SENDER[@]}" "$WIRECAP" send -i vtx --packets "$PACKETS" --flows "$FLOWS" \
        --size "$SIZE" "${rate[@]}" >"$WORK/send.out" 2>&1 || die "send failed: $(cat "$WORK/send.out")"
}

captured() { awk '/^[0-9]+ packets? captured/ { print $1 }' "$1.err" | tail -1; }
dropped() { awk '/^[0-9]+ packets? dropped by kernel/ { print $1 }' "$1.err" | tail -1; }
total_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# callgrind PREFIX: valgrind's command line, writing its profile to PREFIX.cg
callgrind() { VG=(valgrind --tool=callgrind --log-file="$1.vg" --callgrind-out-file="$1.cg"); }

# copy_rate PREFIX: the pool's copy rate from the capture's per-queue summary line, or "-".
copy_rate() { grep -o 'copy rate [0-9.]* %' "$1.err" | awk '{ print $3 }' | tail -1 | grep . || echo -; }

# threads PID: one line per thread of PID: "TID ns-on-CPU voluntary-switches involuntary-switches".
threads() {
    local t
    for t in /proc/"$1"/task/*; do
        echo "${t##*/} $(awk '{ print $1 }' "$t/schedstat" 2>/dev/null) $(awk '/^voluntary_ctxt_switches/ { v = $2 } /^nonvoluntary_ctxt_switches/ { n = $2 } END { print v + 0, n + 0 }' "$t/status" 2>/dev/null)"
    done | sort -n
}

# per_thread BEFORE AFTER PACKETS: each thread (in start order) as ns-per-packet/sleeps/preemptions
# over the window, threads that did not live through it left out.
per_thread() {
    awk -v n="$3" 'NR == FNR { ns[$1] = $2; vol[$1] = $3; inv[$1] = $4; next }
        $1 in ns { printf "%s%.1f/%d/%d", sep, (n > 0) ? ($2 - ns[$1]) / n : 0, $3 - vol[$1], $4 - inv[$1]; sep = " " }' "$1" "$2"
}

# sleeps PID: voluntary context switches of all threads of PID so far.
sleeps() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'; }

PIN_CREF=()
PIN_SENDER=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    PIN_CREF=(taskset -c 0)
    PIN_SENDER=(taskset -c "$(($(nproc) - 1))")
fi

CONSUMERS=(cref plain)
if ((POOL_CHUNKS > 0)); then CONSUMERS+=(pool pool-copy); fi
echo "# packets=$PACKETS size=$SIZE flows=$FLOWS send_pps=$SEND_PPS valgrind_pps=$VG_PPS pool_chunks=$POOL_CHUNKS repeats=$REPEATS ring=32x1MiB,8ms cpus=$(nproc) cref_on=${PIN_CREF[*]:-any} sender_on=${PIN_SENDER[*]:-any} wirecap=its_own_placement"
# 1. CPU ns per packet, native, the consumers interleaved.
for ((r = 1; r <= REPEATS; r++)); do
    for name in "${CONSUMERS[@]}"; do
        p=$WORK/$name.cpu.$r
        consumer_cmd "$name" "$(dirname "$WIRECAP")" 0
        [[ $name == cref ]] && CMD[0]=$CREF
        start "$p" "${CMD[@]}"
        ns_ready=$(task_cpu_ns "$CAP_PID")
        sleeps_ready=$(sleeps "$CAP_PID")
        threads "$CAP_PID" >"$p.threads.ready"
        send "$SEND_PPS"
        sleep "$TAIL_WAIT"
        ns_sig=$(task_cpu_ns "$CAP_PID")
        sleeps_run=$(($(sleeps "$CAP_PID") - sleeps_ready))
        threads "$CAP_PID" >"$p.threads.signal"
        finish "$p" INT
        n=$(captured "$p")
        ns_pkt=$(awk -v a="$ns_ready" -v b="$ns_sig" -v n="$n" 'BEGIN { printf "%.1f", (n > 0) ? (b - a) / n : 0 }')
        echo "$ns_pkt" >>"$WORK/$name.ns"
        [[ $name == pool* ]] && copy_rate "$p" >>"$WORK/$name.copy"
        echo "cpu run $r $name captured=$n dropped=$(dropped "$p") ns_per_pkt_after_ready=$ns_pkt sleeps=$sleeps_run threads_ns/sleeps/preempted=[$(per_thread "$p.threads.ready" "$p.threads.signal" "$n")] copy_rate_pct=$(copy_rate "$p") send: $(grep -m1 '^sent' "$WORK/send.out" || true)"
    done
done
for name in "${CONSUMERS[@]}"; do
    runs=$(paste -sd, "$WORK/$name.ns")
    copies=""
    [[ -f $WORK/$name.copy ]] && copies=" copy_rate_pct_runs=$(paste -sd, "$WORK/$name.copy")"
    echo "cpu       $name median_ns_per_pkt=$(median <"$WORK/$name.ns") runs=$runs$copies"
done
cref_ns=$(median <"$WORK/cref.ns")
plain_ns=$(median <"$WORK/plain.ns")
echo "ratio     plain/cref=$(awk -v a="$plain_ns" -v b="$cref_ns" 'BEGIN { printf "%.2f", a / b }')"
if ((POOL_CHUNKS > 0)); then
    for name in pool pool-copy; do
        echo "ratio     $name/plain=$(awk -v a="$(median <"$WORK/$name.ns")" -v b="$plain_ns" 'BEGIN { printf "%.2f", a / b }')"
    done
fi
for name in "${CONSUMERS[@]}"; do

    # 2. Idle under callgrind: start-up, IDLE_WAIT s, shutdown.
    p=$WORK/$name.idle
    consumer_cmd "$name" "$WORK" 0
    callgrind "$p"
    start "$p" "${VG[@]}" "${CMD[@]}"
    sleep "$IDLE_WAIT"
    finish "$p" INT
    ir_idle=$(total_ir "$p.cg")

    # 3. PACKETS under callgrind; the consumer stops at the count.
    p=$WORK/$name.full
    consumer_cmd "$name" "$WORK" "$PACKETS"
    callgrind "$p"
    start "$p" "${VG[@]}" "${CMD[@]}"
    t0=$(date +%s.%N)
    send "$VG_PPS"
    for ((i = 0; i < 1200; i++)); do kill -0 "$CAP_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$CAP_PID" 2>/dev/null; then
        echo "$name: not done 120 s after the send; SIGINT" >&2
        finish "$p" INT
    else
        finish "$p"
    fi
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    ir_full=$(total_ir "$p.cg")
    n=$(captured "$p")
    echo "callgrind $name captured=$n dropped=$(dropped "$p") Ir_run=$ir_full Ir_idle=$ir_idle" \
        "Ir_per_pkt_gross=$(awk -v a="$ir_full" -v n="$n" 'BEGIN { printf "%.1f", a / n }')" \
        "Ir_per_pkt_net_of_idle=$(awk -v a="$ir_full" -v b="$ir_idle" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')" \
        "run_s=$secs send: $(grep -m1 '^sent' "$WORK/send.out" || true)"
done

# functions PROFILE: "self-Ir<TAB>function [object]" for every function in a callgrind profile.
functions() {
    callgrind_annotate --threshold=100 --auto=no "$1" 2>/dev/null | awk '
        /^-+$/ { dash++; next }
        dash >= 3 && !/PROGRAM TOTALS/ && match($0, /^ *[0-9,]+ +\( *[0-9.]+%\) +/) {
            ir = $1; gsub(",", "", ir); print ir "\t" substr($0, RLENGTH + 1) }'
}

# Where the instructions of the packets go: per function, self Ir of the run minus that of the
# idle run (so start-up, which dominates the totals, cancels), per packet.
for name in "${CONSUMERS[@]}"; do
    n=$(captured "$WORK/$name.full")
    echo
    echo "top $TOP functions, $name: (self Ir of the $PACKETS-packet run - self Ir of the idle run) / $n packets seen"
    functions "$WORK/$name.idle.cg" >"$WORK/$name.idle.fn"
    functions "$WORK/$name.full.cg" >"$WORK/$name.full.fn"
    awk -F '\t' -v n="$n" 'NR == FNR { idle[$2] = $1; next }
        { d = $1 - idle[$2]; if (d > 0) printf "%8.2f Ir/pkt  %s\n", d / n, $2 }' \
        "$WORK/$name.idle.fn" "$WORK/$name.full.fn" \
        | sort -gr | awk -v n="$TOP" 'NR <= n' | sed "s|$WORK/||" | swift demangle --simplified | cut -c1-220
done
