#!/usr/bin/env bash
# Soak: a long `wirecap capture --reconnect` with the pool and buddy offloading (2 queues) under
# varying traffic and link flaps, watched for broken counts, growing memory and leaked descriptors.
#
# Usage: scripts/soak.sh [--minutes N] [--flap-seconds S] [--interval S] [--rss-slack-kib K] [--out DIR]
#   --minutes N        how long the capture runs (default 10)
#   --flap-seconds S   seconds between link flaps (default 60); they alternate between
#                      `ip link set vrx down` / `up` and deleting the veth pair and making it again
#   --interval S       --stats-interval of the capture, and how often the script samples (default 5)
#   --rss-slack-kib K  how far VmRSS may rise above its highest value in the warm-up (the first
#                      flap interval and a half) (default 8192)
#   --out DIR          keep the capture's stderr, stats lines and samples there (default: a
#                      temporary directory, removed)
#
# In a private sandbox (two throwaway namespaces joined by a veth pair, IPv6 off, no addresses:
# only our frames; removed at the end) the capture runs on vrx as
#   wirecap capture -i vrx --queues 2 --pool-chunks 64 --offload-threshold 0.25 --work-ns 1500
#                   --reconnect --stats-json FILE --stats-interval S --duration MINUTES*60
# while a traffic loop in the other namespace sends, with `wirecap send` from 198.18.0.0/15, in
# turn: a burst at full speed (200,000 frames, 256 flows), a steady 20,000 frames/s, an elephant
# (300,000 frames of one flow at full speed: one queue under hash fanout, whose backlog
# offloading moves to the buddy), and an idle gap. At every interval the script checks, on each
# stats line the capture wrote since the last look, that every queue and the total obey received == processed + delivery_drops + in_flight and that the
# capture says conserved; samples VmRSS (/proc/PID/status) and the open descriptors
# (/proc/PID/fd). After the warm-up, RSS must stay within the slack of the warm-up's highest
# value, and the descriptors at or below the warm-up's highest count. At the end the capture must
# exit 0 and count one reconnect per flap.
#
# Any violation: one line saying which, and a non-zero exit. Otherwise a summary line of samples,
# RSS min/max, descriptors min/max, conservation checks, reconnects, gap, drops and captured.
set -euo pipefail

MINUTES=10
FLAP_SECONDS=60
INTERVAL=5
RSS_SLACK_KIB=8192
OUT=""
SCRIPT=soak.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

while (($#)); do
    case $1 in
        --minutes) MINUTES=${2:-}; shift 2 ;;
        --flap-seconds) FLAP_SECONDS=${2:-}; shift 2 ;;
        --interval) INTERVAL=${2:-}; shift 2 ;;
        --rss-slack-kib) RSS_SLACK_KIB=${2:-}; shift 2 ;;
        --out) OUT=${2:-}; shift 2 ;;
        *) die "unknown argument $1 (see the usage at the top of scripts/soak.sh)" ;;
    esac
done
require_count --minutes "$MINUTES"
require_count --flap-seconds "$FLAP_SECONDS"
require_count --interval "$INTERVAL"
require_count --rss-slack-kib "$RSS_SLACK_KIB"
require_root_and jq
build_wirecap

NS_TX=wirecap-soak-$$-tx
NS_RX=wirecap-soak-$$-rx
if [[ -n $OUT ]]; then
    mkdir -p "$OUT"
    WORK=$OUT
else
    WORK=$(mktemp -d /tmp/wirecap-soak.XXXXXX)
fi
CAP_PID=""
TRAFFIC_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in $TRAFFIC_PID $CAP_PID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $TRAFFIC_PID $CAP_PID; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    [[ -n $OUT ]] || rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# violation TEXT: the one line, and out (cleanup stops the capture and the traffic).
violation() { die "violation: $*"; }

make_sandbox "$NS_TX" "$NS_RX"

SECONDS_TOTAL=$((MINUTES * 60))
STATS=$WORK/stats.jsonl
ERR=$WORK/capture.err
SAMPLES=$WORK/samples.tsv
: >"$SAMPLES"
# `ip netns exec` execs the command, so $! is the capture itself.
ip netns exec "$NS_RX" "$WIRECAP" capture -i vrx --queues 2 --pool-chunks 64 --offload-threshold 0.25 --work-ns 1500 \
    --reconnect --stats-json "$STATS" --stats-interval "$INTERVAL" --duration "$SECONDS_TOTAL" 2>"$ERR" &
CAP_PID=$!
for ((i = 0; i < 200; i++)); do
    grep -q 'listening on' "$ERR" && break
    kill -0 "$CAP_PID" 2>/dev/null || die "the capture exited before it was ready: $(tail -n 1 "$ERR")"
    sleep 0.1
done
grep -q 'listening on' "$ERR" || die "the capture was not ready after 20 s: $(tail -n 1 "$ERR")"

