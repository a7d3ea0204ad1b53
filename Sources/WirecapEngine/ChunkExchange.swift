import CWirecapLinux
import WirecapLinux

/// Pool mode's path from the capture threads to the consumers, and the one owner of the chunk
/// life cycle (WireCAP's open, capture, recycle):
///
///   capture thread q: `fill` ─ take a free chunk of pool q, copy the retired block into it,
///                             push it to a capture queue of q's buddy group (q's own, or a
///                             buddy's when the offload policy says so)
///   consumer of queue m: `lease` ─ pop the next chunk of m's capture queue ─► `ChunkLease`
///   the lease ends:      `end` ─ its packets count as processed (for the owner), and the chunk
///                             goes back to the owner's pool unless it was kept (`KeptChunk`)
///
/// Work threads, the pcap facade and any other reader go through `lease`; nothing outside this
/// file and the types it owns (`ChunkPool`, `BuddyGroup`) touches a pool or a capture queue.
@usableFromInline
package final class ChunkExchange: Sendable {
    /// Every queue's pool, by queue index.
    @usableFromInline let pools: [ChunkPool]
    /// The buddy group each queue belongs to, by queue index (groups are shared).
    @usableFromInline let groupOfQueue: [BuddyGroup]
    /// The distinct groups.
    let groups: [BuddyGroup]
    @usableFromInline let snapLength: Int

    /// - Parameters:
    ///   - pools: one per queue, indexed by queue.
    ///   - groups: the buddy groups as lists of queue indices, covering every queue once
    ///     (without offloading: every queue alone).
    ///   - threshold: the offload threshold T (nil: no offloading).
    package init(pools: [ChunkPool], groups: [[Int]], threshold: Double?, snapLength: Int) {
        precondition(groups.flatMap { $0 }.sorted() == Array(pools.indices), "every queue in exactly one group")
        self.pools = pools
        self.snapLength = snapLength
        let made = groups.map {
            BuddyGroup(
                members: $0, queueCount: pools.count, capacities: pools.map(\.chunkCount),
                capacity: pools[$0[0]].chunkCount, threshold: threshold)
        }
        self.groups = made
        groupOfQueue = pools.indices.map { queue in made.first { $0.members.contains(queue) }! }
    }

    @inlinable @inline(__always)
    func address(of chunk: FilledChunk) -> UnsafeMutableRawPointer {
        pools[Int(chunk.owner)].address(of: Int(chunk.index))
    }

    // MARK: the capture side

    /// Capture: copies a retired block of `queue`'s ring into a free chunk of its pool (one bulk
    /// copy of the used length, keeping the block's layout) and queues it. Returns false when no
    /// chunk came free within `nanoseconds`: the block then stays in the ring (back-pressure).
    @inlinable
    func fill(from block: UnsafeMutableRawPointer, queue: Int, sequence: UInt64, waitingUpTo nanoseconds: UInt64) -> Bool {
        let pool = pools[queue]
        guard let chunk = pool.take(waitingUpTo: nanoseconds) else { return false }
        let length = min(Int(block.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)), pool.chunkSize)
        pool.address(of: chunk).copyMemory(from: block, byteCount: length)
        // The chunk's used length is what was copied: the walk bounds every packet by it.
        pool.address(of: chunk).storeBytes(of: UInt32(length), toByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)
        let packets = block.load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        groupOfQueue[queue].push(
            FilledChunk(index: Int32(chunk), owner: Int32(queue), packets: Int32(clamping: packets), sequence: sequence))
        return true
    }

    /// `queue`'s capture thread will fill no more chunks.
    @usableFromInline
    func captureFinished(queue: Int) { groupOfQueue[queue].captureFinished() }

    // MARK: the consumer side

    /// The next filled chunk for `queue`'s consumer, lent until the lease ends.
    @usableFromInline
    package func lease(for queue: Int, waiting: ChunkWait) -> ChunkLease? {
        let group = groupOfQueue[queue]
        let filled: FilledChunk?
        switch waiting {
        case .none:
            filled = group.pop(for: queue, waitingUpTo: 0)
        case .upTo(let duration):
            filled = group.pop(for: queue, waitingUpTo: Self.nanoseconds(duration))
        case .untilCaptureEnds:
            filled = group.pop(for: queue)
        }
        guard let filled else { return nil }
        return ChunkLease(exchange: self, filled: filled, queue: queue)
    }

    /// The end of a lease: the packets are processed; the chunk is recycled unless kept.
    @usableFromInline
    func end(_ chunk: FilledChunk, by member: Int, recycling: Bool) {
        groupOfQueue[member].processed(chunk, by: member)
        if recycling { recycle(chunk) }
    }

    @usableFromInline
    func recycle(_ chunk: FilledChunk) { pools[Int(chunk.owner)].recycle(Int(chunk.index)) }

    /// Chunks waiting for `queue`'s consumer.
    func backlog(of queue: Int) -> Int { groupOfQueue[queue].backlog(of: queue) }

    /// Whether any queue has chunks waiting.
    var hasBacklog: Bool { pools.indices.contains { backlog(of: $0) > 0 } }

    /// Whether every capture thread has finished (nothing more will be filled).
    var capturesFinished: Bool { groups.allSatisfy(\.capturesFinished) }

    /// Signals `event` whenever `queue`'s capture queue goes from empty to non-empty, and when
    /// its group's captures have ended, until `removeNotifier`.
    func addNotifier(_ event: EventFD, for queue: Int) { groupOfQueue[queue].addNotifier(event, for: queue) }

    func removeNotifier(_ event: EventFD, for queue: Int) { groupOfQueue[queue].removeNotifier(event, for: queue) }

    /// The sequence number below which `queue`'s chunks were filled before now, counting the
    /// blocks still in its ring (`ringBlocks`), each of which becomes exactly one chunk.
    func sequenceBound(of queue: Int, ringBlocks: Int) -> UInt64 {
        groupOfQueue[queue].snapshot(of: queue).chunksCaptured + UInt64(ringBlocks)
    }

    func snapshot(of queue: Int) -> (pool: ChunkPool, counts: BuddyGroup.Counts) {
        (pools[queue], groupOfQueue[queue].snapshot(of: queue))
    }

    /// A duration in nanoseconds for a wait: 0 for a negative one, saturating for a huge one.
    package static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        // Saturate: a huge time-out means "a very long time", never a trap.
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? UInt64.max / 2 : whole + UInt64(attoseconds / 1_000_000_000)
    }
}
