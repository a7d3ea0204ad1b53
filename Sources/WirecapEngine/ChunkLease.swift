import Synchronization

/// A filled chunk as it travels from a capture thread to whoever processes it.
@usableFromInline
package struct FilledChunk: Sendable, Equatable {
    /// Index in the owner's pool.
    @usableFromInline package var index: Int32
    /// The queue that captured the chunk and whose pool it returns to.
    @usableFromInline package var owner: Int32
    @usableFromInline package var packets: Int32
    /// Per-owner sequence number of captured chunks: 0, 1, 2, ...
    @usableFromInline package var sequence: UInt64
    /// The owner's ring block lent in place (`LentBlocks`), or -1: the packets are in the pool
    /// chunk `index`. A lent block's pool chunk is reserved for a copy if the handler keeps it.
    @usableFromInline package var ringBlock: Int32

    @usableFromInline package init(index: Int32, owner: Int32, packets: Int32, sequence: UInt64, ringBlock: Int32 = -1) {
        self.index = index
        self.owner = owner
        self.packets = packets
        self.sequence = sequence
        self.ringBlock = ringBlock
    }

    /// Whether the packets are still in the ring block they were captured in.
    @inlinable package var isLent: Bool { ringBlock >= 0 }
}

/// How long `CaptureEngine.nextChunk(for:waiting:)` waits when no filled chunk is there.
public enum ChunkWait: Sendable, Equatable {
    /// Not at all: a chunk if one is waiting, nil otherwise (non-blocking readers).
    case none
    /// Up to this long (a reader with a time-out, as pcap_dispatch).
    case upTo(Duration)
    /// Until a chunk comes, or until every capture thread that could send one has stopped and
    /// nothing is left: nil then means the capture is over (a work thread's loop).
    case untilCaptureEnds
}

/// A filled chunk lent to one consumer: the packets of one retired ring block, either the ring
/// block itself (lent in place while the backlog is short) or a copy in pool memory with the
/// block's own layout, so the same walk reads both and the handler cannot tell them apart.
///
/// The lease is the chunk life cycle's one owner. It is not copyable, so it ends exactly once:
/// `recycle()` (or simply letting it go out of scope) marks its packets processed and returns
/// the chunk to its owner's pool; `keep()` marks them processed and turns the lease into a
/// `KeptChunk` that holds the memory until it is recycled, from any thread. Nobody else touches
/// pools or capture queues.
///
/// Walk it once: putting VLAN tags back rewrites the headroom in place.
public struct ChunkLease: ~Copyable, @unchecked Sendable {
    // @unchecked: a lease has one owner at a time, and the memory it lends is out of the pool
    // until the lease ends.
    @usableFromInline let exchange: ChunkExchange
    @usableFromInline var filled: FilledChunk
    /// The queue whose consumer holds the lease (the owner, or a buddy it offloaded to).
    public let queue: Int
    /// The chunk's bytes, laid out as a TPACKET_V3 block (block descriptor, then packets): the
    /// ring block itself while it is lent in place, else its copy in the pool.
    @inlinable public var block: UnsafeMutableRawPointer { bytes }
    @usableFromInline var bytes: UnsafeMutableRawPointer
    @usableFromInline var keeps = false

    @inlinable
    init(exchange: ChunkExchange, filled: FilledChunk, queue: Int) {
        self.exchange = exchange
        self.filled = filled
        self.queue = queue
        self.bytes = exchange.address(of: filled)
    }

    /// The queue that captured the chunk (its packets are counted for it, and the chunk goes
    /// back to its pool).
    @inlinable public var owner: Int { Int(filled.owner) }
    /// The owner's chunk sequence number (0, 1, 2, ...): with offloading, chunks of one queue
    /// may be processed out of order; this restores it.
    @inlinable public var sequence: UInt64 { filled.sequence }
    @inlinable public var packetCount: Int { Int(filled.packets) }
    /// The snap length the engine cut packets to.
    @inlinable public var snapLength: Int { exchange.snapLength }

