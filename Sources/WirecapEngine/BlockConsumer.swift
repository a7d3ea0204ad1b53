/// What a capture thread does with each retired ring block.
public protocol BlockConsumer {
    /// Takes the packets of a retired block out of the ring. Returns false when there is no room
    /// right now (after a bounded wait): the block then stays in the ring and is offered again,
    /// so a full pool pushes back into the ring rather than losing packets in the library.
    mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool
}

/// Plain ring consumer: the handler runs on the capture thread, on the ring memory itself.
public struct WalkingConsumer<H: PacketHandler>: BlockConsumer {
    public var handler: H
    @usableFromInline let snapLength: Int

    @inlinable public init(handler: H, snapLength: Int) {
        self.handler = handler
        self.snapLength = snapLength
    }

    @inlinable
    public mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool {
        _ = BlockWalk.walk(block: block, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
        return true
    }
}

/// WireCAP capture: copy the block into a free pool chunk (one bulk copy of the used length,
/// keeping the block's layout) and queue the chunk for a work thread of the buddy group (its own,
/// unless the offload policy picks a buddy). The ring block goes back
/// to the kernel at once, so no handler, however slow or however long it keeps a chunk, holds
/// ring memory.
public struct CopyingConsumer: BlockConsumer {
    @usableFromInline let pool: ChunkPool
    @usableFromInline let group: BuddyGroup
    @usableFromInline var sequence: UInt64 = 0
    /// How long one `consume` waits for a recycle before giving the loop a turn.
    @usableFromInline static let waitNanoseconds: UInt64 = 2_000_000

    @inlinable public init(pool: ChunkPool, group: BuddyGroup) {
        self.pool = pool
        self.group = group
    }

    @inlinable
    public mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool {
        guard let chunk = pool.take(waitingUpTo: Self.waitNanoseconds) else { return false }
        let length = min(Int(block.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)), pool.chunkSize)
        pool.address(of: chunk).copyMemory(from: block, byteCount: length)
        let packets = block.load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        group.push(FilledChunk(index: Int32(chunk), owner: Int32(queue), packets: Int32(packets), sequence: sequence))
        sequence &+= 1
        return true
    }
}
