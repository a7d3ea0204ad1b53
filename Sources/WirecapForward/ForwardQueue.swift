import CWirecapLinux
import WirecapEngine

/// One forwarding queue: the TX ring on OUT that carries what queue `index`'s forwarding thread
/// is lent, and the counts that thread has published.
///
/// The thread pulls leases for its queue (its own chunks, and with offloading chunks a buddy
/// handed it), walks each through the verdict handler into its own TX ring, and ends the lease
/// under `lock` in the same step that publishes the chunk's counts. `snapshot` takes the same
/// lock, so a frame is never counted both as leased (by the engine) and as forwarded (here).
@usableFromInline
final class ForwardQueue: @unchecked Sendable {
    // @unchecked: `ring` is used by the forwarding thread alone (and by `init`/`deinit`);
    // `published` and `failure` only under `lock`.
    @usableFromInline let index: Int
    @usableFromInline let ring: TxRing
    @usableFromInline let lock = Monitor()
    @usableFromInline var published = ForwardTally()
    /// Frames in the TX ring as of the last publish.
    @usableFromInline var inTransmitRing: UInt64 = 0
    /// The first failure of the output (interface gone, ring stalled, frames left at stop).
    @usableFromInline var failure: CaptureError? = nil
    @usableFromInline let stallNanoseconds: UInt64

    init(index: Int, ring: TxRing, stallNanoseconds: UInt64) {
        self.index = index
        self.ring = ring
        self.stallNanoseconds = stallNanoseconds
    }

    /// The forwarding thread's loop, until the capture has stopped and every chunk was forwarded;
    /// then everything put is sent (`TxRing.finish`) before the thread ends.
    @inlinable
    func run<H: VerdictHandler>(engine: CaptureEngine, handler: H) {
        var walk = ForwardingWalk(handler: handler, ring: ring, stallNanoseconds: stallNanoseconds)
        var lastProgress = CWirecapLinux_monotonic_ns()
        while true {
            // Frames still in the TX ring need another kick if the device was busy: wait for a
            // chunk only briefly then, and service the ring in between.
            let waiting: ChunkWait = ring.inFlight > 0 && walk.failure == nil ? .upTo(.milliseconds(1)) : .untilCaptureEnds
            guard let lease = engine.nextChunk(for: index, waiting: waiting) else {
                if case .untilCaptureEnds = waiting { break }
                if walk.service() > 0 {
                    lastProgress = CWirecapLinux_monotonic_ns()
                    publish(&walk, ending: nil)
                } else if CWirecapLinux_monotonic_ns() - lastProgress > stallNanoseconds {
                    // OUT takes nothing: stop waiting for it here, or a stop would never end.
                    walk.failure = walk.failure
                        ?? .transmitStalled(
                            interface: ring.interface, seconds: stallNanoseconds / 1_000_000_000, waiting: ring.inFlight, lastError: nil)
                }
                continue
            }
            lease.walk(&walk)
            publish(&walk, ending: lease)
            lastProgress = CWirecapLinux_monotonic_ns()
        }
        do throws(CaptureError) {
            try ring.finish(stallNanoseconds: stallNanoseconds)
        } catch {
            walk.failure = walk.failure ?? error
        }
        walk.service()
        publish(&walk, ending: nil)
    }

    /// Adds the walk's counts to the published ones and ends `lease` (if any) in one step.
    @inlinable
    func publish<H>(_ walk: inout ForwardingWalk<H>, ending lease: consuming ChunkLease?) {
        lock.lock()
        published += walk.tally
        inTransmitRing = UInt64(ring.inFlight)
        if failure == nil { failure = walk.failure }
        if let lease { lease.recycle() }
        lock.unlock()
        walk.tally = ForwardTally()
    }
}
