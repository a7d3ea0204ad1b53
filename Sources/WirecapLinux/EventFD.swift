#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// An eventfd, owned: a counter in the kernel that `poll` sees readable while it is not zero.
/// Non-blocking and close-on-exec; closed when the last reference goes.
///
/// `signal` is one write(2), async-signal-safe, so a stop can be requested from a signal handler
/// and wake every thread polling the descriptor at once.
public final class EventFD: Sendable {
    public let descriptor: Int32

    public init() throws(SystemError) {
        let fd = CWirecapLinux_eventfd()
        try check(fd, "creating an eventfd")
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Adds one to the counter: the descriptor is readable from now until `reset`. Cannot fail
    /// in a way that matters: a full counter is already readable.
    @inline(__always)
    public func signal() {
        _ = CWirecapLinux_eventfd_signal(descriptor)
    }

    /// Reads the counter back to zero (nothing to do when it already is), so that a later
    /// `signal` is seen as new.
    @inline(__always)
    public func reset() {
        _ = CWirecapLinux_eventfd_reset(descriptor)
    }

    /// Sleeps in poll(2) until the descriptor is readable or `milliseconds` pass (-1: no limit);
    /// returns whether it is readable. A signal that interrupts the sleep returns false early.
    public func wait(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }
}
