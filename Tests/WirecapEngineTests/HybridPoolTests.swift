import CWirecapLinux
import Foundation
import Logging
import Testing
@_spi(Harness) @testable import WirecapEngine

/// A ring's memory without a socket: `count` blocks of `size` bytes, each a retired block (status
/// TP_STATUS_USER) holding ten frames numbered by block.
final class SyntheticRing: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int
    let count: Int
    let frames: [[SyntheticFrame]]

    init(count: Int, size: Int = 1 << 16) throws {
        self.size = size
        self.count = count
        base = .allocate(byteCount: size * count, alignment: 4096)
        frames = (0..<count).map { block in
            (0..<10).map { SyntheticFrame(bytes: ethernetFrame(length: 64 + block, seed: UInt8($0))) }
        }
        for block in 0..<count {
            let one = try SyntheticBlock(size: size, frames: frames[block])
            (base + block * size).copyMemory(from: one.pointer, byteCount: size)
        }
    }

    deinit { base.deallocate() }

    func block(_ index: Int) -> UnsafeMutableRawPointer { base + index * size }
    func status(_ index: Int) -> UInt32 { CWirecapLinux_block_status_acquire(block(index)) }
    func packets(_ index: Int) -> UInt32 { block(index).load(fromByteOffset: Int(CWirecapLinux_BLOCK_NUM_PKTS), as: UInt32.self) }
}

@Suite("Hybrid pool: ring blocks lent in place, copied only when they must be")
struct HybridPoolTests {
    /// One queue, `chunks` pool chunks, lending from `ring`.
    func exchange(_ ring: SyntheticRing, chunks: Int = 8) throws -> ChunkExchange {
        let pool = try ChunkPool(queue: 0, chunks: chunks, chunkSize: ring.size, node: nil, lock: .off, logger: Logger(label: "test"))
        let loans = try LentBlocks(base: ring.base, blockSize: ring.size, blockCount: ring.count, owner: ring)
        return ChunkExchange(pools: [pool], groups: [[0]], threshold: nil, snapLength: 65535, lending: [loans])
    }

    func leased(_ exchange: ChunkExchange) throws -> ChunkLease {
        guard let lease = exchange.lease(for: 0, waiting: .none) else { throw LeaseMissing() }
        return lease
    }
    struct LeaseMissing: Error {}

    @Test("with no backlog a block is lent in place: the handler walks the ring's memory, and the end gives it back")
    func lendsInPlace() throws {
        let ring = try SyntheticRing(count: 16)
        let exchange = try exchange(ring)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        #expect(consumer.consume(block: ring.block(3), index: 3, readyAfter: 0, queue: 0) == .lent)
        #expect(LentBlocks.isLent(ring.status(3)) && ring.status(3) & UInt32(TP_STATUS_USER) != 0, "the kernel still sees it held")
        #expect(exchange.pools[0].snapshot().free == 7, "a chunk is reserved for a copy")
        do {
            let lease = try leased(exchange)
            #expect(lease.block == ring.block(3), "zero copy: the chunk is the ring block")
            var handler = RecordingHandler()
            #expect(lease.walk(&handler) == 10)
            #expect(handler.seen.map(\.bytes) == ring.frames[3].map(\.bytes))
        }
        #expect(ring.status(3) == UInt32(TP_STATUS_KERNEL) && ring.packets(3) == 0, "back to the kernel, counting no packets")
        #expect(exchange.pools[0].snapshot().free == 8)
        let loans = try #require(exchange.loans(of: 0)).snapshot()
        #expect(loans.lent == 1 && loans.copiedAtCapture == 0 && loans.copiedLater == 0 && loans.outstanding == 0)
        let counts = exchange.snapshot(of: 0).counts
        #expect(counts.captured == 10 && counts.processed == 10 && counts.queued == 0 && counts.inHandler == 0)
    }

    @Test("a kept loan is copied into its reserved chunk and the block goes back at once")
    func keepCopies() throws {
        let ring = try SyntheticRing(count: 16)
        let exchange = try exchange(ring)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        #expect(consumer.consume(block: ring.block(0), index: 0, readyAfter: 0, queue: 0) == .lent)
        let kept = try leased(exchange).keep()
        #expect(ring.status(0) == UInt32(TP_STATUS_KERNEL), "a kept chunk holds no ring memory")
        #expect(kept.block != ring.block(0))
        // The ring block can be overwritten now: the copy stays intact.
        ring.block(0).initializeMemory(as: UInt8.self, repeating: 0xee, count: ring.size)
        var handler = RecordingHandler()
        _ = BlockWalk.walk(block: kept.block, queue: 0, snapLength: 65535, reinsertVLAN: false, handler: &handler)
        #expect(handler.seen.map(\.bytes) == ring.frames[0].map(\.bytes))
        #expect(exchange.pools[0].snapshot().free == 7, "the copy stays out of the pool while kept")
        kept.recycle()
        #expect(exchange.pools[0].snapshot().free == 8)
        let loans = try #require(exchange.loans(of: 0)).snapshot()
        #expect(loans.lent == 1 && loans.copiedLater == 1 && loans.outstanding == 0)
    }

