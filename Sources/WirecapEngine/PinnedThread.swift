#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// A POSIX thread, optionally pinned to one CPU before its body runs.
///
/// Capture threads are long-lived and placed by hand, which is what a thread pool is not for;
/// signals stay blocked in them (they inherit the mask of the thread that starts them).
public final class PinnedThread: @unchecked Sendable {
    // @unchecked: `handle` is written once in `spawn` before anyone else sees the object and
    // read only by `join`.
    private var handle = pthread_t()
    private var joined = false

    private final class Start {
        let cpu: Int?
        let body: @Sendable () -> Void
        init(cpu: Int?, body: @escaping @Sendable () -> Void) {
            self.cpu = cpu
            self.body = body
        }
    }

    private init() {}

    /// Starts `body` on a new thread pinned to `cpu` (when given and allowed).
    public static func spawn(cpu: Int?, _ body: @escaping @Sendable () -> Void) throws(CaptureError) -> PinnedThread {
        let thread = PinnedThread()
        let start = Unmanaged.passRetained(Start(cpu: cpu, body: body)).toOpaque()
        let rc = pthread_create(&thread.handle, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            if let cpu = start.cpu { _ = CWirecapLinux_pin_current_thread(Int32(cpu)) }
            start.body()
            return nil
        }, start)
        if rc != 0 {
            Unmanaged<Start>.fromOpaque(start).release()
            throw .system(operation: "starting a capture thread", errno: rc)
        }
        return thread
    }

    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}
