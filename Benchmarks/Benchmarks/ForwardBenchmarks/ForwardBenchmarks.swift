@preconcurrency import Benchmark
#if canImport(Glibc)
import Glibc
#endif
@_spi(Harness) import WirecapEngine
@_spi(Harness) import WirecapForward

// Per-packet cost of the forwarder's walk (`ForwardingWalk`, through `ForwardHarness`): the
// verdict, the MTU check, the one copy into a TX ring slot, and the kick once per chunk (plus,
// for 64-byte frames, one more mid-chunk: see below), on a real `TxRing`.
//
// The ring needs an interface. At start the process moves into a network namespace of its own
// (`unshare(CLONE_NEWNET)`, root only: otherwise one line says so and nothing is registered) and
// makes `wcbench0` there: a dummy device, or ifb on kernels built without the dummy driver (ifb
// frees a frame that tc did not redirect to it at once, as dummy does). Both are Ethernet
// (ARPHRD_ETHER) and running once up, so the ring opens as on a NIC. The namespace goes with the
// process. So the figures are the forwarder's own cost plus the kernel's cheapest send: the
// kick makes the kernel build one socket buffer per frame (a copy: frames up to 64 KiB go by
// copy, `TxRing.defaultCopyLimit`) and hand it to the device, which frees it.
//
// As in BlockWalkBenchmarks every iteration walks exactly `packetsPerIteration` packets: 1 MiB
// synthetic blocks (the engine's default block, so a chunk's size) full of frames of one size,
// then a block with the remainder; the scaling factor equals that count, so time, instruction
// and allocation figures are per packet (`--scale`: per iteration, that is per million).
// The TX ring is the forwarder's default (4096 frames of 2 KiB for a 1500-byte MTU). A 1 MiB
// chunk holds 6553 64-byte frames, more than the ring: the walk waits for room once per chunk
// (`txRingFullWaits`), which here is one more kick, as it would be on a fast NIC. 655 frames of
// 1514 bytes fit, so they never wait.
//
// Handlers: `ForwardAll`, and `RewriteAndTag`, which writes the destination MAC (in the chunk,
// before the copy) and pushes a VLAN tag (inserted during the copy). Paths: in order (one pass,
// `BlockWalk` calling the walk, as for a chunk whose turn it is), deferred (`decideOnly` then
// `transmitNoted`, as for a chunk that waited for its turn under offloading), and the deciding
// pass alone (no copy, no kernel: the user-space verdict and checks only). `TxRing put + kick`
// is the ring with no walk at all (a handler that only puts), the floor the walk adds to.
//
// Allocation counts are process-wide: the tool makes 16 in every measured region by itself (an
// empty benchmark shows them), which rounds to 0 per packet; `--scale` shows the count per
// iteration, to compare with those 16 (a per-chunk allocation would add 153 or 1528, one per
// packet a million). Retain and release counts are not measured here (see `metrics`).

/// Packets forwarded per iteration: must equal the scaling factor below.
let packetsPerIteration = 1_000_000
let scalingFactor: BenchmarkScalingFactor = .mega
let blockBytes = 1 << 20
let interfaceName = "wcbench0"

/// Rewrites the destination MAC in place and pushes VLAN 100: the modifying verdict of the
/// forwarder's tests, as an inline middlebox would run it.
struct RewriteAndTag: VerdictHandler {
    @inline(__always)
    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        let base = frame.bytes.baseAddress!
        base.storeBytes(of: UInt32(0x0200_0000).bigEndian, as: UInt32.self)
        base.storeBytes(of: UInt16(0x0099).bigEndian, toByteOffset: 4, as: UInt16.self)
        frame.pushVLAN(100)
        return .forward
    }
}

