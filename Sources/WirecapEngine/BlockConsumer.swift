/// What a capture thread does with each retired ring block.
@usableFromInline
package protocol BlockConsumer {
    /// Takes the packets of a retired block out of the ring. Returns false when there is no room
    /// right now (after a bounded wait): the block then stays in the ring and is offered again,
    /// so a full pool pushes back into the ring rather than losing packets in the library.
    mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool
}

/// Plain ring consumer: the handler runs on the capture thread, on the ring memory itself.
@usableFromInline
package struct WalkingConsumer<H: PacketHandler>: BlockConsumer {
    @usableFromInline package var handler: H
    @usableFromInline let snapLength: Int

    @inlinable package init(handler: H, snapLength: Int) {
        self.handler = handler
        self.snapLength = snapLength
    }

    @inlinable
    package mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool {
        _ = BlockWalk.walk(block: block, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
        return true
    }
}

/// WireCAP capture: copy the block into a free chunk of the queue's pool and queue the chunk for
/// a consumer of the buddy group (its own, unless the offload policy picks a buddy); see
/// `ChunkExchange.fill`. The ring block goes back to the kernel at once, so no handler, however
/// slow or however long it keeps a chunk, holds ring memory.
@usableFromInline
package struct CopyingConsumer: BlockConsumer {
    @usableFromInline let exchange: ChunkExchange
    @usableFromInline var sequence: UInt64 = 0
    /// How long one `consume` waits for a recycle before giving the loop a turn.
    @usableFromInline static let waitNanoseconds: UInt64 = 2_000_000

    @inlinable package init(exchange: ChunkExchange) { self.exchange = exchange }

    @inlinable
    package mutating func consume(block: UnsafeMutableRawPointer, queue: Int) -> Bool {
        guard exchange.fill(from: block, queue: queue, sequence: sequence, waitingUpTo: Self.waitNanoseconds) else { return false }
        sequence &+= 1
        return true
    }
}
