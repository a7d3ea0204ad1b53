#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import WirecapEngine

/// Who is inside a `PcapHandle`, so that a handle can be shared between threads without a data
/// race and closed without pulling its resources from under a call.
///
/// - A read (`next`, `dispatch`, `loop`, `setFilter`) is exclusive: a second thread that tries
///   to read while one does gets a clear error instead of a race on the reader's cursor (libpcap
///   leaves this undefined; the fix for wanting several threads is a reader per queue,
///   `PcapHandle.queues`). A read from inside the handler of a read on the same thread (the
///   same undefined case) gets the error too.
/// - Other calls (`stats`, `datalink`, ...) may run beside a read.
/// - `close()` marks the handle closed, so every later call throws `PcapError.closed`, breaks a
///   running read, and waits until every call has left before the resources go. Called from
///   inside a handler (the reading thread), it returns at once and the read, on its way out,
///   releases them. Either way the release happens exactly once.
/// - `breakLoop()` must stay async-signal-safe, so it takes no lock: it registers itself in an
///   atomic count that the release waits on, and does nothing once the release has begun.
///
/// One lock per call, never per packet.
final class HandleGate: Sendable {
    private struct State {
        var closed = false
        /// The thread inside a read, if any.
        var reader: pthread_t? = nil
        /// Calls inside, reads included.
        var calls = 0
        /// Someone has taken on the release.
        var releasing = false
    }

    private let state = Locked(State())
    /// Set before the release starts; `breakLoop` tests it.
    private let released = Atomic<Bool>(false)
    /// `breakLoop` calls in flight: the release waits for them to finish.
    private let breakers = Atomic<Int>(0)
    /// Set once the resources are gone.
    private let finished = Atomic<Bool>(false)

    /// What a refused entry says, naming the handle (a device, a queue of it, or a file).
    enum Refusal: Error {
        case closed
        case busy(sameThread: Bool)
    }

    /// Enters for a call; `reading` for an exclusive read.
    func enter(reading: Bool) throws(Refusal) {
        let refusal: Refusal? = state.withLock { state in
            if state.closed { return .closed }
            if reading {
                if let reader = state.reader { return .busy(sameThread: pthread_equal(reader, pthread_self()) != 0) }
                state.reader = pthread_self()
            }
            state.calls += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    /// Leaves a call. Returns true when this call must release the resources: the handle was
    /// closed while it was inside and it is the last to leave.
    func leave(reading: Bool) -> Bool {
        state.withLock { state in
            state.calls -= 1
            if reading { state.reader = nil }
            return claimRelease(&state)
        }
    }

    private func claimRelease(_ state: inout State) -> Bool {
        guard state.closed, state.calls == 0, !state.releasing else { return false }
        state.releasing = true
        released.store(true, ordering: .sequentiallyConsistent)
        return true
    }

    /// How `close()` goes on after marking the handle closed.
    enum Closing {
        /// Nothing is inside: release now.
        case releaseNow
        /// The caller is the reading thread (inside its own handler): the read releases on its
        /// way out.
        case deferredToReader
        /// Another thread is inside: break it, then `waitForRelease`.
        case waitForOthers
        /// Closed before.
        case alreadyClosed
    }

    func close() -> Closing {
        state.withLock { state in
            if state.closed { return .alreadyClosed }
            state.closed = true
            if claimRelease(&state) { return .releaseNow }
            if let reader = state.reader, pthread_equal(reader, pthread_self()) != 0 { return .deferredToReader }
            return .waitForOthers
        }
    }

    /// After `close()` said `.waitForOthers`: waits until the last call has left, and returns
    /// true when the caller must release (nobody else claimed it), false once whoever claimed
    /// it has finished. Polls every millisecond: closing is rare, and a call that is inside is
    /// on its way out (its read was broken).
    func waitForRelease() -> Bool {
        while true {
            let claimed = state.withLock { state in claimRelease(&state) }
            if claimed { return true }
            if finished.load(ordering: .acquiring) { return false }
            usleep(1000)
        }
    }

    /// The releaser is done: the resources are gone.
    func releaseFinished() { finished.store(true, ordering: .releasing) }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Runs `body` (a break) unless the release has begun; async-signal-safe.
    @inline(__always)
    func whileNotReleased(_ body: () -> Void) {
        breakers.add(1, ordering: .sequentiallyConsistent)
        if !released.load(ordering: .sequentiallyConsistent) { body() }
        breakers.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Before freeing what a break touches: waits out breaks already past their check.
    func waitForBreakers() {
        while breakers.load(ordering: .sequentiallyConsistent) > 0 { sched_yield() }
    }
}
