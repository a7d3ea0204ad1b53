#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// A POSIX thread, optionally pinned to one CPU before its body runs.
///
/// Capture threads are long-lived and placed by hand, which is what a thread pool is not for;
/// signals stay blocked in them (they inherit the mask of the thread that starts them).
@usableFromInline
package final class PinnedThread: @unchecked Sendable {
    // @unchecked: `handle` is only touched with `monitor` held.
    /// The thread, until it has been joined. Joining twice, or from two threads at once, is
    /// undefined for pthreads: the lock makes the first `join` do it and every other wait for it.
    /// A `Monitor` (a pthread mutex) rather than `Mutex`: on Linux `Mutex` is a futex that
    /// ThreadSanitizer does not model, and it reported the joins as racing (scripts/sanitizers.sh).
    private var handle: pthread_t?
    private let monitor = Monitor()

    private final class Start {
        let cpu: Int?
        let body: @Sendable () -> Void
        init(cpu: Int?, body: @escaping @Sendable () -> Void) {
            self.cpu = cpu
            self.body = body
        }
    }

    private init(_ handle: pthread_t) { self.handle = handle }

    /// Starts `body` on a new thread pinned to `cpu` (when given and allowed).
    @usableFromInline package static func spawn(cpu: Int?, _ body: @escaping @Sendable () -> Void) throws(CaptureError) -> PinnedThread {
        var handle = pthread_t()
        let start = Unmanaged.passRetained(Start(cpu: cpu, body: body)).toOpaque()
        let rc = pthread_create(&handle, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            if let cpu = start.cpu { _ = CWirecapLinux_pin_current_thread(Int32(cpu)) }
            start.body()
            return nil
        }, start)
        if rc != 0 {
            Unmanaged<Start>.fromOpaque(start).release()
            throw .system(operation: "starting a capture thread", errno: rc)
        }
        return PinnedThread(handle)
    }

    /// Waits until the thread has finished. Safe from any number of threads at once, any
    /// number of times; never from the thread itself.
    package func join() {
        monitor.lock()
        defer { monitor.unlock() }
        guard let thread = handle else { return }
        pthread_join(thread, nil)
        handle = nil
    }
}
