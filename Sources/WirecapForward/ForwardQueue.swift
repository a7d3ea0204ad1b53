import CWirecapLinux
import WirecapEngine

/// One forwarding queue: the TX rings on the outputs that carry the frames queue `index`
/// captured, the order in which its chunks leave, and the counts published for it.
///
/// **Order.** A queue's frames always leave on the queue's own rings, in the order its capture
/// thread filled the chunks (`ChunkLease.sequence`), whoever decides on them. Without
/// offloading the queue's thread gets its chunks in order and sends each in one pass. With
/// offloading a buddy may get chunk s + 1 while the owner still works on chunk s: the buddy then
/// runs the verdicts (the work offloading is for) and notes the outcomes in the chunk; if the
/// chunk's turn has come by then it sends it, otherwise it parks the chunk here (`keep()`), and
/// whoever sends chunk s sends the parked chunks that follow it. Nobody waits for another
/// thread, so a thread that both owns chunks and holds a buddy's can never block the group.
///
/// Every field below `stallNanoseconds` is guarded by the forwarder's one `ledger` lock, taken
/// twice a chunk: to take the turn, and to publish the chunk's counts in the same step that ends
/// its lease (or parks it). A snapshot under the same lock finds every frame exactly once:
/// leased (the engine's `inHandler`), parked, in a TX ring, or counted.
@usableFromInline
final class ForwardQueue: @unchecked Sendable {
    @usableFromInline let index: Int
    /// The ring on the main output and on each additional output; used only by the thread that
    /// holds the turn (`transmitting`), and by `init`/`deinit`.
    @usableFromInline let main: TxRing
    @usableFromInline let others: [TxRing]
    /// The ring on the tap (a copy of what leaves on `main`), if any.
    @usableFromInline let tap: TxRing?
    /// The tap's savefile, shared by every queue, if any.
    @usableFromInline let tapFile: TapFile?
    @usableFromInline let stallNanoseconds: UInt64

    @usableFromInline var published = ForwardTally()
    /// Frames in the TX rings as of the last publish.
    @usableFromInline var inTransmitRing: UInt64 = 0
    /// The first failure of an output (interface gone, ring stalled, frames left at stop).
    @usableFromInline var failure: CaptureError? = nil
    /// The sequence number of the chunk whose frames leave next.
    @usableFromInline var nextSequence: UInt64 = 0
    /// Whether a thread holds the turn: it alone puts into the rings.
    @usableFromInline var transmitting = false
    /// Decided chunks waiting for their turn, at `sequence % parked.count`: at most a pool's
    /// worth of the queue's chunks exist, so two parked chunks never share a slot.
    @usableFromInline var parked: [ParkedChunk?]
    /// Frames of parked chunks that are to be sent (their drops are counted already).
    @usableFromInline var parkedFrames: UInt64 = 0
    /// Chunks that were parked, ever: how often order had to be restored.
    @usableFromInline var chunksParked: UInt64 = 0

    init(index: Int, main: TxRing, others: [TxRing], tap: TxRing?, tapFile: TapFile? = nil, poolChunks: Int, stallNanoseconds: UInt64) {
        self.index = index
        self.main = main
        self.others = others
        self.tap = tap
        self.tapFile = tapFile
        self.stallNanoseconds = stallNanoseconds
        parked = Array(repeating: nil, count: max(1, poolChunks))
    }
}

/// A decided chunk waiting for its turn, and how many of its frames are to be sent.
@usableFromInline
struct ParkedChunk {
    @usableFromInline let chunk: KeptChunk
    @usableFromInline let frames: UInt64

    @inlinable init(chunk: KeptChunk, frames: UInt64) {
        self.chunk = chunk
        self.frames = frames
    }
}

/// The forwarding threads' shared loop and the turn-taking that keeps each queue's order.
@usableFromInline
struct ForwardingThread<H: VerdictHandler> {
    @usableFromInline let index: Int
    @usableFromInline let queues: [ForwardQueue]
    @usableFromInline let ledger: Monitor
    @usableFromInline let engine: CaptureEngine
    @usableFromInline var walk: ForwardingWalk<H>

    @inlinable
    init(index: Int, queues: [ForwardQueue], ledger: Monitor, engine: CaptureEngine, handler: H) {
        self.index = index
        self.queues = queues
        self.ledger = ledger
        self.engine = engine
        walk = ForwardingWalk(handler: handler, rings: queues[index], stallNanoseconds: queues[index].stallNanoseconds)
    }

    /// Pulls leases for this queue (its own chunks, and with offloading chunks a buddy handed it)
    /// until the capture has stopped and nothing is left.
    @inlinable
    mutating func run() {
        let own = queues[index]
        var lastProgress = CWirecapLinux_monotonic_ns()
        while true {
            // Frames still in the own rings need another kick if the device was busy: wait for a
            // chunk only briefly then, and service the rings in between.
            let pending = ledger.withLock { own.inTransmitRing > 0 && own.failure == nil }
            let waiting: ChunkWait = pending ? .upTo(.milliseconds(1)) : .untilCaptureEnds
            guard let lease = engine.nextChunk(for: index, waiting: waiting) else {
                if case .untilCaptureEnds = waiting { break }
                if serviceIdle(own) {
                    lastProgress = CWirecapLinux_monotonic_ns()
                } else if CWirecapLinux_monotonic_ns() - lastProgress > own.stallNanoseconds {
                    // An output takes nothing: stop waiting for it here, or a stop would never end.
                    ledger.withLock {
                        own.failure = own.failure
                            ?? .transmitStalled(
                                interface: own.main.interface, seconds: own.stallNanoseconds / 1_000_000_000,
                                waiting: Int(own.inTransmitRing), lastError: nil)
                    }
                }
                continue
            }
            forward(lease)
            lastProgress = CWirecapLinux_monotonic_ns()
        }
    }