/// Only puts each frame into the ring (waiting for room as the walk does), one kick per block:
/// the TX ring's own cost, without the verdict, the checks and the counts.
struct RingOnly: PacketHandler {
    let ring: TxRing
    var put = 0

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        if !ring.hasRoom { try! ring.serviceUntil { ring.hasRoom } }
        ring.put(packet.bytes)
        put &+= 1
    }

    mutating func blockDone(queue: Int) {
        try! ring.kick()
        ring.reclaim()
    }
}

enum Path {
    case inOrder, deferred, decideOnly

    var label: String {
        switch self {
        case .inOrder: return "in order"
        case .deferred: return "deferred"
        case .decideOnly: return "deciding pass only"
        }
    }
}

extension SyntheticBlockRun {
    /// Every block of the run through `body`; returns the sum of what it returned.
    @inline(__always)
    func eachBlock(_ body: (UnsafeMutableRawPointer) -> Int) -> Int {
        var total = 0
        for _ in 0..<fullBlocks { total &+= body(fullPointer) }
        if let remainderPointer { total &+= body(remainderPointer) }
        return total
    }
}

final class ForwardSlot<H: VerdictHandler>: @unchecked Sendable {
    var harness: ForwardHarness<H>?
    var blocks: SyntheticBlockRun?
}

/// One benchmark: `path` over `frameLength`-byte frames with `handler`; the harness and blocks
/// are built in setup, so a filtered run builds only its own. Note: with two handlers in this
/// binary, LLVM merges the two specialisations of the walk into one function that reaches the
/// per-packet part through a function pointer (a `...Tm` symbol); see docs/experiments.md.
func forwardBenchmark<H: VerdictHandler>(
    _ handlerName: String, _ handler: H, frameLength: Int, path: Path, network: PrivateNetwork, configuration: Benchmark.Configuration
) {
    let name = "Forward \(frameLength)B, \(handlerName), \(path.label)"
    let slot = ForwardSlot<H>()
    Benchmark(name, configuration: configuration) { benchmark in
        let harness = slot.harness!
        let blocks = slot.blocks!
        let before = harness.counts
        let walked: Int
        switch path {
        case .inOrder:
            benchmark.startMeasurement()
            walked = blocks.eachBlock { harness.forward(block: $0) }
            benchmark.stopMeasurement()
        case .deferred:
            benchmark.startMeasurement()
            walked = blocks.eachBlock { harness.forwardDeferred(block: $0) }
            benchmark.stopMeasurement()
        case .decideOnly:
            benchmark.startMeasurement()
            walked = blocks.eachBlock { harness.decideOnly(block: $0) }
            benchmark.stopMeasurement()
        }
        let after = harness.counts
        precondition(walked == packetsPerIteration, "\(name): walked \(walked)")
        precondition(after.txErrors == before.txErrors && after.tooBig == before.tooBig, "\(name): \(after)")
        if path != .decideOnly { precondition(after.put - before.put == UInt64(packetsPerIteration), "\(name): \(after)") }
    } setup: {
        slot.blocks = SyntheticBlockRun(frameLength: frameLength, blockSize: blockBytes, packets: packetsPerIteration)
        slot.harness = try ForwardHarness(interface: interfaceName, handler: handler, in: network)
        print("\(name): \(slot.blocks!.summary)")
    } teardown: {
        if let harness = slot.harness {
            harness.finish()
            print("\(name): \(harness.counts)")
        }
        slot.harness = nil
        slot.blocks = nil
    }
}

final class RingSlot: @unchecked Sendable {
    var ring: TxRing?
    var blocks: SyntheticBlockRun?
}

