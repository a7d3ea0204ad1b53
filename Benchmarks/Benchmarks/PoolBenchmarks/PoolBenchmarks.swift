@preconcurrency import Benchmark
@_spi(Harness) import WirecapEngine

// Cost of the WireCAP pool path (the engine's ChunkExchange: pool, capture queue, lease, through
// its PoolHarness) and what it adds per
// packet over the plain ring path.
//
// Every benchmark runs exactly `unitsPerIteration` units per iteration and uses that count as its
// scaling factor, so the time, instruction and allocation figures the tool prints are per unit
// (rounded to whole units; pass `--scale` to see the unrounded figures per iteration, that is per
// million units: divide by 10^6 for the exact figure per unit). The unit is:
//   - "ChunkPool take+recycle": one take and one recycle of a chunk (two chunk operations);
//   - "Capture queue push+pop+processed": one filled chunk pushed, popped and marked processed;
//   - the block benchmarks: one packet. Each iteration handles the 1 MiB block as many times as
//     it divides into a million packets, then a second block holding the remainder, as in
//     BlockWalkBenchmarks.
//
// The pools run single-threaded, with memory not locked (`lock: .off`) and on no particular NUMA
// node; the lock is never contended, so the figures are the uncontended cost of the mutex round
// trips. The free list is a stack, so the copy-out benchmarks get back the chunk they just
// recycled: its memory is as warm in cache as a busy pool's most recently recycled chunk.
//
// The walks run with `reinsertVLAN: true` over frames that were not VLAN-stripped, so they never
// write into the block or the chunk and the same block can be copied and walked again and again.
//
// Allocation counts are process-wide: the tool itself makes 16 allocations in every measured
// region, with nothing in it, which rounds to 0 per unit.

/// Units per iteration: must equal the scaling factor below.
let unitsPerIteration = 1_000_000
let scalingFactor: BenchmarkScalingFactor = .mega

let blockBytes = 1 << 20
/// Chunks per pool: a few, as a capture needs only one at a time here.
let poolChunks = 8

/// The same minimal handler as BlockWalkBenchmarks: the length and one byte of each frame.
struct SumHandler: PacketHandler {
    var capturedBytes = 0
    var byteSum = 0

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        capturedBytes &+= packet.capturedLength
        byteSum &+= Int(packet.bytes.load(fromByteOffset: 12, as: UInt8.self))
    }
}

func makePool() -> PoolHarness {
    try! PoolHarness(chunks: poolChunks, chunkSize: blockBytes)
}

/// A 1 MiB block full of frames of one length, and a second one with the remainder that makes a
/// million packets in all.
typealias BlockFixture = SyntheticBlockRun

extension SyntheticBlockRun {
    convenience init(frameLength: Int) { self.init(frameLength: frameLength, blockSize: blockBytes, packets: unitsPerIteration) }


    /// What the pool path adds on the capture thread: copies each block into a chunk and queues
    /// it (`CopyingConsumer.consume`), then pops the chunk, marks it processed and recycles it
    /// so that the pool never runs dry. Returns the packets captured.
    @inline(__always)
    func copyOut(harness: PoolHarness) -> Int {
        var captured = 0
        var sequence: UInt64 = 0
        for _ in 0..<fullBlocks {
            captured &+= harness.copyOut(block: fullPointer, sequence: sequence)
            sequence &+= 1
        }
        if let remainderPointer {
            captured &+= harness.copyOut(block: remainderPointer, sequence: sequence)
        }
        return captured
    }

    /// The hybrid pool's zero-copy path (here on one thread): each block retired again, lent in
    /// place, leased, walked where it lies, the lease ended (block back, reserved chunk back).
    /// `ring` holds the full block at index 0 and the remainder at index 1.
    @inline(__always)
    func lendPath(harness: PoolHarness, into handler: inout SumHandler) -> Int {
        var walked = 0
        var sequence: UInt64 = 0
        for _ in 0..<fullBlocks {
            walked &+= harness.lendPath(ringBlock: 0, sequence: sequence, into: &handler)
            sequence &+= 1
        }
        if remainderPointer != nil {
            walked &+= harness.lendPath(ringBlock: 1, sequence: sequence, into: &handler)
        }
        return walked
    }

