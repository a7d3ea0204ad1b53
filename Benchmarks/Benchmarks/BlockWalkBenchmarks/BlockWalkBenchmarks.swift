import Synchronization
@preconcurrency import Benchmark
@_spi(Harness) import WirecapEngine
import WirecapPcap

// Per-packet cost of the block walk, the capture hot path (goal: at most 5 ns and no allocation
// per packet).
//
// Each benchmark builds a 1 MiB synthetic TPACKET_V3 block holding as many frames of one size as
// fit, then every iteration walks exactly `packetsPerIteration` packets: the full block as many
// times as it divides in, then a second block holding the remainder. The scaling factor equals
// that count, so the time, instruction and allocation figures the tool prints are per packet
// (rounded to whole units; pass `--scale` to see the unrounded figures per iteration, that is per
// million packets).
//
// The walk runs with `reinsertVLAN: true`, as in production, over frames that were not stripped,
// so it takes the status test but never writes into the block and the same block can be walked
// again and again. A 1 MiB block does not stay in a 1 MiB L2 cache across walks, so the figures
// are those of a block read from L3, close to a block the kernel has just filled.
//
// Allocation counts are process-wide: the tool itself makes 16 allocations in every measured
// region, with nothing in it (seen with an empty benchmark), which rounds to 0 per packet. Run
// `swift package benchmark run --allocation-stacks` to list the allocations of the benchmark's
// own thread.

/// Packets walked per iteration: must equal the scaling factor below.
let packetsPerIteration = 1_000_000
let scalingFactor: BenchmarkScalingFactor = .mega

/// A handler as small as a real one can be: it looks at the length and at one byte of each frame
/// (the EtherType's first byte), so the walk cannot be optimised away.
struct SumHandler: PacketHandler {
    var capturedBytes = 0
    var byteSum = 0

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        capturedBytes &+= packet.capturedLength
        byteSum &+= Int(packet.bytes.load(fromByteOffset: 12, as: UInt8.self))
    }
}

/// The blocks one benchmark walks, built once before its iterations: 1 MiB blocks holding
/// `packetsPerIteration` packets between them.
typealias WalkFixture = SyntheticBlockRun

extension SyntheticBlockRun {
    convenience init(frameLength: Int) { self.init(frameLength: frameLength, blockSize: 1 << 20, packets: packetsPerIteration) }
}

/// A reader's break flag, as `LiveReader` keeps it: never set here, read after every packet.
let readerBreaking = Atomic<Bool>(false)

extension WalkFixture {
    /// The live pcap facade's per-chunk path (`FacadeWalk`, what a reader's `dispatch` runs on
    /// each chunk it pulls, the handle's reader of every queue and each queue's reader alike:
    /// `chunkBegins`, then the walk that reads the break flag after each packet), over the same
    /// blocks as the engine's walk.
    @inline(__always)
    func walkLikeDispatch<H: PacketHandler>(handler: inout H) -> Int {
        var walked = 0
        for block in 0..<fullBlocks {
            handler.chunkBegins(owner: 0, sequence: UInt64(block))
            walked &+= FacadeWalk.walk(
                chunk: fullPointer, packets: packetsPerBlock, owner: 0, snapLength: 65_535, first: 0, limit: Int.max, handler: &handler,
                breaking: readerBreaking)
        }
        if let remainderPointer {
            handler.chunkBegins(owner: 0, sequence: UInt64(fullBlocks))
            walked &+= FacadeWalk.walk(
                chunk: remainderPointer, packets: remainderPackets, owner: 0, snapLength: 65_535, first: 0, limit: Int.max,
                handler: &handler, breaking: readerBreaking)
        }
        return walked
    }

    /// The same with the handler as a closure, as `dispatch(count:handler:)` takes it.
    @inline(__always)
    func walkLikeDispatch(into body: (Packet) -> Void) -> Int {
        withoutActuallyEscaping(body) { body in
            var handler = ClosurePacketHandler(body: body)
            return walkLikeDispatch(handler: &handler)
        }
    }
}

/// The same shape as the facade's closure handler.
struct ClosurePacketHandler: PacketHandler {
    let body: (Packet) -> Void
    @inline(__always) mutating func handle(_ packet: Packet) { body(packet) }
}

/// One benchmark over a fixture of `frameLength`-byte frames, built by the setup hook (so a run
/// filtered to another benchmark does not build it); `walk` walks exactly `packetsPerIteration`
/// packets into the handler it is given, and only that is measured.
func walkBenchmark(
    _ name: String, frameLength: Int, configuration: Benchmark.Configuration,
    walk: @escaping @Sendable (WalkFixture, inout SumHandler) -> Int
) {
    let slot = FixtureSlot()
    Benchmark(name, configuration: configuration) { benchmark in
        let fixture = slot.fixture!
        var handler = SumHandler()
        benchmark.startMeasurement()
        let walked = walk(fixture, &handler)
        benchmark.stopMeasurement()
        precondition(walked == packetsPerIteration)
        blackHole(handler.capturedBytes &+ handler.byteSum)
    } setup: {
        let built = WalkFixture(frameLength: frameLength)
        slot.fixture = built
        print("\(name): \(built.summary)")
    } teardown: {
        slot.fixture = nil
    }
}

final class FixtureSlot: @unchecked Sendable {
    var fixture: WalkFixture?
}

let benchmarks: @Sendable () -> Void = {
    // No .cpuTotal: CPU time is read with 10 ms resolution on Linux, coarser than an iteration
    // (a few ms), so it shows 0 or 10 ns per packet. .instructions needs hardware performance
    // counters (perf_event_open) and is left out of the table on machines without them.
    let metrics: [BenchmarkMetric] = [
        .wallClock,
        .throughput,
        .instructions,
        .mallocCountTotal,
    ]

    let configuration = Benchmark.Configuration(
        metrics: metrics, timeUnits: .nanoseconds, warmupIterations: 10, scalingFactor: scalingFactor,
        maxDuration: .seconds(5), maxIterations: 1_000)
    for frameLength in [64, 1514] {
        walkBenchmark("BlockWalk \(frameLength)B packets", frameLength: frameLength, configuration: configuration) { fixture, handler in
            fixture.walk(into: &handler)
        }
    }

    // The facade's overhead over the engine's handler path: the same blocks through the walk a
    // live `PcapHandle.dispatch` runs on each chunk, with a `PacketHandler` value (as
    // `dispatch(count:handler: &h)`) and with a closure (as `dispatch { packet in ... }`).
    walkBenchmark("Facade dispatch 64B packets, handler value", frameLength: 64, configuration: configuration) { fixture, handler in
        fixture.walkLikeDispatch(handler: &handler)
    }
    walkBenchmark("Facade dispatch 64B packets, closure", frameLength: 64, configuration: configuration) { fixture, handler in
        fixture.walkLikeDispatch { packet in handler.handle(packet) }
    }
}