func ringOnlyBenchmark(frameLength: Int, network: PrivateNetwork, configuration: Benchmark.Configuration) {
    let name = "TxRing put + kick, no walk, \(frameLength)B"
    let slot = RingSlot()
    Benchmark(name, configuration: configuration) { benchmark in
        var handler = RingOnly(ring: slot.ring!)
        let blocks = slot.blocks!
        benchmark.startMeasurement()
        let walked = blocks.walk(into: &handler)
        benchmark.stopMeasurement()
        precondition(walked == packetsPerIteration && handler.put == packetsPerIteration)
    } setup: {
        slot.blocks = SyntheticBlockRun(frameLength: frameLength, blockSize: blockBytes, packets: packetsPerIteration)
        slot.ring = try network.run { () throws(CaptureError) in try TxRing(interface: interfaceName) }
        print("\(name): \(slot.blocks!.summary)")
    } teardown: {
        if let ring = slot.ring {
            try ring.finish()
            print("\(name): sent \(ring.sent), refused \(ring.refused), busy kicks \(ring.busyKicks)")
        }
        slot.ring = nil
        slot.blocks = nil
    }
}

/// Runs a program (found on PATH) to its end, spawned from the calling thread, so in that
/// thread's network namespace; whether it exited 0. Its error output goes to ours. (posix_spawn
/// and waitpid rather than Foundation's `Process`, whose wait never saw the child end when
/// called here, inside the benchmark runner's registration.)
func run(_ arguments: [String]) -> Bool {
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, arguments[0], nil, nil, &argv, environ) == 0 else { return false }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // Exited (the low 7 bits 0) with status 0.
    return status & 0x7f == 0 && (status >> 8) & 0xff == 0
}

/// The process's own namespace with `wcbench0` up in it, or nil (and one line) when it cannot be
/// made.
func makeBenchmarkNetwork() -> PrivateNetwork? {
    let network: PrivateNetwork
    do {
        network = try PrivateNetwork()
    } catch {
        print("ForwardBenchmarks: the forwarding benchmarks need root (a network namespace of their own: \(error)); skipped")
        return nil
    }
    for kind in ["dummy", "ifb"] {
        guard run(["ip", "link", "add", interfaceName, "type", kind]) else { continue }
        guard run(["ip", "link", "set", interfaceName, "up"]) else {
            print("ForwardBenchmarks: cannot bring \(interfaceName) up; skipped")
            return nil
        }
        print("ForwardBenchmarks: TX rings on \(interfaceName) (\(kind)), in the process's own network namespace")
        return network
    }
    print("ForwardBenchmarks: cannot make \(interfaceName) as a dummy or an ifb device with ip link; skipped")
    return nil
}

let benchmarks: @Sendable () -> Void = {
    guard let network = makeBenchmarkNetwork() else { return }

    // As in BlockWalkBenchmarks: no .cpuTotal (10 ms resolution on Linux); .instructions only
    // where hardware performance counters are available. No .retainCount/.releaseCount: on Linux
    // with Swift 6.3 the tool counts them through the runtime's hook pointers unless its
    // RuntimeInterposer trait is on (whose package is not available here), and that way crashes
    // in the tool's own code (__swift_retain_ from _swift_retain_hook, in its progress bar).
    // Retains are checked with callgrind instead (docs/experiments.md).
    let metrics: [BenchmarkMetric] = [
        .wallClock,
        .throughput,
        .instructions,
        .mallocCountTotal,
    ]
    // An iteration takes a few hundred ms (the kernel's send of a million frames), so fewer
    // warm-up iterations than the walk benchmarks.
    let configuration = Benchmark.Configuration(
        metrics: metrics, timeUnits: .nanoseconds, warmupIterations: 2, scalingFactor: scalingFactor,
        maxDuration: .seconds(5), maxIterations: 1_000)

    for frameLength in [64, 1514] {
        for path in [Path.inOrder, .deferred] {
            forwardBenchmark("ForwardAll", ForwardAll(), frameLength: frameLength, path: path, network: network, configuration: configuration)
            forwardBenchmark(
                "rewrite MAC + push VLAN", RewriteAndTag(), frameLength: frameLength, path: path, network: network,
                configuration: configuration)
        }
        forwardBenchmark(
            "rewrite MAC + push VLAN", RewriteAndTag(), frameLength: frameLength, path: .decideOnly, network: network,
            configuration: configuration)
        ringOnlyBenchmark(frameLength: frameLength, network: network, configuration: configuration)
    }
}