    /// The full block and the remainder side by side, as two blocks of a ring (for `lendPath`).
    func ring() -> UnsafeMutableRawPointer {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 2 * blockBytes, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * blockBytes)
        memory.copyMemory(from: fullPointer, byteCount: blockBytes)
        if let remainderPointer { (memory + blockBytes).copyMemory(from: remainderPointer, byteCount: blockBytes) }
        return memory
    }

    /// The whole pool path, as a capture thread and a work thread run it (here on one thread):
    /// copy and queue, lease, walk the copy in the chunk, end the lease (processed, recycled).
    @inline(__always)
    func poolPath(harness: PoolHarness, into handler: inout SumHandler) -> Int {
        var walked = 0
        var sequence: UInt64 = 0
        for _ in 0..<fullBlocks {
            walked &+= harness.poolPath(block: fullPointer, sequence: sequence, into: &handler)
            sequence &+= 1
        }
        if let remainderPointer {
            walked &+= harness.poolPath(block: remainderPointer, sequence: sequence, into: &handler)
        }
        return walked
    }
}

// As in BlockWalkBenchmarks: no .cpuTotal (10 ms resolution on Linux); .instructions only
// where hardware performance counters are available.
func poolConfiguration(maxDuration: Duration = .seconds(5)) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .throughput, .instructions, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: scalingFactor,
        maxDuration: maxDuration,
        maxIterations: 1_000
    )
}

/// What one benchmark uses, built by its setup hook so that a filtered run builds only its own.
final class Slot: @unchecked Sendable {
    var harness: PoolHarness?
    var blocks: BlockFixture?
    /// The ring memory a lending harness lends from (freed after the harness).
    var ring: UnsafeMutableRawPointer?

    func clear() {
        harness = nil
        blocks = nil
        ring?.deallocate()
        ring = nil
    }
}

