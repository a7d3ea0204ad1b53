import Synchronization
import WirecapLinux

/// The stop switch shared by a capture's threads.
///
/// `requestStop()` is an atomic store and a signal of an `EventFD` (one write), both
/// async-signal-safe, so it may be called from a signal handler, a handler on a capture thread,
/// or any other thread. The EventFD wakes every thread blocked in `poll` at once, and stays
/// readable, so a stop is never missed.
@usableFromInline
package final class CaptureControl: Sendable {
    @usableFromInline let stopping = Atomic<Bool>(false)
    let wakeUp: EventFD

    init() throws(CaptureError) {
        do { wakeUp = try EventFD() } catch { throw .system(error) }
    }

    /// What the capture threads poll beside their ring.
    @usableFromInline var wakeFD: Int32 { wakeUp.descriptor }

    package func requestStop() {
        stopping.store(true, ordering: .releasing)
        wakeUp.signal()
    }

    @inlinable package var isStopping: Bool { stopping.load(ordering: .acquiring) }
}
