/// WireCAP's capture queue: the FIFO of filled chunks waiting for one queue's consumer (its
/// work thread, or a reader that pulls). Its own queue's capture thread appends to it and, with
/// offloading, so do its buddies'; the `BuddyGroup` that owns it keeps it under the group's lock.
///
/// A ring buffer sized for every chunk of the group at open, so a push never allocates and never
/// finds it full: a chunk exists only once, in one pool.
struct CaptureQueue {
    private var slots: [FilledChunk]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        slots = Array(repeating: FilledChunk(index: 0, owner: 0, packets: 0, sequence: 0), count: capacity)
    }

    mutating func push(_ chunk: FilledChunk) {
        slots[(head + count) % slots.count] = chunk
        count += 1
    }

    /// Lets `body` change every waiting chunk in place, oldest first (the capture thread turns
    /// its waiting loans into copies this way: `BuddyGroup.reclaimLoans`).
    mutating func updateEach(_ body: (inout FilledChunk) -> Void) {
        for i in 0..<count { body(&slots[(head + i) % slots.count]) }
    }

    mutating func pop() -> FilledChunk {
        let chunk = slots[head]
        head = (head + 1) % slots.count
        count -= 1
        return chunk
    }
}
