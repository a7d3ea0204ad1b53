/// What became of a retired block a `BlockConsumer` was offered.
@usableFromInline
package enum BlockDisposition: Sendable, Equatable {
    /// Its packets are taken; the capture thread gives it back to the kernel now.
    case taken
    /// Its packets are taken and the block is lent in place: whoever ends the lease gives it back.
    case lent
    /// No room right now (after a bounded wait): it stays in the ring and is offered again, so a
    /// full pool pushes back into the ring rather than losing packets in the library.
    case notNow
}

/// What a capture thread does with each retired ring block.
@usableFromInline
package protocol BlockConsumer {
    /// Takes the packets of retired block `index` (at `block`) out of the ring, or says why not.
    /// `readyAfter`: how many more retired blocks wait behind it (the kernel's lead).
    mutating func consume(block: UnsafeMutableRawPointer, index: Int, readyAfter: Int, queue: Int) -> BlockDisposition
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
    package mutating func consume(block: UnsafeMutableRawPointer, index: Int, readyAfter: Int, queue: Int) -> BlockDisposition {
        _ = BlockWalk.walk(block: block, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
        return .taken
    }
}

/// WireCAP capture with the hybrid pool: the block becomes a chunk queued for a consumer of the
/// buddy group (its own, unless the offload policy picks a buddy), either lent in place while the
/// consumer keeps up (`ChunkExchange.lend`, zero copy) or copied into a free pool chunk
/// (`ChunkExchange.fill`) when it falls behind or the ring runs short. A copied block goes back
/// to the kernel at once, so however slow a handler, or however long it keeps a chunk, it holds
/// at most the few blocks `LentBlocks` allows.
@usableFromInline
package struct PoolConsumer: BlockConsumer {
    @usableFromInline let exchange: ChunkExchange
    @usableFromInline let loans: LentBlocks?
    /// Shared with the work thread, which may make chunks of this queue's blocks too: the chunk
    /// sequence lives there (`RingCursor`).
    @usableFromInline let cursor: RingCursor
    /// The owner's backlog after the last push: stale by the consumer's progress since, so it is
    /// read again (one lock round trip) before it can forbid a loan.
    @usableFromInline var backlog = 0
    /// How long one `consume` waits for a recycle before giving the loop a turn.
    @usableFromInline static let waitNanoseconds: UInt64 = 2_000_000

    @inlinable package init(exchange: ChunkExchange, queue: Int, cursor: RingCursor = RingCursor()) {
        self.exchange = exchange
        loans = exchange.loans(of: queue)
        self.cursor = cursor
    }

    @inlinable
    package mutating func consume(block: UnsafeMutableRawPointer, index: Int, readyAfter: Int, queue: Int) -> BlockDisposition {
        if let loans, backlog > loans.limit { backlog = exchange.backlog(of: queue) }
        if let loans, loans.mayLend(backlog: backlog, readyAfter: readyAfter) {
            guard
                let after = exchange.lend(
                    ringBlock: index, queue: queue, sequence: cursor.sequence, waitingUpTo: Self.waitNanoseconds)
            else { return .notNow }
            backlog = after
            cursor.sequence &+= 1
            return .lent
        }
        guard let after = exchange.fill(from: block, queue: queue, sequence: cursor.sequence, waitingUpTo: Self.waitNanoseconds)
        else { return .notNow }
        backlog = after
        cursor.sequence &+= 1
        // The consumer is falling behind: loans still waiting in its queue would hold ring
        // blocks for as long as the queue takes, so they become copies now, not only once the
        // kernel comes near them. (Those already in a handler stay.)
        if let loans, backlog > loans.limit, loans.anyOut {
            _ = exchange.reclaimLoans(of: queue)
        }
        return .taken
    }
}
