import CWirecapLinux
import Glibc

/// A thread's sleep on a ring: epoll on the ring (edge-triggered: woken when the kernel retires a
/// block, not while a lent block makes the ring look readable; and exclusive, so that of the
/// threads sleeping on one ring only the first in line that waits is woken), a stop eventfd and an
/// eventfd that is read back to zero whenever it wakes the sleep (both level-triggered).
///
/// A capture thread sleeps on the ring, its stop eventfd and, with loans, the loans' `returned`
/// eventfd (signalled while it waits at a lent block, or when its work thread took the wake-up
/// meant for it). A work thread serving itself (`WorkSleeper`) sleeps on the ring and its queue's
/// arrivals eventfd, and is first in line.
///
/// Every capture thread sleeps here, loans or not: the descriptors are registered once, where
/// poll(2) set up and tore down a wait on each of two descriptors at every sleep. With traffic
/// a capture thread sleeps once per retired block, and that set-up was most of what it spent
/// beyond the C reference loop's own sleep (issue 14, measured with perf's cpu-clock samples).
@usableFromInline
final class RingSleeper {
    @usableFromInline let epoll: Int32
    @usableFromInline let wake: Int32
    @usableFromInline let resetting: Int32
    @usableFromInline var waking: Bool

    /// - Parameters:
    ///   - wake: the stop eventfd, or nil.
    ///   - resetting: an eventfd read back to zero when it wakes the sleep, or nil.
    @usableFromInline
    init?(ring: Int32, wake: Int32?, resetting: Int32?) {
        epoll = CWirecapLinux_epoll_create()
        self.wake = wake ?? -1
        self.resetting = resetting ?? -1
        waking = wake != nil
        // A failed init still runs deinit, which closes the descriptor (close(-1) is harmless).
        guard epoll >= 0, CWirecapLinux_epoll_add_exclusive(epoll, ring, 0) == 0,
            wake.map({ CWirecapLinux_epoll_add(epoll, $0, 0, 1) == 0 }) ?? true,
            resetting.map({ CWirecapLinux_epoll_add(epoll, $0, 0, 2) == 0 }) ?? true
        else { return nil }
    }

    /// Sleeps until the kernel retires a block, a stop is asked (until `stopWaking`), the
    /// resetting eventfd is signalled, or the time-out; says whether the ring reported an error.
    @inlinable
    func sleep(milliseconds: Int32) -> Bool { descriptors.sleep(milliseconds: milliseconds) }

    /// The two descriptors a sleep uses, as a value: the capture loop takes them out once and
    /// sleeps through them, so a sleep costs no reference counting on the sleeper (right after
    /// a wake-up, each runtime call is one more cold code page).
    @inlinable var descriptors: Descriptors { Descriptors(epoll: epoll, resetting: resetting) }

    @usableFromInline
    struct Descriptors {
        @usableFromInline let epoll: Int32
        @usableFromInline let resetting: Int32

        @inlinable init(epoll: Int32, resetting: Int32) {
            self.epoll = epoll
            self.resetting = resetting
        }

        @inlinable @inline(__always)
        func sleep(milliseconds: Int32) -> Bool {
            let ready = CWirecapLinux_epoll_wait(epoll, milliseconds)
            // Level-triggered: read back to zero, or every later sleep would end at once (a
            // loan's return may signal just after the thread stopped waiting at its block; an
            // arrival is signalled once per empty-to-non-empty change, and must wake the next
            // sleep too).
            if ready & (1 << 2) != 0 { _ = CWirecapLinux_eventfd_reset(resetting) }
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
