#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Synchronization

/// The stop switch shared by a capture's threads.
///
/// `requestStop()` is an atomic store and a `write` to an eventfd, both async-signal-safe, so
/// it may be called from a signal handler, a handler on a capture thread, or any other thread.
/// The eventfd wakes every thread blocked in `poll` at once, and stays readable, so a stop is
/// never missed.
public final class CaptureControl: Sendable {
    @usableFromInline let stopping = Atomic<Bool>(false)
    @usableFromInline let wakeFD: Int32

    init() throws(CaptureError) {
        wakeFD = try systemCall("creating the wake-up eventfd", CWirecapLinux_eventfd())
    }

    deinit { close(wakeFD) }

    public func requestStop() {
        stopping.store(true, ordering: .releasing)
        _ = CWirecapLinux_eventfd_signal(wakeFD)
    }

    @inlinable public var isStopping: Bool { stopping.load(ordering: .acquiring) }
}
