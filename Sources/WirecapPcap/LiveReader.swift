import CWirecapLinux
import Synchronization
import WirecapEngine
import WirecapLinux

/// One reader of a live capture, read the libpcap way: by calling `dispatch` or `loop` on one
/// thread. A handle's own reader takes chunks from every queue in turn; the readers of
/// `PcapHandle.queues` each from one queue, so N threads read N queues at once (WireCAP's
/// independent capture handle per queue, as a multi-threaded IDS runs them). With buddy
/// offloading a queue's reader also gets the chunks an overloaded buddy's capture thread
/// offloaded to it: the engine's policy decides, at the moment a chunk is filled.
///
/// A reader that waits sleeps in poll on an eventfd of its own, which the buddy group signals
/// when one of its queues gets a chunk or the capture ends, and `breakLoop` signals to wake it.
/// The same eventfd is the selectable descriptor.
final class LiveReader: @unchecked Sendable {
    // @unchecked: the cursor, `rotation`, `nonblocking` and `socketErrorsReported` belong to the
    // thread inside a read (`HandleGate` lets one in at a time); `breaking` is atomic, the
    // eventfd and the capture are thread-safe.
    let capture: LiveCapture
    /// The queues this reader takes chunks from.
    let queues: [Int]
    /// The one queue of a per-queue reader; nil for the handle's reader of every queue.
    let queue: Int?
    /// A chunk read part-way by an earlier `dispatch` (a count or a break cut it).
    private var cursor: ChunkLease? = nil
    /// Where the held chunk resumes; 0 when none is held (a chunk walked to its end is recycled).
    private var cursorNext = 0
    private var rotation = 0
    let breaking = Atomic<Bool>(false)
    /// Signalled by the queues' buddy groups (a chunk came, the capture ended) and by
    /// `breakLoop`; what a waiting reader sleeps on, and the selectable descriptor.
    let wakeup: EventFD
    /// How many socket errors (`CaptureEngine.socketErrorCount`) this reader has reported.
    private var socketErrorsReported: UInt64 = 0
    var nonblocking = false

    /// The longest a waiting reader sleeps before it looks at the sockets' errors again (an
    /// interface that went down posts its error on the socket, not on the eventfd).
    static let errorCheckMilliseconds: UInt64 = 250

    init(capture: LiveCapture, queue: Int?) throws(PcapError) {
        self.capture = capture
        self.queue = queue
        queues = queue.map { [$0] } ?? Array(0..<capture.queueCount)
        do { wakeup = try EventFD() } catch { throw PcapError(engine: .system(error)) }
        for q in queues { capture.engine.notifyChunks(wakeup, for: q) }
        capture.readerOpened()
    }

    // MARK: reading