    /// Hands every packet to `handler` (tagged with the owner queue), then `blockDone(queue:)`.
    @inlinable @discardableResult
    public func walk<H: PacketHandler>(_ handler: inout H) -> Int {
        BlockWalk.walk(block: block, queue: owner, snapLength: exchange.snapLength, reinsertVLAN: true, handler: &handler)
    }

    /// Hands packets `first..<first+limit` to `handler`, for a reader that stops part-way
    /// through a chunk (pcap_dispatch with a count) and resumes later. No `blockDone`.
    @inlinable @discardableResult
    public func walk<H: PacketHandler>(first: Int, limit: Int, _ handler: inout H) -> Int {
        BlockWalk.walk(block: block, queue: owner, snapLength: exchange.snapLength, first: first, limit: limit, handler: &handler)
    }

    /// Whether the chunk is a ring block lent in place (not yet copied into the pool).
    @inlinable public var isInRing: Bool { filled.isLent }

    /// Moves the chunk out of the ring if it is lent there (one copy into the pool chunk reserved
    /// for it; the block goes back to the kernel), keeping the lease: for a reader that holds a
    /// chunk between calls, such as pcap_dispatch with a count, where the hold has no bound and
    /// must not let the kernel reach a held block. `block` then points at the copy.
    @inlinable public mutating func moveOutOfRing() {
        guard filled.isLent else { return }
        filled = exchange.copyOut(filled)
        bytes = exchange.address(of: filled)
    }

    /// Ends the lease: the packets are processed, the chunk goes back to its owner's pool.
    /// The same happens when a lease goes out of scope.
    @inlinable public consuming func recycle() {}

    /// Ends the lease but keeps the chunk: the packets count as processed, the memory stays out
    /// of the pool until the returned `KeptChunk` is recycled (or released). A kept chunk never
    /// holds ring memory, so it never stalls capture; it only shrinks the pool while it lives: a
    /// chunk still in its ring block is copied into the pool chunk reserved for it, and the block
    /// goes back to the kernel (so `block` moves; the kept chunk's `block` is the copy).
    @inlinable public consuming func keep() -> KeptChunk {
        keeps = true
        if filled.isLent { filled = exchange.copyOut(filled) }
        return KeptChunk(exchange: exchange, filled: filled)
    }

    @inlinable deinit { exchange.end(filled, by: queue, recycling: !keeps) }
}

/// A chunk the application kept after its lease ended (`ChunkLease.keep()`): its memory stays
/// valid, and out of its pool, until `recycle()` or until the last reference goes. Recycling is
/// done once whatever the callers do, from any thread.
public final class KeptChunk: Sendable {
    @usableFromInline let exchange: ChunkExchange
    @usableFromInline let filled: FilledChunk
    private let recycled = Atomic<Bool>(false)

    @usableFromInline
    init(exchange: ChunkExchange, filled: FilledChunk) {
        self.exchange = exchange
        self.filled = filled
    }

    public var owner: Int { Int(filled.owner) }
    public var sequence: UInt64 { filled.sequence }
    public var packetCount: Int { Int(filled.packets) }
    /// The chunk's bytes, laid out as a TPACKET_V3 block; valid until `recycle()`.
    public var block: UnsafeMutableRawPointer { exchange.address(of: filled) }

    /// Returns the chunk to its owner's pool. Only the first call does anything.
    public func recycle() {
        if !recycled.exchange(true, ordering: .acquiringAndReleasing) { exchange.recycle(filled) }
    }

    deinit { recycle() }
}

/// The application's code in pool mode: runs on a queue's work thread, once per chunk. The
/// handler owns the lease: it ends when `handle` returns, unless the handler kept the chunk
/// (`let kept = chunk.keep()`).
public protocol ChunkHandler: SendableMetatype {
    mutating func handle(_ chunk: consuming ChunkLease)
}

/// Runs a `PacketHandler` over every packet of each chunk; the chunk is recycled after.
public struct PacketsOfChunks<Inner: PacketHandler>: ChunkHandler {
    public var inner: Inner

    @inlinable public init(_ inner: Inner) { self.inner = inner }

    @inlinable
    public mutating func handle(_ chunk: consuming ChunkLease) {
        chunk.walk(&inner)
    }
}
