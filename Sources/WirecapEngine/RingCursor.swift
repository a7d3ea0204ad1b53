#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where one queue's ring is read next, and who may read it: the capture thread, or (pool mode
/// with loans, basic mode) the queue's work thread serving itself while nothing waits for it
/// (`ReceiveQueue.serveWorkThread`).
///
/// Why a work thread may take blocks at all: with the work thread asleep and the queue empty,
/// a retired block used to wake the capture thread, which lent it and woke the work thread:
/// two threads woken per block where the plain ring wakes one. On this project's VM a wake-up
/// costs tens of microseconds, so that second wake-up made the pool cost 1.4 to 2 times the
/// plain ring per packet (issue 14). Now the work thread sleeps on the ring too, first in line
/// (`EPOLLEXCLUSIVE`, registered before the capture thread's): an idle work thread is woken
/// alone and walks the block in place; while it works, the next retired block wakes the capture
/// thread, which lends or copies blocks to the queue as before, so a slow handler still never
/// leaves the ring unwatched.
///
/// The holder reads and moves the cursor; the other thread keeps away until it is released. The
/// capture thread holds it whenever it is awake and releases it only to sleep on the ring; the
/// work thread holds it only while it takes one block. Without loans (or with offloading) only
/// the capture thread ever holds it.
@usableFromInline
package final class RingCursor: @unchecked Sendable {
    // @unchecked: the plain fields are touched only by the holder of `holder`, whose acquiring
    // and releasing orderings carry them from one holder to the next.
    @usableFromInline enum Holder: Int {
        case none = 0
        case captureThread = 1
        case workThread = 2
    }

    @usableFromInline let holder = Atomic<Int>(Holder.none.rawValue)
    /// The block to take next.
    @exclusivity(unchecked) @usableFromInline var index = 0
    /// Packets and blocks taken out of the ring so far, by either thread.
    @exclusivity(unchecked) @usableFromInline var taken: UInt64 = 0
    @exclusivity(unchecked) @usableFromInline var blocks: UInt64 = 0
    /// Pool mode: the sequence number of the next chunk the queue's blocks make, whichever
    /// thread makes it (`FilledChunk.sequence`).
    @exclusivity(unchecked) @usableFromInline var sequence: UInt64 = 0
    /// Set by the work thread when its sleep on the ring reported a socket error (the interface
    /// went down): the kernel wakes one exclusive waiter for it, maybe the work thread, but the
    /// capture thread is the one that reads and reports it (`ReceiveQueue.takeSocketError`).
    @usableFromInline let ringError = Atomic<Bool>(false)

    @usableFromInline package init() {}

    /// The capture thread: waits until the work thread has let go (it holds the cursor for the
    /// few hundred nanoseconds of one take). Both threads share a CPU, so it yields rather than
    /// spins: a spin would keep the holder from running.
    @inlinable
    func holdForCapture() {
        while !holder.compareExchange(
            expected: Holder.none.rawValue, desired: Holder.captureThread.rawValue, ordering: .acquiring
        ).exchanged {
            sched_yield()
        }
    }

    /// The work thread: holds the cursor only if nobody does.
    @inlinable
    func tryHoldForWorkThread() -> Bool {
        holder.compareExchange(expected: Holder.none.rawValue, desired: Holder.workThread.rawValue, ordering: .acquiring)
            .exchanged
    }

    @inlinable
    func release() { holder.store(Holder.none.rawValue, ordering: .releasing) }
}
