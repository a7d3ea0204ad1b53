#!/usr/bin/env bash
# The issue's full-speed forwarding run, on the release build: 1,000,000 numbered 64-byte frames
# from one sending core through `wirecap-fwd` (2 queues) to a sink, in three throwaway namespaces.
#
# Usage (as root): scripts/forward-million.sh [PACKETS] [QUEUES]   (defaults 1000000 2)
#
# sender ns: vtx --veth--> forwarder ns: fin (IN) ... fout (OUT) --veth--> sink ns: vrx
# IPv6 is off in every namespace before a veth exists and there are no addresses, so the only
# frames are ours. The sink captures with `wirecap capture` (pool, 64 MiB ring); the forwarder
# and the sink are stopped with SIGINT after the send; both print their summaries, and the
# script fails unless the sink captured every frame.
set -euo pipefail

PACKETS=${1:-1000000}
QUEUES=${2:-2}
SCRIPT=forward-million
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_count PACKETS "$PACKETS"
require_count QUEUES "$QUEUES"
require_root_and
build_wirecap
FWD=$ROOT/.build/release/wirecap-fwd
[[ -x $FWD ]] || (cd "$ROOT" && swift build -c release --product wirecap-fwd >&2)
[[ -x $FWD ]] || die "build did not produce $FWD"

NS=wirecap-fwd-$$
WORK=$(mktemp -d /tmp/wirecap-fwd.XXXXXX)
PIDS=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for ns in tx fw rx; do ip netns delete "$NS-$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

for ns in tx fw rx; do
    ip netns add "$NS-$ns"
    ip netns exec "$NS-$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null
done
ip -n "$NS-tx" link add vtx numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth peer name fin netns "$NS-fw" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
ip -n "$NS-fw" link add fout numtxqueues "$QUEUES" numrxqueues "$QUEUES" type veth peer name vrx netns "$NS-rx" numtxqueues "$QUEUES" numrxqueues "$QUEUES"
ip -n "$NS-tx" link set vtx up
ip -n "$NS-fw" link set fin up
ip -n "$NS-fw" link set fout up
ip -n "$NS-rx" link set vrx up

# wait_for FILE TEXT: until the tool says it is ready.
wait_for() {
    for ((i = 0; i < 200; i++)); do
        grep -q "$2" "$1" && return 0
        sleep 0.05
    done
    die "never saw '$2' in $1: $(cat "$1")"
}

ip netns exec "$NS-rx" "$WIRECAP" capture -i vrx --pool-chunks 64 --blocks 64 --block-timeout 2 \
    --stats-json "$WORK/sink.json" 2>"$WORK/sink.err" &
PIDS="$PIDS $!"; SINK=$!
wait_for "$WORK/sink.err" "listening on"
ip netns exec "$NS-fw" "$FWD" -i fin -o fout --queues "$QUEUES" --stats-json "$WORK/fwd.json" 2>"$WORK/fwd.err" &
PIDS="$PIDS $!"; FWDPID=$!
wait_for "$WORK/fwd.err" "forwarding fin -> fout"

ip netns exec "$NS-tx" "$WIRECAP" send -i vtx --packets "$PACKETS" --flows 256 --size 64
sleep 1
kill -INT "$FWDPID"; wait "$FWDPID" || die "wirecap-fwd failed: $(cat "$WORK/fwd.err")"
sleep 0.2
kill -INT "$SINK"; wait "$SINK" || die "the sink's capture failed: $(cat "$WORK/sink.err")"
PIDS=""

echo "--- wirecap-fwd"; cat "$WORK/fwd.err"; cat "$WORK/fwd.json"
echo "--- sink"; cat "$WORK/sink.err"
captured=$(sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$WORK/sink.err")
[[ $captured == "$PACKETS" ]] || die "the sink captured $captured of $PACKETS frames"
echo "$SCRIPT: all $PACKETS frames reached the sink"
