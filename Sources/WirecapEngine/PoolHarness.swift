import CWirecapLinux
import Logging
import WirecapLinux

/// The pool path without sockets or threads, for the benchmarks: they live in a package of their
/// own and cannot see the engine's `package` types, yet must measure exactly what a capture runs.
/// Every operation here is the engine's own (`ChunkExchange.fill`, `lease`, the lease's end, the
/// buddy group's push and pop), only driven from one thread.
@_spi(Harness)
public final class PoolHarness: Sendable {
    @usableFromInline let exchange: ChunkExchange

    /// Per block of the ring lent from (`ring`), its packet count as the kernel left it: a loan's
    /// end zeroes it, and `lendPath` retires the block again before each loan.
    @usableFromInline let ringPackets: [UInt32]

    /// `queues` queues of `chunks` chunks of `chunkSize` bytes, memory not locked, in `groups`
    /// (default: each queue alone), offloading at `threshold` (nil: never). `ring`: memory laid
    /// out as queue 0's ring (`blockCount` retired blocks of `chunkSize` bytes, owned by the
    /// caller, alive as long as the harness) for the hybrid pool's loans (`lendPath`).
    public init(
        queues: Int = 1, chunks: Int, chunkSize: Int, groups: [[Int]]? = nil, threshold: Double? = nil,
        ring: (base: UnsafeMutableRawPointer, blockCount: Int)? = nil
    ) throws(CaptureError) {
        var pools: [ChunkPool] = []
        for queue in 0..<queues {
            pools.append(
                try ChunkPool(queue: queue, chunks: chunks, chunkSize: chunkSize, node: nil, lock: .off, logger: Logger(label: "wirecap.harness")))
        }
        var lending: [LentBlocks]? = nil
        var counts: [UInt32] = []
        if let ring {
            do throws(SystemError) {
                lending = try (0..<queues).map { _ throws(SystemError) in
                    try LentBlocks(base: ring.base, blockSize: chunkSize, blockCount: ring.blockCount, owner: RingOwner())
                }
            } catch {
                throw CaptureError(error)
            }
            counts = (0..<ring.blockCount).map { (ring.base + $0 * chunkSize).load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self) }
        }
        ringPackets = counts
        exchange = ChunkExchange(
            pools: pools, groups: groups ?? (0..<queues).map { [$0] }, threshold: threshold, snapLength: 65_535, lending: lending)
    }

    /// Keeps nothing: the harness's caller owns the ring memory.
    final class RingOwner: Sendable {}

    /// Open and recycle one chunk of queue 0's pool, as a capture's take and a lease's end do.
    @inlinable public func takeAndRecycle(waiting: Bool) -> Int {
        let pool = exchange.pools[0]
        let chunk = waiting ? pool.take(waitingUpTo: 2_000_000)! : pool.take()!
        pool.recycle(chunk)
        return chunk
    }

    /// One filled-chunk descriptor (no memory behind it) pushed for `owner`, popped by the queue
    /// the group chose, and marked processed: the capture queue's and the offload policy's part.
    /// Returns the queue that got it.
    @inlinable public func pushPopProcessed(owner: Int, index: Int, sequence: UInt64) -> Int {
        let group = exchange.groupOfQueue[owner]
        let target = group.push(FilledChunk(index: Int32(index), owner: Int32(owner), packets: 1, sequence: sequence)).target
        let filled = group.pop(for: target)!
        group.processed(filled, by: target)
        return target
    }

    /// Chunks `owner` has sent to buddies so far.
    public func offloadedOut(of owner: Int) -> UInt64 { exchange.snapshot(of: owner).counts.offloadedOut }

    /// Capture and lease one block on queue 0: copy it into a chunk, queue it, lease it, and end
    /// the lease (processed, recycled). Returns the block's packets.
    @inlinable public func copyOut(block: UnsafeMutableRawPointer, sequence: UInt64) -> Int {
        precondition(exchange.fill(from: block, queue: 0, sequence: sequence, waitingUpTo: 0) != nil)
        let lease = exchange.lease(for: 0, waiting: .none)!
        return lease.packetCount
    }

    /// The hybrid pool's zero-copy path on queue 0: block `ringBlock` of the harness's ring is
    /// retired again (its count and status put back, as the kernel would), lent in place with a
    /// chunk reserved, leased, walked into `handler` where it lies, and the lease ended (the block
    /// given back, the chunk recycled). Returns the packets walked.
    @inlinable public func lendPath<H: PacketHandler>(ringBlock: Int, sequence: UInt64, into handler: inout H) -> Int {
        let loans = exchange.loans(of: 0)!
        let block = loans.block(ringBlock)
        block.storeBytes(of: ringPackets[ringBlock], toByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        block.storeBytes(of: BlockWalk.statusUser, toByteOffset: Int(CWirecapLinux_BLOCK_STATUS), as: UInt32.self)
        precondition(exchange.lend(ringBlock: ringBlock, queue: 0, sequence: sequence, waitingUpTo: 0) != nil)
        let lease = exchange.lease(for: 0, waiting: .none)!
        return lease.walk(&handler)
    }

    /// The whole pool path on queue 0: capture, lease, walk the copy into `handler`, end the
    /// lease. Returns the packets walked.
    @inlinable public func poolPath<H: PacketHandler>(block: UnsafeMutableRawPointer, sequence: UInt64, into handler: inout H) -> Int {
        precondition(exchange.fill(from: block, queue: 0, sequence: sequence, waitingUpTo: 0) != nil)
        let lease = exchange.lease(for: 0, waiting: .none)!
        return lease.walk(&handler)
    }
}

extension PoolHarness {
    /// Pushes a filled-chunk descriptor for `owner` and leaves it waiting (to build a backlog).
    public func queueWithoutPopping(owner: Int, index: Int, sequence: UInt64) {
        exchange.groupOfQueue[owner].push(FilledChunk(index: Int32(index), owner: Int32(owner), packets: 1, sequence: sequence))
    }
}