    /// Decides on and sends one chunk, or parks it until its turn (see `ForwardQueue`).
    @inlinable
    mutating func forward(_ lease: consuming ChunkLease) {
        let queue = queues[lease.owner]
        let sequence = lease.sequence
        let turn = takeTurn(queue, sequence: sequence)
        if turn.taken {
            walk.use(queue, failure: turn.failure)
            lease.walk(&walk)
        } else {
            let toSend = walk.decideOnly(block: lease.block, queue: lease.owner, snapLength: lease.snapLength)
            ledger.lock()
            if queue.transmitting || queue.nextSequence != sequence {
                // Its turn has not come: whoever sends the chunk before it sends this one.
                queue.published += walk.tally
                walk.tally = ForwardTally()
                queue.parked[Int(sequence % UInt64(queue.parked.count))] = ParkedChunk(chunk: lease.keep(), frames: toSend)
                queue.parkedFrames += toSend
                queue.chunksParked += 1
                ledger.unlock()
                return
            }
            queue.transmitting = true
            let failure = queue.failure
            ledger.unlock()
            walk.use(queue, failure: failure)
            walk.transmitNoted(block: lease.block)
        }
        var next = endTurn(queue, lease: lease)
        // Send the parked chunks that follow, in order, while the turn is held.
        while let parked = next {
            walk.transmitNoted(block: parked.chunk.block)
            next = endTurn(queue, parked: parked)
        }
    }

    /// Takes `queue`'s turn if chunk `sequence` is next and nobody holds it; with the queue's
    /// output failure so far.
    @inlinable
    func takeTurn(_ queue: ForwardQueue, sequence: UInt64) -> (taken: Bool, failure: CaptureError?) {
        ledger.lock()
        defer { ledger.unlock() }
        guard !queue.transmitting && queue.nextSequence == sequence else { return (false, nil) }
        queue.transmitting = true
        return (true, queue.failure)
    }

    /// Publishes the walk's counts for `queue` and ends the chunk that was sent (`end`), in one
    /// step; moves the turn on and hands back the parked chunk that is next, if any (the turn is
    /// then still held), or gives the turn up.
    @inlinable
    mutating func endTurn(_ queue: ForwardQueue, lease: consuming ChunkLease) -> ParkedChunk? {
        ledger.lock()
        defer { ledger.unlock() }
        publish(queue, parkedFrames: 0)
        lease.recycle()
        return advance(queue)
    }

    @inlinable
    mutating func endTurn(_ queue: ForwardQueue, parked: ParkedChunk) -> ParkedChunk? {
        ledger.lock()
        defer { ledger.unlock() }
        publish(queue, parkedFrames: parked.frames)
        parked.chunk.recycle()
        return advance(queue)
    }

    /// Under `ledger`: adds the walk's counts to `queue`'s, with the rings' state.
    @inlinable
    mutating func publish(_ queue: ForwardQueue, parkedFrames: UInt64) {
        queue.published += walk.tally
        walk.tally = ForwardTally()
        queue.inTransmitRing = UInt64(walk.inFlight)
        queue.parkedFrames -= parkedFrames
        if queue.failure == nil { queue.failure = walk.failure }
    }

    /// Under `ledger`: the next chunk's turn; the parked chunk that is next (turn kept), or nil
    /// (turn given up).
    @inlinable
    func advance(_ queue: ForwardQueue) -> ParkedChunk? {
        queue.nextSequence += 1
        let slot = Int(queue.nextSequence % UInt64(queue.parked.count))
        if let parked = queue.parked[slot], parked.chunk.sequence == queue.nextSequence {
            queue.parked[slot] = nil
            return parked
        }
        queue.transmitting = false
        return nil
    }

    /// Run by the last forwarding thread to end, when no chunk is left to lease and nobody else
    /// holds a turn: sends what every queue's rings hold and waits for the kernel to take it.
    /// A chunk still parked would mean its predecessor never came; it is sent rather than lost.
    @inlinable
    mutating func finishAll() {
        for queue in queues {
            let (leftovers, failure) = ledger.withLock {
                let left = queue.parked.compactMap { $0 }.sorted { $0.chunk.sequence < $1.chunk.sequence }
                for slot in queue.parked.indices { queue.parked[slot] = nil }
                queue.transmitting = true
                return (left, queue.failure)
            }
            walk.use(queue, failure: failure)
            for parked in leftovers {
                walk.transmitNoted(block: parked.chunk.block)
                ledger.withLock {
                    publish(queue, parkedFrames: parked.frames)
                    parked.chunk.recycle()
                }
            }
            walk.finish()
            ledger.withLock {
                publish(queue, parkedFrames: 0)
                queue.transmitting = false
            }
        }
    }

    /// With no chunk to forward: kicks the own rings if nobody else holds their turn; returns
    /// whether any frame left them.
    @inlinable
    mutating func serviceIdle(_ own: ForwardQueue) -> Bool {
        ledger.lock()
        guard !own.transmitting else {
            ledger.unlock()
            return false
        }
        own.transmitting = true
        let failure = own.failure
        ledger.unlock()
        walk.use(own, failure: failure)
        let left = walk.service()
        ledger.withLock {
            publish(own, parkedFrames: 0)
            own.transmitting = false
        }
        return left > 0
    }
}
