import Synchronization
import WirecapLinux

/// A pool-mode work thread's sleep when it may serve itself from its queue's ring
/// (`RingCursor`): a `RingSleeper` on the ring, made before the capture thread's own so that an
/// idle work thread is the one a retired block wakes, and on the eventfd its buddy group signals
/// when chunks arrive in its empty capture queue and when the captures have ended
/// (`BuddyGroup.addNotifier`).
@usableFromInline
final class WorkSleeper: @unchecked Sendable {
    // @unchecked: made before the threads start and then used by one work thread only.
    @usableFromInline let sleeper: RingSleeper
    @usableFromInline let arrivals: EventFD

    /// nil when epoll cannot be set up: the work thread then waits for chunks only.
    init?(ring: Int32) {
        guard let arrivals = try? EventFD(),
            let sleeper = RingSleeper(ring: ring, wake: nil, resetting: arrivals.descriptor)
        else { return nil }
        self.arrivals = arrivals
        self.sleeper = sleeper
    }

    /// Sleeps until a block is retired while this thread is first in line, chunks arrive, the
    /// captures end, or the time-out; says whether the ring reported an error.
    @inlinable
    func sleep(milliseconds: Int32) -> Bool { sleeper.sleep(milliseconds: milliseconds) }
}

extension CaptureEngine {
    /// The sleep for `queue`'s work thread if it may serve itself from the ring: the hybrid pool
    /// lends blocks, and the queue is a buddy group of its own (with offloading, a buddy's chunks
    /// would wait behind blocks it takes, and the capture thread decides where each block goes).
    /// Made before the capture threads start, so that its place in the ring's wait queue comes
    /// first.
    @usableFromInline
    func workSleeper(for queue: ReceiveQueue) -> WorkSleeper? {
        guard let exchange, exchange.loans(of: queue.index) != nil, configuration.offload == nil,
            let sleeper = WorkSleeper(ring: queue.ring.fd)
        else { return nil }
        exchange.addNotifier(sleeper.arrivals, for: queue.index)
        return sleeper
    }

    /// A work thread that serves itself: the chunks waiting in its capture queue first, then,
    /// with none waiting, the ring's next retired block in place (`ReceiveQueue.serveWorkThread`);
    /// then it sleeps on both. Ends once the capture has ended and nothing is left.
    @inlinable
    func serveLoop<H: ChunkHandler>(queue: ReceiveQueue, sleeper: WorkSleeper, handler: inout H) {
        let index = queue.index
        while true {
            if let chunk = nextChunk(for: index, waiting: .none) {
                handler.handle(chunk)
                continue
            }
            if let chunk = queue.serveWorkThread(control: control) {
                handler.handle(chunk)
                continue
            }
            // The queue is a group of its own (no offloading), so its capture thread's end is the
            // group's: one atomic load, where `captureEnded(for:)` takes two locks before every
            // sleep.
            if queue.counters.captureFinished.load(ordering: .acquiring) {
                // Chunks queued before the end; once none is left, none can come.
                guard let chunk = nextChunk(for: index, waiting: .none) else { break }
                handler.handle(chunk)
                continue
            }
            // An error wake-up (the interface went down) reaches one exclusive waiter: if that
            // was this thread, the capture thread must still hear of it.
            if sleeper.sleep(milliseconds: 1000) { queue.passRingError() }
        }
        stopNotifying(sleeper.arrivals, for: index)
    }
}
