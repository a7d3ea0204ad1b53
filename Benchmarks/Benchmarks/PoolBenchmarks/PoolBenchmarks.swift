@preconcurrency import Benchmark
import Logging
import WirecapEngine

// Cost of the WireCAP pool path (ChunkPool, BuddyGroup, CopyingConsumer) and what it adds per
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

func makePool() -> (ChunkPool, BuddyGroup) {
    let pool = try! ChunkPool(
        queue: 0, chunks: poolChunks, chunkSize: blockBytes, node: nil, lock: .off,
        logger: Logger(label: "wirecap.benchmarks.pool"))
    return (pool, BuddyGroup(members: [0], queueCount: 1, pools: [pool], capacity: poolChunks, threshold: nil))
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
    func copyOut(pool: ChunkPool, chunkQueue: BuddyGroup) -> Int {
        var consumer = CopyingConsumer(pool: pool, group: chunkQueue)
        var captured = 0
        for _ in 0..<fullBlocks {
            captured &+= copyOutOne(fullPointer, &consumer, pool, chunkQueue)
        }
        if let remainderPointer {
            captured &+= copyOutOne(remainderPointer, &consumer, pool, chunkQueue)
        }
        return captured
    }

    @inline(__always)
    private func copyOutOne(
        _ block: UnsafeMutableRawPointer, _ consumer: inout CopyingConsumer, _ pool: ChunkPool,
        _ chunkQueue: BuddyGroup
    ) -> Int {
        let consumed = consumer.consume(block: block, queue: 0)
        precondition(consumed)
        let filled = chunkQueue.pop(for: 0)!
        chunkQueue.processed(filled, by: 0)
        pool.recycle(Int(filled.index))
        return Int(filled.packets)
    }

    /// The whole pool path, as a capture thread and a work thread run it (here on one thread):
    /// copy and queue, pop, walk the copy in the chunk, mark processed, recycle. `Chunk`'s
    /// initialiser is internal to WirecapEngine, so the copy is walked through
    /// `pool.address(of:)` with `BlockWalk.walk`, which is exactly what `Chunk.walk` does.
    @inline(__always)
    func poolPath(pool: ChunkPool, chunkQueue: BuddyGroup, into handler: inout SumHandler) -> Int {
        var consumer = CopyingConsumer(pool: pool, group: chunkQueue)
        var walked = 0
        for _ in 0..<fullBlocks {
            walked &+= poolPathOne(fullPointer, &consumer, pool, chunkQueue, &handler)
        }
        if let remainderPointer {
            walked &+= poolPathOne(remainderPointer, &consumer, pool, chunkQueue, &handler)
        }
        return walked
    }

    @inline(__always)
    private func poolPathOne(
        _ block: UnsafeMutableRawPointer, _ consumer: inout CopyingConsumer, _ pool: ChunkPool,
        _ chunkQueue: BuddyGroup, _ handler: inout SumHandler
    ) -> Int {
        let consumed = consumer.consume(block: block, queue: 0)
        precondition(consumed)
        let filled = chunkQueue.pop(for: 0)!
        let walked = BlockWalk.walk(
            block: pool.address(of: Int(filled.index)), queue: Int(filled.owner), snapLength: 65_535,
            reinsertVLAN: true, handler: &handler)
        chunkQueue.processed(filled, by: 0)
        pool.recycle(Int(filled.index))
        return walked
    }
}

/// What one benchmark uses, built by its setup hook so that a filtered run builds only its own.
final class Slot: @unchecked Sendable {
    var pool: ChunkPool?
    var chunkQueue: BuddyGroup?
    var blocks: BlockFixture?

    func clear() {
        pool = nil
        chunkQueue = nil
        blocks = nil
    }
}

