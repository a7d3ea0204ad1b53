import Foundation
import Logging
import Synchronization
import Testing
@_spi(Harness) @testable import WirecapEngine

@Suite("Ring-buffer pool")
struct ChunkPoolTests {
    func makePool(chunks: Int, chunkSize: Int = 4096) throws -> ChunkPool {
        try ChunkPool(queue: 0, chunks: chunks, chunkSize: chunkSize, node: nil, lock: .off, logger: Logger(label: "test"))
    }

    @Test("open hands out every chunk once, then nothing; the low watermark follows")
    func takeAll() throws {
        let pool = try makePool(chunks: 16)
        var taken: [Int] = []
        while let chunk = pool.take() { taken.append(chunk) }
        #expect(taken.sorted() == Array(0..<16))
        #expect(pool.take() == nil)
        let s = pool.snapshot()
        #expect(s.free == 0 && s.freeMinimum == 0 && s.taken == 16 && s.recycled == 0)
        // Distinct chunks are distinct memory.
        #expect(Set(taken.map { pool.address(of: $0) }).count == 16)
    }

    @Test("recycling from other threads in shuffled order loses and duplicates nothing")
    func recycleAnywhere() async throws {
        let chunks = 256
        let pool = try makePool(chunks: chunks)
        for round in 0..<20 {
            var taken: [Int] = []
            while let chunk = pool.take() { taken.append(chunk) }
            #expect(taken.count == chunks)
            var generator = SystemRandomNumberGenerator()
            taken.shuffle(using: &generator)
            // Four threads recycle interleaved slices, in shuffled order.
            await withTaskGroup(of: Void.self) { group in
                for t in 0..<4 {
                    let mine = stride(from: t, to: taken.count, by: 4).map { taken[$0] }
                    group.addTask { for chunk in mine { pool.recycle(chunk) } }
                }
            }
            let s = pool.snapshot()
            #expect(s.free == chunks, "round \(round)")
            #expect(s.recycled == UInt64(chunks * (round + 1)))
        }
        var again: [Int] = []
        while let chunk = pool.take() { again.append(chunk) }
        #expect(again.sorted() == Array(0..<chunks))
    }

    @Test("concurrent take and recycle keep the free list whole")
    func concurrentChurn() async throws {
        let chunks = 64
        let pool = try makePool(chunks: chunks)
        let tally = Tally()
        await withTaskGroup(of: Void.self) { group in
            for worker in 1...4 {
                group.addTask {
                    for _ in 0..<20_000 {
                        guard let chunk = pool.take() else { continue }
                        // Stamp the chunk, look again: another holder of the same chunk would
                        // have overwritten the stamp.
                        let memory = pool.address(of: chunk)
                        memory.storeBytes(of: worker, as: Int.self)
                        for _ in 0..<50 { tally.spin() }
                        if memory.load(as: Int.self) != worker { tally.collision() }
                        pool.recycle(chunk)
                    }
                }
            }
        }
        #expect(tally.collisions == 0)
        let s = pool.snapshot()
        #expect(s.free == chunks)
        #expect(s.taken == s.recycled)
    }

    @Test("the capture queue keeps captured == queued + in handler + processed at every step")
    func captureQueueCounts() {
        let group = BuddyGroup(members: [0], queueCount: 1, capacities: [8], capacity: 8, threshold: nil)
        func check(_ step: String) {
            let c = group.snapshot(of: 0)
            #expect(c.captured == c.queued + c.inHandler + c.processed, "\(step): \(c)")
        }
        for i in 0..<5 {
            group.push(FilledChunk(index: Int32(i), owner: 0, packets: Int32(10 + i), sequence: UInt64(i)))
            check("push \(i)")
        }
        #expect(group.snapshot(of: 0).backlogMax == 5)
        for i in 0..<5 {
            let chunk = group.pop(for: 0)
            #expect(chunk?.sequence == UInt64(i), "first in, first out")
            check("pop \(i)")
            if let chunk { group.processed(chunk, by: 0) }
            check("processed \(i)")
        }
        let c = group.snapshot(of: 0)
        #expect(c.processed == 60 && c.queued == 0 && c.inHandler == 0 && c.chunksProcessed == 5)
        group.captureFinished()
        #expect(group.pop(for: 0) == nil, "finished and empty: the work thread ends")
    }

    @Test("copy-out capture keeps the block's layout: the chunk walks to the same packets")
    func copyOut() throws {
        let frames = (0..<50).map { i in
            SyntheticFrame(bytes: ethernetFrame(length: 60 + i * 7, seed: UInt8(i)), seconds: UInt32(i), nanoseconds: UInt32(i * 3))
        } + [SyntheticFrame(bytes: taggedFrame(length: 300, tpid: 0x88a8, tci: 42, seed: 9), stripVLAN: true)]
        let block = try SyntheticBlock(size: 1 << 16, frames: frames)
        let pools = try (0..<4).map { _ in try makePool(chunks: 2, chunkSize: 1 << 16) }
        let exchange = ChunkExchange(pools: pools, groups: [[0], [1], [2], [3]], threshold: nil, snapLength: 65535)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        let first = consumer.consume(block: block.pointer, index: 0, readyAfter: 0, queue: 3) == .taken
        #expect(first)
        var lease = try leased(exchange, 3)
        #expect(lease.packetCount == 51 && lease.owner == 3 && lease.sequence == 0 && lease.queue == 3)
        var handler = RecordingHandler()
        let count = lease.walk(&handler)
        #expect(count == 51)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == frames.map(\SyntheticFrame.bytes))
        // With both chunks out, the consumer has no room and says so instead of dropping.
        let second = consumer.consume(block: block.pointer, index: 0, readyAfter: 0, queue: 3) == .taken
        let third = consumer.consume(block: block.pointer, index: 0, readyAfter: 0, queue: 3) == .taken
        #expect(second && !third)
        lease.recycle()
        let fourth = consumer.consume(block: block.pointer, index: 0, readyAfter: 0, queue: 3) == .taken
        #expect(fourth)
        lease = try leased(exchange, 3)
        #expect(lease.sequence == 1, "the owner's chunks are numbered in capture order")
    }