# The traffic loop: a send fails while the link is down or the pair is being made again; that
# is expected, and the loop goes on.
traffic() {
    local send=(ip netns exec "$NS_TX" "$WIRECAP" send -i vtx)
    while :; do
        "${send[@]}" --packets 200000 --flows 256 >/dev/null 2>&1 || sleep 1
        "${send[@]}" --packets 100000 --flows 64 --pps 20000 >/dev/null 2>&1 || sleep 1
        "${send[@]}" --packets 300000 --flows 1 >/dev/null 2>&1 || sleep 1
        sleep 3
    done
}
traffic &
TRAFFIC_PID=$!

START=$(date +%s)
WARMUP=$((FLAP_SECONDS * 3 / 2))
next_flap=$FLAP_SECONDS
flaps=0
checks=0
rss_warm_max=0
fds_warm_max=0
last_line=0
while kill -0 "$CAP_PID" 2>/dev/null; do
    sleep "$INTERVAL"
    now=$(($(date +%s) - START))
    kill -0 "$CAP_PID" 2>/dev/null || break
    # Link flaps, alternating: down and up, then the pair deleted and made again (new ifindexes).
    if ((now >= next_flap && now < SECONDS_TOTAL - 2 * INTERVAL)); then
        if ((flaps % 2 == 0)); then
            ip -n "$NS_RX" link set vrx down
            sleep 2
            ip -n "$NS_RX" link set vrx up
        else
            ip -n "$NS_RX" link delete vrx
            sleep 2
            make_veth "$NS_TX" "$NS_RX"
        fi
        flaps=$((flaps + 1))
        next_flap=$((next_flap + FLAP_SECONDS))
    fi
    # The process's figures (it may have just exited at --duration: then the loop ends).
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CAP_PID/status" 2>/dev/null) || break
    fds=$(find "/proc/$CAP_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [[ -n $rss ]] || break
    # Every stats line written since the last look.
    lines=$(wc -l <"$STATS" 2>/dev/null || echo 0)
    if ((lines > last_line)); then
        while IFS= read -r line; do
            broken=$(jq -r '[.queues[] | select(.received != .processed + .delivery_drops + .in_flight) | .queue] + (if .total.received != .total.processed + .total.delivery_drops + .total.in_flight then ["total"] else [] end) + (if .conserved then [] else ["conserved=false"] end) | join(",")' <<<"$line")
            [[ -z $broken ]] || violation "conservation broken at $now s (queues: $broken): $line"
            checks=$((checks + 1))
        done < <(sed -n "$((last_line + 1)),${lines}p" "$STATS")
        last_line=$lines
    fi
    reconnects=$(tail -n 1 "$STATS" 2>/dev/null | jq -r '.reconnects // 0')
    printf '%d\t%d\t%d\t%d\n' "$now" "$rss" "$fds" "$reconnects" >>"$SAMPLES"
    if ((now < WARMUP)); then
        ((rss > rss_warm_max)) && rss_warm_max=$rss
        ((fds > fds_warm_max)) && fds_warm_max=$fds
    else
        ((rss <= rss_warm_max + RSS_SLACK_KIB)) ||
            violation "VmRSS grew to $rss KiB at $now s, above the warm-up's $rss_warm_max KiB + $RSS_SLACK_KIB KiB"
        ((fds <= fds_warm_max)) || violation "open descriptors grew to $fds at $now s, above the warm-up's $fds_warm_max"
    fi
done
status=0
wait "$CAP_PID" || status=$?
CAP_PID=""
((status == 0)) || violation "the capture exited with status $status: $(grep 'wirecap:' "$ERR" | tail -n 1)"
final=$(tail -n 1 "$STATS")
broken=$(jq -r 'if .conserved and .total.received == .total.processed + .total.delivery_drops + .total.in_flight then "" else "broken" end' <<<"$final")
[[ -z $broken ]] || violation "conservation broken in the final statistics: $final"
checks=$((checks + 1))
reconnects=$(jq -r '.reconnects' <<<"$final")
((reconnects == flaps)) || violation "$flaps link flaps but $reconnects reconnects"
((checks > 0)) || violation "no statistics line was written"
samples=$(wc -l <"$SAMPLES")
read -r rss_min rss_max fds_min fds_max < <(awk '{ if (NR == 1 || $2 < a) a = $2; if ($2 > b) b = $2; if (NR == 1 || $3 < c) c = $3; if ($3 > d) d = $3 } END { print a, b, c, d }' "$SAMPLES")
jq -r --arg s "$samples" --arg c "$checks" --arg f "$flaps" --arg r "$rss_min-$rss_max" --arg w "$rss_warm_max" --arg d "$fds_min-$fds_max" \
    '"soak.sh: passed: \(.seconds | floor) s, \($s) samples, VmRSS \($r) KiB (warm-up max \($w)), fds \($d), \($c) conservation checks, \($f) flaps, \(.reconnects) reconnects, \(.gap_seconds * 1000 | round / 1000) s without capture, received \(.total.received), captured \(.total.captured), capture drops \(.total.capture_drops), delivery drops \(.total.delivery_drops), in flight \(.total.in_flight), offloaded \([.queues[].offloaded_out] | add) chunks"' <<<"$final"
