/// A filled chunk as it travels from a capture thread to a work thread.
public struct FilledChunk: Sendable, Equatable {
    /// Index in the owner's pool.
    public var index: Int32
    /// The queue that captured the chunk and whose pool it returns to.
    public var owner: Int32
    public var packets: Int32
    /// Per-owner sequence number of captured chunks: 0, 1, 2, ...
    public var sequence: UInt64

    public init(index: Int32, owner: Int32, packets: Int32, sequence: UInt64) {
        self.index = index
        self.owner = owner
        self.packets = packets
        self.sequence = sequence
    }
}

/// A chunk handed to a `ChunkHandler`: one retired ring block's packets, copied into pool memory
/// with the block's own layout, so the same walk reads both.
///
/// Walk it once (`walk`): putting VLAN tags back rewrites the headroom in place. A handler that
/// returns `.keep` owns the chunk until it calls `recycle()`, from any thread.
public struct Chunk: @unchecked Sendable {
    // @unchecked: a chunk has one owner at a time (the handler, or whoever it hands it to).
    public let pool: ChunkPool
    public let filled: FilledChunk
    /// The queue whose work thread is processing it.
    public let queue: Int
    @usableFromInline let snapLength: Int

    @inlinable
    init(pool: ChunkPool, filled: FilledChunk, queue: Int, snapLength: Int) {
        self.pool = pool
        self.filled = filled
        self.queue = queue
        self.snapLength = snapLength
    }

    @inlinable public var owner: Int { Int(filled.owner) }
    @inlinable public var sequence: UInt64 { filled.sequence }
    @inlinable public var packetCount: Int { Int(filled.packets) }
    @inlinable public var memory: UnsafeMutableRawPointer { pool.address(of: Int(filled.index)) }

    /// Hands every packet to `handler`, tagged with the owner queue's id.
    @inlinable @discardableResult
    public func walk<H: PacketHandler>(_ handler: inout H) -> Int {
        BlockWalk.walk(block: memory, queue: owner, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
    }

    /// Returns the chunk to its owner's pool. Call exactly once for a kept chunk.
    public func recycle() { pool.recycle(Int(filled.index)) }
}

/// What a handler wants done with a chunk once `handle` returns.
public enum ChunkDisposition: Sendable {
    /// Back to the pool now.
    case recycle
    /// The handler keeps it and will call `Chunk.recycle()` later, from any thread.
    case keep
}

/// The application's code in pool mode: runs on the queue's work thread, once per chunk.
public protocol ChunkHandler: SendableMetatype {
    mutating func handle(_ chunk: Chunk) -> ChunkDisposition
}

/// Runs a `PacketHandler` over every packet of each chunk, then recycles the chunk.
public struct PacketsOfChunks<Inner: PacketHandler>: ChunkHandler {
    public var inner: Inner

    @inlinable public init(_ inner: Inner) { self.inner = inner }

    @inlinable
    public mutating func handle(_ chunk: Chunk) -> ChunkDisposition {
        chunk.walk(&inner)
        return .recycle
    }
}
