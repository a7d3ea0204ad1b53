#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS (default 60) bounds each target's run (-max_total_time). TARGETs default to all six:
# FuzzSavefile, FuzzTraceLoader, FuzzOfflineHandle, FuzzBlockWalk, FuzzFilter, FuzzArguments.
# Each is built with libFuzzer and AddressSanitizer into Fuzz/.build-fuzz, seeded from
# ../shared/traces (the pcap and pcapng files; FuzzSavefile, FuzzTraceLoader and
# FuzzOfflineHandle) or Fuzz/Corpus/TARGET, and grows its corpus in
# Fuzz/.build-fuzz/corpus/TARGET (kept between runs). JOBS=N in the environment runs N
# processes of each target at once, on the same corpus (for a slow target: FuzzArguments).
# Prints each target's executions and exec/s (all processes together), and for a crash the
# input libFuzzer saved (Fuzz/.build-fuzz/artifacts/TARGET/) and its log. Exits non-zero if any
# target found something.
#
# Reproduce a finding: Fuzz/.build-fuzz/release/TARGET Fuzz/.build-fuzz/artifacts/TARGET/crash-...
set -euo pipefail
SCRIPT=fuzz.sh
die() { echo "$SCRIPT: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ=$ROOT/Fuzz
SECONDS_EACH=${1:-60}
JOBS=${JOBS:-1}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer"
[[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(FuzzSavefile FuzzTraceLoader FuzzOfflineHandle FuzzBlockWalk FuzzFilter FuzzArguments)
TRACES=${WIRECAP_TRACES:-$ROOT/../shared/traces}
[[ -d $TRACES ]] || TRACES=/work/shared/traces

# SANITIZE=fuzzer builds without AddressSanitizer (in a build folder of its own): for a target
# whose cost is mostly ASan's allocator (FuzzArguments: ArgumentParser reflects over the command
# on every parse). Swift's own checks (bounds, overflow, exclusivity) still trap.
SANITIZE=${SANITIZE:-fuzzer,address}
case $SANITIZE in
    fuzzer,address) SCRATCH=$FUZZ/.build-fuzz ;;
    fuzzer) SCRATCH=$FUZZ/.build-fuzz-noasan ;;
    *) die "SANITIZE must be fuzzer,address (the default) or fuzzer" ;;
esac
CORPORA=$FUZZ/.build-fuzz
cd "$FUZZ"
# -enable-testing: FuzzArguments reaches ForwardCommand's options with @testable import.
swift build -c release -Xswiftc -sanitize="$SANITIZE" -Xswiftc -parse-as-library \
    -Xswiftc -enable-testing --scratch-path "$SCRATCH" 2>&1 | grep -Ev "^\[|__asan_extra_spill_area" || true
BIN=$SCRATCH/release

# A trap goes straight to libFuzzer (and ASan), not through the Swift runtime's backtracer.
export SWIFT_BACKTRACE=enable=no

found=0
for target in "${TARGETS[@]}"; do
    [[ -x $BIN/$target ]] || die "no such target: $target (build failed?)"
    corpus=$CORPORA/corpus/$target
    artifacts=$CORPORA/artifacts/$target
    log=$CORPORA/logs/$target.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    seeds=()
    extra=()
    case $target in
        FuzzSavefile|FuzzTraceLoader|FuzzOfflineHandle)
            [[ -d $TRACES ]] || die "no seed traces at $TRACES"
            seeds=("$TRACES"); maxlen=65536 ;;
        FuzzBlockWalk)
            seeds=("$FUZZ/Corpus/FuzzBlockWalk"); maxlen=16388 ;;
        FuzzFilter)
            seeds=("$FUZZ/Corpus/FuzzFilter"); maxlen=512
            # libpcap is not instrumented, so the words of its language come from a dictionary.
            extra=(-dict="$FUZZ/filter.dict") ;;
        FuzzArguments)
            # ArgumentParser matches options with Swift string comparisons, which libFuzzer
            # cannot see: the option names come from a dictionary. The refusals the command
            # prints go to /dev/null.
            seeds=("$FUZZ/Corpus/FuzzArguments"); maxlen=512
            extra=(-dict="$FUZZ/arguments.dict" -close_fd_mask=2) ;;
    esac
    # The first directory is the one libFuzzer adds new inputs to; the seeds are read only.
    # With JOBS > 1, that many independent processes share the corpus directory (each reads it
    # at its start only), each with its own log: TARGET.log, TARGET.1.log, ...
    logs=()
    pids=()
    for ((job = 0; job < JOBS; job++)); do
        if [[ $job -eq 0 ]]; then logs+=("$log"); else logs+=("${log%.log}.$job.log"); fi
        "$BIN/$target" "$corpus" "${seeds[@]}" -max_total_time="$SECONDS_EACH" -max_len="$maxlen" \
            -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" "${extra[@]}" >"${logs[job]}" 2>&1 &
        pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    runs=$(awk '/stat::number_of_executed_units/ {n += $2} END {print n}' "${logs[@]}")
    rate=$(awk '/stat::average_exec_per_sec/ {n += $2} END {print n}' "${logs[@]}")
    cov=$(grep -Eo "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+" "$log" | tail -1 || true)
    printf '%-16s %12s executions %8s exec/s  %s  exit %d\n' "$target" "${runs:-?}" "${rate:-?}" "$cov" "$status"
    for job_log in "${logs[@]}"; do
        if [[ $status -ne 0 ]] || grep -q "^==.*ERROR\|Fatal error\|deadly signal" "$job_log"; then
            found=1
            echo "  FINDING in $target (log $job_log):"
            { grep -E "ERROR|Fatal error|deadly signal|Test unit written|#[0-9]+ 0x" "$job_log" || true; } | head -20 | sed "s/^/    /"
        fi
    done
done
exit $found
