import Foundation
import Logging
import Synchronization
import Testing
import WirecapEngine

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
        let group = BuddyGroup(members: [0], queueCount: 1, pools: [nil], capacity: 8, threshold: nil)
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
        let pool = try makePool(chunks: 2, chunkSize: 1 << 16)
        let group = BuddyGroup(members: [3], queueCount: 4, pools: [nil, nil, nil, pool], capacity: 2, threshold: nil)
        var consumer = CopyingConsumer(pool: pool, group: group)
        let first = consumer.consume(block: block.pointer, queue: 3)
        #expect(first)
        let filled = try #require(group.pop(for: 3))
        #expect(filled.packets == 51 && filled.owner == 3 && filled.sequence == 0)
        var handler = RecordingHandler()
        let count = BlockWalk.walk(block: pool.address(of: Int(filled.index)), queue: 3, snapLength: 65535, reinsertVLAN: true, handler: &handler)
        #expect(count == 51)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == frames.map(\SyntheticFrame.bytes))
        // With both chunks out, the consumer has no room and says so instead of dropping.
        let second = consumer.consume(block: block.pointer, queue: 3)
        let third = consumer.consume(block: block.pointer, queue: 3)
        #expect(second && !third)
        pool.recycle(Int(filled.index))
        let fourth = consumer.consume(block: block.pointer, queue: 3)
        #expect(fourth)
    }
}

final class Tally: Sendable {
    private let count = Mutex(0)
    private let sink = Atomic<Int>(0)
    func collision() { count.withLock { $0 += 1 } }
    var collisions: Int { count.withLock { $0 } }
    func spin() { sink.add(1, ordering: .relaxed) }
}
