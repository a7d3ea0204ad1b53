import CWirecapLinux
import Glibc

/// A capture thread's sleep: epoll on the ring (edge-triggered: woken when the kernel retires a
/// block, not while a lent block makes the ring look readable), the stop eventfd and, with
/// loans, the loans' `returned` eventfd (both level-triggered; `returned` is signalled only
/// while the thread waits at a lent block).
///
/// Every capture thread sleeps here, loans or not: the descriptors are registered once, where
/// poll(2) set up and tore down a wait on each of two descriptors at every sleep. With traffic
/// a capture thread sleeps once per retired block, and that set-up was most of what it spent
/// beyond the C reference loop's own sleep (issue 14, measured with perf's cpu-clock samples).
@usableFromInline
final class RingSleeper {
    @usableFromInline let epoll: Int32
    @usableFromInline let wake: Int32
    @usableFromInline let returned: Int32
    @usableFromInline var waking = true

    /// - Parameter returned: the loans' eventfd, or nil without loans.
    @usableFromInline
    init?(ring: Int32, wake: Int32, returned: Int32?) {
        epoll = CWirecapLinux_epoll_create()
        self.wake = wake
        self.returned = returned ?? -1
        // A failed init still runs deinit, which closes the descriptor (close(-1) is harmless).
        guard epoll >= 0, CWirecapLinux_epoll_add_exclusive(epoll, ring, 0) == 0, CWirecapLinux_epoll_add(epoll, wake, 0, 1) == 0,
            returned.map({ CWirecapLinux_epoll_add(epoll, $0, 0, 2) == 0 }) ?? true
        else { return nil }
    }

    /// Sleeps until the kernel retires a block, a stop is asked (until `stopWaking`), a loan
    /// comes back to a waiting thread, or the time-out; says whether the ring reported an error.
    @inlinable
    func sleep(milliseconds: Int32) -> Bool { descriptors.sleep(milliseconds: milliseconds) }

    /// The two descriptors a sleep uses, as a value: the capture loop takes them out once and
    /// sleeps through them, so a sleep costs no reference counting on the sleeper (right after
    /// a wake-up, each runtime call is one more cold code page).
    @inlinable var descriptors: Descriptors { Descriptors(epoll: epoll, returned: returned) }

    @usableFromInline
    struct Descriptors {
        @usableFromInline let epoll: Int32
        @usableFromInline let returned: Int32

        @inlinable init(epoll: Int32, returned: Int32) {
            self.epoll = epoll
            self.returned = returned
        }

        @inlinable @inline(__always)
        func sleep(milliseconds: Int32) -> Bool {
            let ready = CWirecapLinux_epoll_wait(epoll, milliseconds)
            // Level-triggered: read back to zero, or every later sleep would end at once (a
            // return may signal just after the thread stopped waiting at its block).
            if ready & (1 << 2) != 0 { _ = CWirecapLinux_eventfd_reset(returned) }
            return ready & (1 << 16) != 0
        }
    }

    /// While draining: the stop eventfd stays readable, so it must not wake the sleep.
    @usableFromInline
    func stopWaking() {
        guard waking else { return }
        waking = false
        _ = CWirecapLinux_epoll_remove(epoll, wake)
    }

    deinit { close(epoll) }
}