    /// Processes up to `count` packets (all that are there when `count` <= 0), waiting for the
    /// first up to the timeout (with timeout 0, until one comes, as libpcap on Linux) unless
    /// non-blocking; 0 when the timeout passes with nothing, as pcap_dispatch. `breakLoop()`
    /// ends the call after the packet in hand, or wakes it while it waits.
    /// `waitingAtMost`: a bound on the wait below the timeout (for `packets(endingAfterIdle:)`).
    func dispatch<H: PacketHandler>(count: Int, handler: inout H, waitingAtMost bound: Duration? = nil) throws(PcapError) -> LoopResult {
        try reportSocketError()
        if breaking.exchange(false, ordering: .acquiringAndReleasing) {
            return LoopResult(processed: 0, interrupted: true)
        }
        let limit = count <= 0 ? Int.max : count
        var processed = 0
        let timeout = UInt64(capture.options.timeoutMilliseconds)
        // nil: no deadline (timeout 0). Saturating: a huge timeout means "wait very long".
        var deadline: UInt64?
        if nonblocking {
            deadline = 0
        } else if timeout == 0 {
            deadline = nil
        } else {
            let (span, tooLong) = timeout.multipliedReportingOverflow(by: 1_000_000)
            let (end, past) = CWirecapLinux_monotonic_ns().addingReportingOverflow(span)
            deadline = tooLong || past ? UInt64.max : end
        }
        if let bound, !nonblocking {
            let end = CWirecapLinux_monotonic_ns() &+ ChunkExchange.nanoseconds(bound)
            deadline = min(deadline ?? UInt64.max, end)
        }
        // Reset before looking, so a chunk pushed from now on signals again; the defer below
        // signals again for what this call leaves behind.
        wakeup.reset()
        var current = cursor.take()
        var next = cursorNext
        var interrupted = false
        defer {
            cursor = current.take()
            cursorNext = next
            // The eventfd was reset before looking: say again that something is left.
            if cursorNext > 0 || queues.contains(where: capture.engine.hasWaitingChunks(for:)) { wakeup.signal() }
        }
        while processed < limit {
            let lease: ChunkLease
            if let held = current.take() {
                lease = held
            } else {
                // Reset before looking, so a chunk pushed from now on signals again.
                wakeup.reset()
                if let fresh = takeChunk() {
                    lease = fresh
                    next = 0
                } else {
                    if processed > 0 || nonblocking || captureHasEnded { break }
                    if breaking.exchange(false, ordering: .acquiringAndReleasing) {
                        interrupted = true
                        break
                    }
                    var milliseconds = Self.errorCheckMilliseconds
                    if let deadline {
                        let now = CWirecapLinux_monotonic_ns()
                        if now >= deadline { break }
                        milliseconds = min(milliseconds, (deadline - now + 999_999) / 1_000_000)
                    }
                    _ = wakeup.wait(milliseconds: Int32(milliseconds))
                    try reportSocketError()
                    continue
                }
            }
            let owner = lease.owner
            let packets = lease.packetCount
            let block = lease.block
            handler.chunkBegins(owner: owner, sequence: lease.sequence)
            let walked: Int
            if let filter = capture.recheckFilter(owner: owner, sequence: lease.sequence) {
                (walked, processed) = withUnsafeMutablePointer(to: &handler) { target in
                    var rechecking = RecheckingHandler(target: target, filter: filter)
                    let walked = FacadeWalk.walk(
                        chunk: block, packets: packets, owner: owner, snapLength: capture.options.snapLength, first: next,
                        limit: limit - processed, handler: &rechecking, breaking: breaking)
                    return (walked, processed + rechecking.passed)
                }
            } else {
                walked = FacadeWalk.walk(
                    chunk: block, packets: packets, owner: owner, snapLength: capture.options.snapLength, first: next,
                    limit: limit - processed, handler: &handler, breaking: breaking)
                processed += walked
            }
            if next + walked >= packets {
                lease.recycle()
                next = 0
            } else {
                // Held until a later call, which may be any time from now: not in ring memory.
                var held = consume lease
                held.moveOutOfRing()
                current = consume held
                next += walked
            }
            // A break asked for during the walk took effect after that packet: as libpcap on
            // Linux, the call ends there and says it was broken (with the count handed over).
            if breaking.exchange(false, ordering: .acquiringAndReleasing) {
                interrupted = true
                break
            }
        }
        return LoopResult(processed: processed, interrupted: interrupted)
    }

    /// A filled chunk from the next of this reader's queues that has one.
    private func takeChunk() -> ChunkLease? {
        let count = queues.count
        for step in 0..<count {
            let index = (rotation + step) % count
            if let lease = capture.engine.nextChunk(for: queues[index], waiting: .none) {
                rotation = (index + 1) % count
                return lease
            }
        }
        return nil
    }

    /// Whether nothing more can come: every capture thread feeding these queues has stopped and
    /// none of them has a chunk waiting.
    var captureHasEnded: Bool {
        queues.allSatisfy { capture.engine.captureEnded(for: $0) && !capture.engine.hasWaitingChunks(for: $0) }
    }

    /// An error the kernel posted on a queue's socket since this reader last reported one is
    /// reported once, with libpcap's words for the interface going down; the packets already
    /// captured are still there for the next call.
    private func reportSocketError() throws(PcapError) {
        let socketErrors = capture.engine.socketErrorCount
        guard socketErrors > socketErrorsReported else { return }
        socketErrorsReported = socketErrors
        if let (queue, error) = capture.engine.socketError {
            throw PcapError(error == .networkDown ? "The interface went down" : "queue \(queue) of \(capture.device): \(error)")
        }
    }

    /// Processes packets until `count` have been (forever when `count` <= 0), `breakLoop()`, or
    /// the capture's end.
    func loop<H: PacketHandler>(count: Int, handler: inout H) throws(PcapError) -> LoopResult {
        var processed = 0
        while count <= 0 || processed < count {
            let result = try dispatch(count: count <= 0 ? -1 : count - processed, handler: &handler)
            processed += result.processed
            if result.interrupted { return LoopResult(processed: processed, interrupted: true) }
            if result.processed == 0 && captureHasEnded { break }
        }
        return LoopResult(processed: processed, interrupted: false)
    }

    /// Makes a running `loop` or `dispatch` return after the packet in hand, and wakes it if it
    /// waits: one atomic store and one write(2), async-signal-safe.
    func breakLoop() {
        breaking.store(true, ordering: .releasing)
        wakeup.signal()
    }

    // MARK: closing

    /// Gives a part-read chunk back and stops listening to the queues; the last reader of the
    /// capture closes it. The reader's own call has left (the handle's gate waits for it).
    func release() {
        cursor.take()?.recycle()
        cursorNext = 0
        for q in queues { capture.engine.stopNotifying(wakeup, for: q) }
        capture.readerReleased()
    }
}