let benchmarks: @Sendable () -> Void = {
    // As in BlockWalkBenchmarks: no .cpuTotal (10 ms resolution on Linux); .instructions only
    // where hardware performance counters are available.
    let metrics: [BenchmarkMetric] = [
        .wallClock,
        .throughput,
        .instructions,
        .mallocCountTotal,
    ]

    func configuration(maxDuration: Duration = .seconds(5)) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            timeUnits: .nanoseconds,
            warmupIterations: 10,
            scalingFactor: scalingFactor,
            maxDuration: maxDuration,
            maxIterations: 1_000
        )
    }

    // 1. Chunk operations: one take and one recycle per unit (goal: under 100 ns per chunk
    //    operation, no allocation). `take()` is the plain take; `take(waitingUpTo:)` is the one
    //    CopyingConsumer calls, which takes the same path while a chunk is free.
    do {
        let slot = Slot()
        Benchmark("ChunkPool take+recycle", configuration: configuration()) { benchmark in
            let pool = slot.pool!
            var sum = 0
            benchmark.startMeasurement()
            for _ in 0..<unitsPerIteration {
                let chunk = pool.take()!
                sum &+= chunk
                pool.recycle(chunk)
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            (slot.pool, slot.chunkQueue) = makePool()
        } teardown: {
            slot.clear()
        }
    }
    do {
        let slot = Slot()
        Benchmark("ChunkPool take(waitingUpTo:)+recycle", configuration: configuration()) { benchmark in
            let pool = slot.pool!
            var sum = 0
            benchmark.startMeasurement()
            for _ in 0..<unitsPerIteration {
                let chunk = pool.take(waitingUpTo: 2_000_000)!
                sum &+= chunk
                pool.recycle(chunk)
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            (slot.pool, slot.chunkQueue) = makePool()
        } teardown: {
            slot.clear()
        }
    }

    // 2. The capture queue: push a filled chunk, pop it, mark it processed, per unit.
    do {
        let slot = Slot()
        Benchmark("Capture queue push+pop+processed", configuration: configuration()) { benchmark in
            let chunkQueue = slot.chunkQueue!
            var sum: Int64 = 0
            benchmark.startMeasurement()
            for unit in 0..<unitsPerIteration {
                chunkQueue.push(
                    FilledChunk(index: Int32(unit & (poolChunks - 1)), owner: 0, packets: 1, sequence: UInt64(unit)))
                let filled = chunkQueue.pop(for: 0)!
                sum &+= Int64(filled.index)
                chunkQueue.processed(filled, by: 0)
            }
            benchmark.stopMeasurement()
            blackHole(sum)
        } setup: {
            (slot.pool, slot.chunkQueue) = makePool()
        } teardown: {
            slot.clear()
        }
    }

    // 2b. Buddy offloading: the decision and the hand-over, per chunk. Queue 0 of a two-queue group
    //     (T = 0.5 of 8 chunks) is kept over the high mark with chunks waiting in its own capture
    //     queue, so every push runs the policy and lands on queue 1, whose work thread pops it.
    do {
        let slot = OffloadSlot()
        Benchmark("Offload decision + hand-over", configuration: configuration()) { benchmark in
            let group = slot.group!
            var sum: Int64 = 0
            let before = group.snapshot(of: 0).offloadedOut
            benchmark.startMeasurement()
            for unit in 0..<unitsPerIteration {
                let target = group.push(FilledChunk(index: Int32(unit & 7), owner: 0, packets: 1, sequence: UInt64(unit)))
                let filled = group.pop(for: target)!
                sum &+= Int64(target)
                group.processed(filled, by: target)
            }
            benchmark.stopMeasurement()
            precondition(group.snapshot(of: 0).offloadedOut - before == UInt64(unitsPerIteration), "every chunk was offloaded")
            blackHole(sum)
        } setup: {
            let poolA = try! ChunkPool(queue: 0, chunks: 8, chunkSize: 4096, node: nil, lock: .off, logger: Logger(label: "bench"))
            let poolB = try! ChunkPool(queue: 1, chunks: 8, chunkSize: 4096, node: nil, lock: .off, logger: Logger(label: "bench"))
            let group = BuddyGroup(members: [0, 1], queueCount: 2, pools: [poolA, poolB], capacity: 8, threshold: 0.5)
            for i in 0..<5 { group.push(FilledChunk(index: Int32(i), owner: 0, packets: 1, sequence: UInt64(i))) }
            slot.group = group
        } teardown: {
            slot.group = nil
        }
    }

    for frameLength in [64, 1514] {
        // 3. Copy-out capture, per packet: what the pool path adds on the capture thread.
        do {
            let slot = Slot()
            Benchmark(
                "Copy-out capture of a 1 MiB block (\(frameLength)B frames)", configuration: configuration()
            ) { benchmark in
                let blocks = slot.blocks!
                let pool = slot.pool!
                let chunkQueue = slot.chunkQueue!
                benchmark.startMeasurement()
                let captured = blocks.copyOut(pool: pool, chunkQueue: chunkQueue)
                benchmark.stopMeasurement()
                precondition(captured == unitsPerIteration)
            } setup: {
                slot.blocks = BlockFixture(frameLength: frameLength)
                (slot.pool, slot.chunkQueue) = makePool()
                print("Copy-out \(frameLength)B: \(slot.blocks!.summary)")
            } teardown: {
                slot.clear()
            }
        }

        // 4. Plain path against pool path, per packet. The difference of the two is the extra
        //    per-packet cost of the pool path over the plain ring path.
        do {
            let slot = Slot()
            Benchmark("Plain path per packet (\(frameLength)B frames)", configuration: configuration()) { benchmark in
                let blocks = slot.blocks!
                var handler = SumHandler()
                benchmark.startMeasurement()
                let walked = blocks.walk(into: &handler)
                benchmark.stopMeasurement()
                precondition(walked == unitsPerIteration)
                blackHole(handler.capturedBytes &+ handler.byteSum)
            } setup: {
                slot.blocks = BlockFixture(frameLength: frameLength)
                print("Plain path \(frameLength)B: \(slot.blocks!.summary)")
            } teardown: {
                slot.clear()
            }
        }
        do {
            let slot = Slot()
            Benchmark("Pool path per packet (\(frameLength)B frames)", configuration: configuration()) { benchmark in
                let blocks = slot.blocks!
                let pool = slot.pool!
                let chunkQueue = slot.chunkQueue!
                var handler = SumHandler()
                benchmark.startMeasurement()
                let walked = blocks.poolPath(pool: pool, chunkQueue: chunkQueue, into: &handler)
                benchmark.stopMeasurement()
                precondition(walked == unitsPerIteration)
                blackHole(handler.capturedBytes &+ handler.byteSum)
            } setup: {
                slot.blocks = BlockFixture(frameLength: frameLength)
                (slot.pool, slot.chunkQueue) = makePool()
                print("Pool path \(frameLength)B: \(slot.blocks!.summary)")
            } teardown: {
                slot.clear()
            }
        }
    }
}

/// The group an offload benchmark uses, built in setup.
final class OffloadSlot: @unchecked Sendable {
    var group: BuddyGroup?
}