let benchmarks: @Sendable () -> Void = {
    // 1. Chunk operations: one take and one recycle per unit (goal: under 100 ns per chunk
    //    operation, no allocation). `take()` is the plain take; `take(waitingUpTo:)` is the one
    //    CopyingConsumer calls, which takes the same path while a chunk is free.
    do {
        let slot = Slot()
        Benchmark("ChunkPool take+recycle", configuration: poolConfiguration()) { benchmark in
            let harness = slot.harness!
            var sum = 0
            benchmark.startMeasurement()
            for _ in 0..<unitsPerIteration {
                sum &+= harness.takeAndRecycle(waiting: false)
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            slot.harness = makePool()
        } teardown: {
            slot.clear()
        }
    }
    do {
        let slot = Slot()
        Benchmark("ChunkPool take(waitingUpTo:)+recycle", configuration: poolConfiguration()) { benchmark in
            let harness = slot.harness!
            var sum = 0
            benchmark.startMeasurement()
            for _ in 0..<unitsPerIteration {
                sum &+= harness.takeAndRecycle(waiting: true)
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            slot.harness = makePool()
        } teardown: {
            slot.clear()
        }
    }

    // 2. The capture queue: push a filled chunk, pop it, mark it processed, per unit.
    do {
        let slot = Slot()
        Benchmark("Capture queue push+pop+processed", configuration: poolConfiguration()) { benchmark in
            let harness = slot.harness!
            var sum: Int64 = 0
            benchmark.startMeasurement()
            for unit in 0..<unitsPerIteration {
                sum &+= Int64(harness.pushPopProcessed(owner: 0, index: unit & (poolChunks - 1), sequence: UInt64(unit)))
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            slot.harness = makePool()
        } teardown: {
            slot.clear()
        }
    }

    // 2b. Buddy offloading: the decision and the hand-over, per chunk. Queue 0 of a two-queue group
    //     (T = 0.5 of 8 chunks) is kept over the high mark with chunks waiting in its own capture
    //     queue, so every push runs the policy and lands on queue 1, whose work thread pops it.
    do {
        let slot = OffloadSlot()
        Benchmark("Offload decision + hand-over", configuration: poolConfiguration()) { benchmark in
            let harness = slot.harness!
            var sum: Int64 = 0
            let before = harness.offloadedOut(of: 0)
            benchmark.startMeasurement()
            for unit in 0..<unitsPerIteration {
                sum &+= Int64(harness.pushPopProcessed(owner: 0, index: unit & 7, sequence: UInt64(unit)))
            }
            benchmark.stopMeasurement()
            precondition(harness.offloadedOut(of: 0) - before == UInt64(unitsPerIteration), "every chunk was offloaded")
            blackHole(sum)
        } setup: {
            let harness = try! PoolHarness(queues: 2, chunks: 8, chunkSize: 4096, groups: [[0, 1]], threshold: 0.5)
            // Five chunks left waiting in queue 0's capture queue keep it over the high mark (4).
            for i in 0..<5 { harness.queueWithoutPopping(owner: 0, index: i, sequence: UInt64(i)) }
            slot.harness = harness
        } teardown: {
            slot.harness = nil
        }
    }

    for frameLength in [64, 1514] {
        // 3. Copy-out capture, per packet: what the pool path adds on the capture thread.
        do {
            let slot = Slot()
            Benchmark(
                "Copy-out capture of a 1 MiB block (\(frameLength)B frames)", configuration: poolConfiguration()
            ) { benchmark in
                let blocks = slot.blocks!
                let harness = slot.harness!
                benchmark.startMeasurement()
                let captured = blocks.copyOut(harness: harness)
                benchmark.stopMeasurement()
                precondition(captured == unitsPerIteration)
            } setup: {
                slot.blocks = BlockFixture(frameLength: frameLength)
                slot.harness = makePool()
                print("Copy-out \(frameLength)B: \(slot.blocks!.summary)")
            } teardown: {
                slot.clear()
            }
        }

        // 4. Plain path against the pool paths, per packet. The differences are what the copying
        //    pool and the hybrid pool (block lent in place) add per packet over the plain ring.
        //    The path runs in a closure called once per iteration (a million packets), so the
        //    call costs nothing per packet; the walk inside it is specialised for SumHandler.
        perPacket("Plain path per packet (\(frameLength)B frames)", "Plain path", frameLength: frameLength) { blocks, _, handler in
            blocks.walk(into: &handler)
        }
        perPacket("Pool path per packet (\(frameLength)B frames)", "Pool path", frameLength: frameLength, harness: { _, _ in makePool() }) {
            blocks, harness, handler in blocks.poolPath(harness: harness!, into: &handler)
        }
        perPacket(
            "Hybrid pool path per packet, block lent in place (\(frameLength)B frames)", "Hybrid pool path", frameLength: frameLength,
            harness: { blocks, slot in
                slot.ring = blocks.ring()
                return try! PoolHarness(chunks: poolChunks, chunkSize: blockBytes, ring: (slot.ring!, 2))
            }
        ) { blocks, harness, handler in blocks.lendPath(harness: harness!, into: &handler) }
    }
}

/// A per-packet benchmark over a million packets of `frameLength`-byte frames: `harness` (if
/// any) made in setup from the blocks, `path` run once per iteration into a `SumHandler`.
func perPacket(
    _ name: String, _ label: String, frameLength: Int, harness: ((BlockFixture, Slot) -> PoolHarness)? = nil,
    path: @escaping @Sendable (BlockFixture, PoolHarness?, inout SumHandler) -> Int
) {
    let slot = Slot()
    Benchmark(name, configuration: poolConfiguration()) { benchmark in
        let blocks = slot.blocks!
        let harness = slot.harness
        var handler = SumHandler()
        benchmark.startMeasurement()
        let walked = path(blocks, harness, &handler)
        benchmark.stopMeasurement()
        precondition(walked == unitsPerIteration)
        blackHole(handler.capturedBytes &+ handler.byteSum)
    } setup: {
        let blocks = BlockFixture(frameLength: frameLength)
        slot.blocks = blocks
        slot.harness = harness?(blocks, slot)
        print("\(label) \(frameLength)B: \(blocks.summary)")
    } teardown: {
        slot.clear()
    }
}

/// The group an offload benchmark uses, built in setup.
final class OffloadSlot: @unchecked Sendable {
    var harness: PoolHarness?
}