    @Test("past the loan limit, behind a backlog, or with the kernel ahead, blocks are copied and given back; a backlog past the limit turns waiting loans into copies")
    func copiesWhenItMust() throws {
        let ring = try SyntheticRing(count: 16)
        let exchange = try exchange(ring, chunks: 16)
        let limit = try #require(exchange.loans(of: 0)).limit
        #expect(limit == 4, "a quarter of a 16-block ring")
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        // Nobody consumes: the first `limit` blocks are lent, then the loans forbid lending; the
        // first copy leaves the backlog past the limit, so the waiting loans become copies too.
        var dispositions: [BlockDisposition] = []
        for index in 0..<8 { dispositions.append(consumer.consume(block: ring.block(index), index: index, readyAfter: 0, queue: 0)) }
        #expect(dispositions == Array(repeating: .lent, count: limit) + Array(repeating: .taken, count: 8 - limit))
        // (The copied blocks go back in the capture loop, which this test does not run.)
        #expect((0..<limit).allSatisfy { ring.status($0) == UInt32(TP_STATUS_KERNEL) }, "no loan is held behind the backlog")
        // Drain: chunks come out in capture order, all copies now, and all of them walk the same.
        for index in 0..<8 {
            let lease = try leased(exchange)
            #expect(lease.sequence == UInt64(index))
            #expect(lease.block != ring.block(index))
            var handler = RecordingHandler()
            lease.walk(&handler)
            #expect(handler.seen.map(\.bytes) == ring.frames[index].map(\.bytes))
        }
        // With the backlog gone, lending resumes, unless the kernel has run ahead.
        #expect(consumer.consume(block: ring.block(8), index: 8, readyAfter: 0, queue: 0) == .lent)
        try leased(exchange).recycle()
        #expect(consumer.consume(block: ring.block(9), index: 9, readyAfter: 8, queue: 0) == .taken, "half the ring already retired")
        try leased(exchange).recycle()
        let loans = try #require(exchange.loans(of: 0)).snapshot()
        #expect(loans.lent == UInt64(limit + 1) && loans.copiedAtCapture == UInt64(8 - limit + 1) && loans.copiedLater == UInt64(limit))
    }

    @Test("loans still waiting for their consumer are reclaimed as copies; one in a handler is not")
    func reclaim() throws {
        let ring = try SyntheticRing(count: 16)
        let exchange = try exchange(ring)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        for index in 0..<3 { #expect(consumer.consume(block: ring.block(index), index: index, readyAfter: 0, queue: 0) == .lent) }
        let inHandler = try leased(exchange)
        #expect(exchange.reclaimLoans(of: 0) == 2)
        #expect(LentBlocks.isLent(ring.status(0)), "the handler's block stays lent")
        #expect(ring.status(1) == UInt32(TP_STATUS_KERNEL) && ring.status(2) == UInt32(TP_STATUS_KERNEL))
        // Overwrite the returned blocks: the reclaimed chunks are copies.
        ring.block(1).initializeMemory(as: UInt8.self, repeating: 0, count: ring.size)
        for index in 1..<3 {
            let lease = try leased(exchange)
            #expect(lease.block != ring.block(index) && lease.sequence == UInt64(index))
            var handler = RecordingHandler()
            lease.walk(&handler)
            #expect(handler.seen.map(\.bytes) == ring.frames[index].map(\.bytes))
        }
        _ = consume inHandler
        #expect(ring.status(0) == UInt32(TP_STATUS_KERNEL))
        let loans = try #require(exchange.loans(of: 0)).snapshot()
        #expect(loans.lent == 3 && loans.copiedLater == 2 && loans.outstanding == 0)
        let counts = exchange.snapshot(of: 0).counts
        #expect(counts.captured == 30 && counts.processed == 30)
        #expect(exchange.pools[0].snapshot().free == 8)
    }

    @Test("a reader that holds a lease between calls moves it out of the ring: same lease, a copy, the block back")
    func moveOutOfRing() throws {
        let ring = try SyntheticRing(count: 16)
        let exchange = try exchange(ring)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        #expect(consumer.consume(block: ring.block(5), index: 5, readyAfter: 0, queue: 0) == .lent)
        var lease = try leased(exchange)
        var first = RecordingHandler()
        lease.walk(first: 0, limit: 4, &first)
        let before = lease.isInRing
        lease.moveOutOfRing()
        let after = lease.isInRing
        let moved = lease.block != ring.block(5)
        #expect(before && !after && moved && ring.status(5) == UInt32(TP_STATUS_KERNEL))
        ring.block(5).initializeMemory(as: UInt8.self, repeating: 0, count: ring.size)
        var rest = RecordingHandler()
        lease.walk(first: 4, limit: 100, &rest)
        #expect((first.seen + rest.seen).map(\.bytes) == ring.frames[5].map(\.bytes))
        #expect(exchange.snapshot(of: 0).counts.inHandler == 10, "still leased: nothing counted processed yet")
        lease.recycle()
        #expect(exchange.snapshot(of: 0).counts.processed == 10 && exchange.pools[0].snapshot().free == 8)
    }

    @Test("copy rate: copies at capture and later, per chunk")
    func copyRate() {
        var stats = QueueStatistics(queue: 0)
        #expect(stats.copyRate == 0)
        stats.blocksLent = 90
        stats.blocksCopied = 10
        stats.blocksCopiedLater = 5
        #expect(abs(stats.copyRate - 0.15) < 1e-12)
    }

    @Test("a ring too small to lend from (under 4 blocks) copies every block")
    func smallRing() throws {
        let ring = try SyntheticRing(count: 3)
        let exchange = try exchange(ring)
        var consumer = PoolConsumer(exchange: exchange, queue: 0)
        #expect(consumer.consume(block: ring.block(0), index: 0, readyAfter: 0, queue: 0) == .taken)
    }
}