    /// An exchange of two queues with a pool of `chunks` each.
    func twoQueues(chunks: Int = 4) throws -> ChunkExchange {
        let pools = try (0..<2).map { _ in try makePool(chunks: chunks, chunkSize: 1 << 16) }
        return ChunkExchange(pools: pools, groups: [[0], [1]], threshold: nil, snapLength: 65535)
    }

    /// A block of ten 64-byte frames.
    func tenFrames() throws -> SyntheticBlock {
        try SyntheticBlock(size: 1 << 16, frames: (0..<10).map { SyntheticFrame(bytes: ethernetFrame(length: 64, seed: UInt8($0))) })
    }

    /// The next chunk of `queue`, or a test failure (`#require` takes only copyable values).
    func leased(_ exchange: ChunkExchange, _ queue: Int, waiting: ChunkWait = .none) throws -> ChunkLease {
        guard let lease = exchange.lease(for: queue, waiting: waiting) else { throw LeaseMissing() }
        return lease
    }
    struct LeaseMissing: Error {}

    /// Whether no lease came (ending it if one did).
    func noLease(_ lease: consuming ChunkLease?) -> Bool {
        if let lease { lease.recycle(); return false }
        return true
    }

    @Test("a lease ends once: recycled when it goes out of scope, kept chunks recycled once however often asked")
    func leaseLifeCycle() throws {
        let exchange = try twoQueues()
        let block = try tenFrames()
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        for _ in 0..<3 {
            let filled = consumer.consume(block: block.pointer, index: 0, readyAfter: 0, queue: 0) == .taken
            #expect(filled)
        }
        let pool = exchange.pools[0]
        #expect(pool.snapshot().free == 1)
        do {
            let lease = try leased(exchange, 0)
            #expect(lease.packetCount == 10)
        }
        #expect(pool.snapshot().free == 2, "a lease that goes out of scope recycles its chunk")
        #expect(exchange.snapshot(of: 0).counts.processed == 10, "and its packets count as processed")
        let kept = try leased(exchange, 0).keep()
        #expect(exchange.snapshot(of: 0).counts.processed == 20, "a kept chunk's packets are processed")
        #expect(pool.snapshot().free == 2, "a kept chunk stays out of the pool")
        #expect(kept.packetCount == 10 && kept.owner == 0 && kept.sequence == 1)
        // Recycled from two threads at once, and again: the pool sees one recycle (a second
        // would stop the process with "recycled twice").
        let other = Thread { kept.recycle() }
        other.start()
        kept.recycle()
        kept.recycle()
        while pool.snapshot().recycled < 2 { usleep(100) }
        #expect(pool.snapshot().free == 3)
        try leased(exchange, 0).recycle()
        #expect(pool.snapshot().free == 4 && pool.snapshot().taken == pool.snapshot().recycled)
        let s = exchange.snapshot(of: 0).counts
        #expect(s.captured == s.processed && s.queued == 0 && s.inHandler == 0)
    }

    @Test("nextChunk waits as asked: not at all, up to a time-out, or until the capture ends")
    func leaseWaits() throws {
        let exchange = try twoQueues()
        let block = try tenFrames()
        let nothingWaiting = noLease(exchange.lease(for: 1, waiting: .none))
        #expect(nothingWaiting)
        let start = ContinuousClock.now
        let nothingCame = noLease(exchange.lease(for: 1, waiting: .upTo(.milliseconds(30))))
        #expect(nothingCame)
        #expect(ContinuousClock.now - start >= .milliseconds(30), "waits the whole time-out")
        // A chunk for the other queue does not end the wait early with nothing.
        nonisolated(unsafe) let memory = block.pointer
        let filler = Thread {
            usleep(10_000)
            var zero = PoolConsumer(exchange: exchange, queue: 0)
            _ = zero.consume(block: memory, index: 0, readyAfter: 0, queue: 0) == .taken
            usleep(10_000)
            var one = PoolConsumer(exchange: exchange, queue: 0)
            _ = one.consume(block: memory, index: 0, readyAfter: 0, queue: 1) == .taken
        }
        filler.start()
        let lease = try leased(exchange, 1, waiting: .upTo(.seconds(5)))
        #expect(lease.owner == 1)
        // A huge time-out is "a long time", not a trap.
        let huge = try leased(exchange, 0, waiting: .upTo(.seconds(Int64.max)))
        #expect(huge.owner == 0)
        exchange.captureFinished(queue: 0)
        exchange.captureFinished(queue: 1)
        let ended = noLease(exchange.lease(for: 0, waiting: .untilCaptureEnds))
        #expect(ended, "finished and empty: a work loop ends")
        _ = consume block
    }
}

final class Tally: Sendable {
    private let count = Mutex(0)
    private let sink = Atomic<Int>(0)
    func collision() { count.withLock { $0 += 1 } }
    var collisions: Int { count.withLock { $0 } }
    func spin() { sink.add(1, ordering: .relaxed) }
}
