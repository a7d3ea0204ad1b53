import CWirecapLinux
import WirecapLinux

/// Pool mode's path from the capture threads to the consumers, and the one owner of the chunk
/// life cycle (WireCAP's open, capture, recycle):
///
///   capture thread q: `lend` ─ reserve a free chunk of pool q, push the retired ring block
///                             itself (zero copy, while q's backlog is short: `LentBlocks`)
///                      or `fill` ─ take a free chunk of pool q and copy the block into it;
///                             either way to a capture queue of q's buddy group (q's own, or a
///                             buddy's when the offload policy says so)
///   consumer of queue m: `lease` ─ pop the next chunk of m's capture queue ─► `ChunkLease`
///   the lease ends:      `end` ─ its packets count as processed (for the owner), a lent ring
///                             block goes back to the kernel, and the chunk goes back to the
///                             owner's pool unless it was kept (`KeptChunk`; a lent block is
///                             copied into its reserved chunk first: `copyOut`)
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
    /// Per queue, its ring's blocks for lending in place; nil: every block is copied.
    @usableFromInline let lending: [LentBlocks]?

    /// - Parameters:
    ///   - pools: one per queue, indexed by queue.
    ///   - groups: the buddy groups as lists of queue indices, covering every queue once
    ///     (without offloading: every queue alone).
    ///   - threshold: the offload threshold T (nil: no offloading).
    ///   - lending: every queue's ring blocks, to lend in place (nil: copy every block).
    package init(pools: [ChunkPool], groups: [[Int]], threshold: Double?, snapLength: Int, lending: [LentBlocks]? = nil) {
        precondition(groups.flatMap { $0 }.sorted() == Array(pools.indices), "every queue in exactly one group")
        precondition(lending == nil || lending!.count == pools.count, "a ring per queue")
        self.pools = pools
        self.lending = lending
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
        if chunk.isLent, let lending { return lending[Int(chunk.owner)].block(Int(chunk.ringBlock)) }
        return pools[Int(chunk.owner)].address(of: Int(chunk.index))
    }

    // MARK: the capture side

    /// Capture: copies a retired block of `queue`'s ring into a free chunk of its pool (one bulk
    /// copy of the used length, keeping the block's layout) and queues it. Returns the owner's
    /// backlog after the push, or nil when no chunk came free within `nanoseconds`: the block then
    /// stays in the ring (back-pressure).
    @inlinable
    func fill(from block: UnsafeMutableRawPointer, queue: Int, sequence: UInt64, waitingUpTo nanoseconds: UInt64) -> Int? {
        let pool = pools[queue]
        guard let chunk = pool.take(waitingUpTo: nanoseconds) else { return nil }
        Self.copy(block, into: pool.address(of: chunk), capacity: pool.chunkSize)
        lending?[queue].noteCopiedAtCapture()
        let packets = block.load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        return groupOfQueue[queue].push(
            FilledChunk(index: Int32(chunk), owner: Int32(queue), packets: Int32(clamping: packets), sequence: sequence)
        ).ownerBacklog
    }

    /// Capture, zero copy: queues ring block `ringBlock` of `queue` itself, with a pool chunk
    /// reserved for it (a copy if the handler keeps it). Returns the owner's backlog after the
    /// push, or nil when no chunk came free within `nanoseconds` (the block stays in the ring, not
    /// lent). The caller has checked `LentBlocks.mayLend`.
    @inlinable
    func lend(ringBlock: Int, queue: Int, sequence: UInt64, waitingUpTo nanoseconds: UInt64) -> Int? {
        guard let lending, let chunk = pools[queue].take(waitingUpTo: nanoseconds) else { return nil }
        let blocks = lending[queue]
        let packets = blocks.block(ringBlock).load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        blocks.markLent(ringBlock)
        return groupOfQueue[queue].push(
            FilledChunk(
                index: Int32(chunk), owner: Int32(queue), packets: Int32(clamping: packets), sequence: sequence,
                ringBlock: Int32(ringBlock))
        ).ownerBacklog
    }

    /// The work thread serving itself (`ReceiveQueue.serveWorkThread`): ring block `ringBlock` of
    /// `queue` goes straight to that thread's handler as a lent chunk numbered `sequence`, with a
    /// pool chunk reserved as for every loan. nil, and nothing changed, when no chunk is free or
    /// chunks wait in the queue's capture queue (they are older: they go first).
    @inlinable
    func serve(ringBlock: Int, queue: Int, sequence: UInt64) -> FilledChunk? {
        guard let lending, let chunk = pools[queue].take() else { return nil }
        let blocks = lending[queue]
        let packets = blocks.block(ringBlock).load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        let filled = FilledChunk(
            index: Int32(chunk), owner: Int32(queue), packets: Int32(clamping: packets), sequence: sequence,
            ringBlock: Int32(ringBlock))
        guard groupOfQueue[queue].serve(filled) else {
            pools[queue].recycle(chunk)
            return nil
        }
        blocks.markLent(ringBlock)
        return filled
    }

    /// One bulk copy of a block's used length, keeping its layout; the copy's used length is what
    /// was copied, since the walk bounds every packet by it.
    @inlinable
    static func copy(_ block: UnsafeMutableRawPointer, into chunk: UnsafeMutableRawPointer, capacity: Int) {
        let length = min(Int(block.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)), capacity)
        chunk.copyMemory(from: block, byteCount: length)
        chunk.storeBytes(of: UInt32(length), toByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)
    }

    /// `queue`'s ring blocks for lending in place, if this exchange lends.
    @inlinable
    func loans(of queue: Int) -> LentBlocks? { lending?[queue] }

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

    /// The end of a lease: the packets are processed; a lent ring block goes back to the kernel
    /// and the chunk reserved for it to the pool; a pool chunk is recycled unless kept.
    @usableFromInline
    func end(_ chunk: FilledChunk, by member: Int, recycling: Bool) {
        groupOfQueue[member].processed(chunk, by: member)
        if chunk.isLent, let lending { lending[Int(chunk.owner)].giveBack(Int(chunk.ringBlock)) }
        if recycling { recycle(chunk) }
    }

    /// A handler keeps a lent block: it is copied into the pool chunk reserved for it and goes
    /// back to the kernel, so a kept chunk never holds ring memory. Returns the chunk as a pool
    /// chunk.
    @usableFromInline
    func copyOut(_ chunk: FilledChunk) -> FilledChunk {
        guard chunk.isLent, lending != nil else { return chunk }
        copyBack(chunk)
        var copied = chunk
        copied.ringBlock = -1
        return copied
    }

    /// Copies a lent block into the pool chunk reserved for it and gives the block back.
    private func copyBack(_ chunk: FilledChunk) {
        guard let lending else { return }
        let blocks = lending[Int(chunk.owner)]
        let pool = pools[Int(chunk.owner)]
        Self.copy(blocks.block(Int(chunk.ringBlock)), into: pool.address(of: Int(chunk.index)), capacity: pool.chunkSize)
        blocks.noteCopiedLater()
        blocks.giveBack(Int(chunk.ringBlock))
    }

    /// Capture thread of `queue`, when the backlog passes the loan limit or the kernel comes near a
    /// lent block: the lent blocks still waiting for a consumer are copied into their reserved
    /// chunks and go back to the kernel.
    /// Those already in a handler stay lent (the handler is reading them). Returns how many.
    @usableFromInline
    func reclaimLoans(of queue: Int) -> Int {
        groupOfQueue[queue].reclaimLoans(of: queue) { copyBack($0) }
    }

    @usableFromInline
    func recycle(_ chunk: FilledChunk) { pools[Int(chunk.owner)].recycle(Int(chunk.index)) }

    /// Chunks waiting for `queue`'s consumer.
    @usableFromInline
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
