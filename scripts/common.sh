# Shared by the comparison scripts (cpu-vs-tcpdump.sh, cpu-vs-c-reference.sh,
# replay-vs-tcpreplay.sh): errors, checks, the release build, the private veth sandbox and its
# removal on exit. Source it after setting SCRIPT (the name
# errors start with); it sets ROOT and WIRECAP.

die() { echo "$SCRIPT: $*" >&2; exit 1; }

# require_count NAME VALUE: a positive integer, or a one-line error.
require_count() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer"; }

# require_root_and TOOL...: root, iproute2, GNU time and each TOOL (its Debian package named in
# the error).
require_root_and() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (needs network namespaces and AF_PACKET)"
    local tool
    for tool in "$@"; do command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y $tool)"; done
    command -v ip >/dev/null || die "ip (iproute2) not found"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install -y time)"
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WIRECAP=$ROOT/.build/release/wirecap

# task_cpu_ns PID -> nanoseconds on CPU of all threads of PID, from /proc/PID/task/*/schedstat
# (first field: sum_exec_runtime). Unlike utime/stime it is not rounded to clock ticks.
task_cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}

# median of the numbers on stdin ("NA" entries ignored)
median() {
    grep -v '^NA$' | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) { print "NA"; exit }
              if (NR % 2) print v[(NR + 1) / 2]
              else printf "%.10g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# build_wirecap: the release build, once.
build_wirecap() {
    if [[ ! -x $WIRECAP ]]; then
        echo "$SCRIPT: building $WIRECAP" >&2
        (cd "$ROOT" && swift build -c release >&2)
        [[ -x $WIRECAP ]] || die "build did not produce $WIRECAP"
    fi
}

# make_sandbox NS_TX NS_RX: two namespaces with IPv6 off before the veth exists and no IP
# addresses (so the only traffic on the link is ours), joined by vtx (in NS_TX) and vrx (in
# NS_RX), both up. The caller's trap removes the namespaces.
make_sandbox() {
    ip netns add "$1"
    ip netns add "$2"
    local ns
    for ns in "$1" "$2"; do
        ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
            net.ipv6.conf.default.disable_ipv6=1 >/dev/null
    done
    make_veth "$1" "$2"
}

# make_veth NS_TX NS_RX: the veth pair vtx/vrx of make_sandbox, both up; returns once vtx is UP
# (has a carrier). Also to make the pair again after it was deleted.
make_veth() {
    local i
    ip -n "$1" link add vtx type veth peer name vrx netns "$2"
    ip -n "$1" link set vtx up
    ip -n "$2" link set vrx up
    for ((i = 0; i < 100; i++)); do
        ip -n "$1" link show vtx | grep -q 'state UP' && return 0
        sleep 0.05
    done
}

# trap_sandbox_cleanup: on exit (an error, ^C or SIGTERM too) run the script's `stop_children`
# if it defines one, delete $NS_TX and $NS_RX and $WORK, and keep the exit status.
sandbox_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if declare -F stop_children >/dev/null; then stop_children; fi
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap_sandbox_cleanup() {
    trap sandbox_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# open_sandbox TAG: the namespaces wirecap-TAG-PID-tx and -rx (make_sandbox), a work directory in
# WORK, and their removal on exit (trap_sandbox_cleanup), which also kills the one child whose
# PID the script keeps in CAP_PID.
open_sandbox() {
    NS_TX=wirecap-$1-$$-tx
    NS_RX=wirecap-$1-$$-rx
    WORK=$(mktemp -d "/tmp/wirecap-$1.XXXXXX")
    CAP_PID=""
    stop_children() {
        [[ -n $CAP_PID ]] && { kill -KILL "$CAP_PID" 2>/dev/null || true; wait "$CAP_PID" 2>/dev/null || true; }
        return 0
    }
    trap_sandbox_cleanup
    make_sandbox "$NS_TX" "$NS_RX"
}
