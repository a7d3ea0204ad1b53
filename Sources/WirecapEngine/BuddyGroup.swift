import CWirecapLinux
import WirecapLinux

/// A WireCAP buddy group: the capture queues of the queues that share work, and the counts of the
/// path from ring to handler, kept per owner queue.
///
/// Each member has a `CaptureQueue` of filled chunks, drained by its consumer. A member's capture
/// thread pushes each chunk it fills; with an offload policy, a chunk may land in a buddy's
/// capture queue instead (WireCAP's advanced mode). Without offloading (basic mode) every queue
/// is a group of one: the same code, with no buddy to choose. Whoever processes a chunk, its packets are
/// counted for the queue that captured it (its owner), and it goes back to the owner's pool, so
/// `received == processed + delivery_drops + in_flight` holds per queue.
///
/// Everything moves under one lock per group, taken once per chunk and never per packet: a
/// snapshot is always consistent, and a decision sees every member's backlog at once.
@usableFromInline
package final class BuddyGroup: @unchecked Sendable {
    // @unchecked: every mutable field is touched only with `monitor` held.
    /// Global queue indices of the members.
    package let members: [Int]
    package let policy: OffloadPolicy?
    @usableFromInline let monitor = Monitor()
    private let memberList: UnsafeMutableBufferPointer<Int>
    private let backlogs: UnsafeMutableBufferPointer<Int>
    private let offloading: UnsafeMutableBufferPointer<Bool>
    // Guarded by `monitor`, so the per-access exclusivity checks would only cost time.
    @exclusivity(unchecked) private var fifos: [CaptureQueue]
    @exclusivity(unchecked) private var counts: [Counts]
    @exclusivity(unchecked) private var finishedCaptures = 0
    /// Per queue (global index), the eventfds signalled when its capture queue goes from empty
    /// to non-empty and when the group's captures end: readers that sleep in poll (the pcap
    /// facade's readers, each with its own, which is also its selectable descriptor).
    @exclusivity(unchecked) private var notifiers: [[EventFD]]

    /// Per queue. Packet counts are by owner; chunk counts say which thread did what.
    package struct Counts: Sendable, Equatable {
        /// Packets this queue's capture thread took from its ring into chunks.
        package var captured: UInt64 = 0
        /// Packets of chunks this queue owns, waiting in some member's capture queue.
        package var queued: UInt64 = 0
        /// Packets of chunks this queue owns that a handler is working on.
        package var inHandler: UInt64 = 0
        /// Packets of chunks this queue owns that a handler has finished with.
        package var processed: UInt64 = 0
        /// Chunks this queue's capture thread sent to a buddy.
        package var offloadedOut: UInt64 = 0
        /// Chunks this queue's work thread took from buddies.
        package var offloadedIn: UInt64 = 0
        /// Chunks this queue's work thread processed, its own and its buddies'.
        package var chunksProcessed: UInt64 = 0
        /// Chunks this queue's capture thread filled: the sequence number its next chunk gets.
        package var chunksCaptured: UInt64 = 0
        /// Chunks waiting in this queue's capture queue now, and at most.
        package var backlog: Int = 0
        package var backlogMax: Int = 0
    }

    /// - Parameters:
    ///   - queueCount: all queues of the capture (global indices run 0..<queueCount).
    ///   - capacities: every queue's pool size, by global index: a member's capture queue must
    ///     hold every chunk of the group.
    ///   - capacity: chunks one member may have waiting before it counts as full (its pool size);
    ///     the high mark is `threshold x capacity`.
    package init(members: [Int], queueCount: Int, capacities: [Int], capacity: Int, threshold: Double?) {
        precondition(!members.isEmpty && members.allSatisfy { (0..<queueCount).contains($0) })
        self.members = members
        policy = threshold.map { OffloadPolicy(threshold: $0, capacity: capacity) }
        memberList = .allocate(capacity: members.count)
        _ = memberList.initialize(from: members)
        backlogs = .allocate(capacity: queueCount)
        backlogs.initialize(repeating: 0)
        offloading = .allocate(capacity: queueCount)
        offloading.initialize(repeating: false)
        let total = members.reduce(0) { $0 + capacities[$1] }
        fifos = (0..<queueCount).map { members.contains($0) ? CaptureQueue(capacity: total) : CaptureQueue(capacity: 1) }
        counts = Array(repeating: Counts(), count: queueCount)
        notifiers = Array(repeating: [], count: queueCount)
    }

    deinit {
        memberList.deallocate()
        backlogs.deallocate()
        offloading.deallocate()
    }

    /// Capture: queues a chunk that `chunk.owner` filled, on its own capture queue or, when the
    /// policy says so, a buddy's. Returns the member that got it, and the owner's backlog after
    /// the push (the capture thread lends its next block in place only while that is short).
    @usableFromInline @discardableResult
    package func push(_ chunk: FilledChunk) -> (target: Int, ownerBacklog: Int) {
        let owner = Int(chunk.owner)
        monitor.lock()
        defer { monitor.unlock() }
        var target = owner
        if let policy {
            target = policy.target(
                owner: owner, members: UnsafeBufferPointer(memberList), backlogs: UnsafeBufferPointer(backlogs), offloading: offloading)
        }
        fifos[target].push(chunk)
        backlogs[target] += 1
        counts[owner].captured &+= UInt64(chunk.packets)
        counts[owner].chunksCaptured &+= 1
        counts[owner].queued &+= UInt64(chunk.packets)
        if target != owner { counts[owner].offloadedOut &+= 1 }
        if backlogs[target] > counts[target].backlogMax { counts[target].backlogMax = backlogs[target] }
        if backlogs[target] == 1 {
            monitor.broadcast()
            // Once per empty-to-non-empty transition, not per chunk: a reader that polls resets
            // the eventfd before it looks at the queues, and signals it again itself if it
            // leaves chunks behind.
            for event in notifiers[target] { event.signal() }
        }
        return (target, backlogs[owner])
    }

    /// The owner's work thread takes a block of its own ring itself (`ReceiveQueue.serveWorkThread`):
    /// counted as captured and in a handler at once, never queued. Refused (false) while chunks
    /// wait in the owner's capture queue: they are older, and go first.
    @usableFromInline package func serve(_ chunk: FilledChunk) -> Bool {
        let owner = Int(chunk.owner)
        monitor.lock()
        defer { monitor.unlock() }
        guard fifos[owner].count == 0 else { return false }
        counts[owner].captured &+= UInt64(chunk.packets)
        counts[owner].chunksCaptured &+= 1
        counts[owner].inHandler &+= UInt64(chunk.packets)
        return true
    }

    /// The next chunk for `member`'s work thread; waits for one; nil once every capture thread
    /// of the group has finished and the member's capture queue is empty.
    @usableFromInline package func pop(for member: Int) -> FilledChunk? {
        monitor.lock()
        defer { monitor.unlock() }
        while fifos[member].count == 0 {
            if finishedCaptures == members.count { return nil }
            // Every push to an empty queue and every capture's end broadcasts: the time-out is
            // only a safety net, long so that an idle work thread costs a wake-up a second.
            monitor.wait(nanoseconds: 1_000_000_000)
        }
        return takeLocked(for: member)
    }

    private func takeLocked(for member: Int) -> FilledChunk {
        let chunk = fifos[member].pop()
        backlogs[member] -= 1
        let owner = Int(chunk.owner)
        counts[owner].queued &-= UInt64(chunk.packets)
        counts[owner].inHandler &+= UInt64(chunk.packets)
        if owner != member { counts[member].offloadedIn &+= 1 }
        return chunk
    }

    /// The next chunk for `member`, waiting at most `nanoseconds` for one; nil on time-out, or
    /// once finished and empty. For consumers that pull (the pcap facade) rather than run a work
    /// thread.
    package func pop(for member: Int, waitingUpTo nanoseconds: UInt64) -> FilledChunk? {
        monitor.lock()
        defer { monitor.unlock() }
        if fifos[member].count == 0 && nanoseconds > 0 {
            // A wake-up may be for another member's chunk: wait again until the deadline.
            let deadline = CWirecapLinux_monotonic_ns() &+ nanoseconds
            while fifos[member].count == 0 && finishedCaptures < members.count {
                let now = CWirecapLinux_monotonic_ns()
                if now >= deadline { break }
                monitor.wait(nanoseconds: deadline - now)
            }
        }
        guard fifos[member].count > 0 else { return nil }
        return takeLocked(for: member)
    }

    /// The hybrid pool's way back: every chunk of `owner` still waiting in a capture queue as a
    /// lent ring block is handed to `copy` (which copies it into its reserved pool chunk and gives
    /// the block back) and waits on as a pool chunk. Under the lock, so no consumer can take one
    /// half-way. Returns how many.
    package func reclaimLoans(of owner: Int, _ copy: (FilledChunk) -> Void) -> Int {
        monitor.lock()
        defer { monitor.unlock() }
        var reclaimed = 0
        for member in members {
            fifos[member].updateEach { chunk in
                guard chunk.isLent && Int(chunk.owner) == owner else { return }
                copy(chunk)
                chunk.ringBlock = -1
                reclaimed += 1
            }
        }
        return reclaimed
    }

    /// Signals `event` whenever `member`'s capture queue stops being empty, and once the group's
    /// captures have all finished, until `removeNotifier`. The group holds a reference, so the
    /// descriptor stays open while it may be signalled.
    package func addNotifier(_ event: EventFD, for member: Int) {
        monitor.withLock {
            notifiers[member].append(event)
            // A reader that arrives late must not sleep through chunks already waiting, or an end.
            if backlogs[member] > 0 || finishedCaptures == members.count { event.signal() }
        }
    }

    package func removeNotifier(_ event: EventFD, for member: Int) {
        monitor.withLock { notifiers[member].removeAll { $0 === event } }
    }

    /// `member`'s handler is done with `chunk` (recycled or kept).
    @usableFromInline package func processed(_ chunk: FilledChunk, by member: Int) {
        let owner = Int(chunk.owner)
        monitor.lock()
        counts[owner].inHandler &-= UInt64(chunk.packets)
        counts[owner].processed &+= UInt64(chunk.packets)
        counts[member].chunksProcessed &+= 1
        monitor.unlock()
    }

    /// A member's capture thread will push no more. Work threads end once all have finished
    /// (a buddy may still send them chunks until then) and their queue is empty.
    package func captureFinished() {
        monitor.lock()
        finishedCaptures += 1
        monitor.broadcast()
        if finishedCaptures == members.count {
            for member in members { for event in notifiers[member] { event.signal() } }
        }
        monitor.unlock()
    }

    package func backlog(of member: Int) -> Int { monitor.withLock { backlogs[member] } }

    /// Whether every member's capture thread has finished.
    package var capturesFinished: Bool { monitor.withLock { finishedCaptures == members.count } }

    package func snapshot(of queue: Int) -> Counts {
        monitor.withLock {
            var c = counts[queue]
            c.backlog = backlogs[queue]
            return c
        }
    }
}
