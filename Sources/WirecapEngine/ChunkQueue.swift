/// WireCAP's capture queue: the filled chunks of one queue waiting for its work thread, and the
/// packet counts of the path from ring to handler.
///
/// Every count changes under the one lock that moves a chunk, so a snapshot always satisfies
/// `captured == queued + inHandler + processed`: a chunk is never counted twice or not at all.
public final class ChunkQueue: @unchecked Sendable {
    // @unchecked: everything below `monitor` is only touched with it held.
    public let queue: Int
    public let capacity: Int
    @usableFromInline let monitor = Monitor()
    private let slots: UnsafeMutablePointer<FilledChunk>
    private var head = 0
    private var count = 0
    private var finished = false
    private var counts = Counts()

    public struct Counts: Sendable, Equatable {
        /// Packets taken from the ring into chunks.
        public var captured: UInt64 = 0
        /// Packets in chunks waiting in this queue.
        public var queued: UInt64 = 0
        /// Packets of the chunk the work thread is running the handler on.
        public var inHandler: UInt64 = 0
        /// Packets whose chunk the handler has finished with.
        public var processed: UInt64 = 0
        public var chunksQueued: UInt64 = 0
        public var chunksProcessed: UInt64 = 0
        /// The most chunks ever waiting at once.
        public var backlogMax: Int = 0
        /// Chunks waiting now.
        public var backlog: Int = 0
    }

    public init(queue: Int, capacity: Int) {
        precondition(capacity > 0)
        self.queue = queue
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: FilledChunk(index: 0, owner: 0, packets: 0, sequence: 0), count: capacity)
    }

    deinit { slots.deallocate() }

    /// Capture: appends a filled chunk (capacity is the number of chunks that exist, so it fits).
    public func push(_ chunk: FilledChunk) {
        monitor.lock()
        precondition(count < capacity && !finished, "capture queue \(queue) overflow or push after finish")
        slots[(head + count) % capacity] = chunk
        count += 1
        counts.captured &+= UInt64(chunk.packets)
        counts.queued &+= UInt64(chunk.packets)
        counts.chunksQueued &+= 1
        if count > counts.backlogMax { counts.backlogMax = count }
        if count == 1 { monitor.broadcast() }
        monitor.unlock()
    }

    /// The next chunk for the work thread; waits for one; nil once finished and empty.
    public func pop() -> FilledChunk? {
        monitor.lock()
        defer { monitor.unlock() }
        while count == 0 {
            if finished { return nil }
            monitor.wait(nanoseconds: 100_000_000)
        }
        let chunk = slots[head]
        head = (head + 1) % capacity
        count -= 1
        counts.queued &-= UInt64(chunk.packets)
        counts.inHandler &+= UInt64(chunk.packets)
        return chunk
    }

    /// The handler is done with `chunk` (recycled or kept).
    public func processed(_ chunk: FilledChunk) {
        monitor.lock()
        counts.inHandler &-= UInt64(chunk.packets)
        counts.processed &+= UInt64(chunk.packets)
        counts.chunksProcessed &+= 1
        monitor.unlock()
    }

    /// No more pushes: the work thread exits once the queue is empty.
    public func finish() {
        monitor.lock()
        finished = true
        monitor.broadcast()
        monitor.unlock()
    }

    public var backlog: Int { monitor.withLock { count } }

    public func snapshot() -> Counts {
        monitor.withLock {
            var c = counts
            c.backlog = count
            return c
        }
    }
}
