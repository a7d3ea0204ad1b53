#if canImport(Glibc)
import Glibc
#endif

/// A mutex with a condition variable: the hand-off point between a queue's capture thread and
/// its work thread. Taken once per chunk, never per packet.
///
/// The project's lock rule: `Monitor` where a thread must wait for a condition, or a lock is taken
/// in one call and released in a later one (`wirecap-fwd --tap PATH` holds its file's lock from a
/// chunk's first frame until the chunk has been sent); `Locked` (below) for a value held within
/// one scope by threads the sanitizer run covers; `Synchronization.Mutex` only elsewhere.
/// Mutex's lock is compiled into the standard library without ThreadSanitizer's instrumentation,
/// so TSan sees no ordering through it and reports the state it guards as raced (it did, for
/// the facade's handle gate and the queue counters); a pthread mutex it intercepts. The pthread
/// objects live on the heap, never in a stored property, since Swift does not promise a stored
/// property a stable address to hand to C.
@usableFromInline
package final class Monitor: @unchecked Sendable {
    // @unchecked: the pthread objects are only used through their own locking calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @usableFromInline @inline(__always) package func lock() { pthread_mutex_lock(mutex) }
    @usableFromInline @inline(__always) package func unlock() { pthread_mutex_unlock(mutex) }

    @usableFromInline @inline(__always)
    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (lock held) until signalled or `nanoseconds` pass.
    @usableFromInline
    func wait(nanoseconds: UInt64) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = UInt64(now.tv_nsec) + nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    @usableFromInline @inline(__always) func broadcast() { pthread_cond_broadcast(condition) }
}

/// A value behind a `Monitor`: `Mutex`'s shape (`withLock` hands the value `inout`), with a lock
/// ThreadSanitizer sees (see `Monitor`). Held within one call, never per packet.
package final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is touched only with `monitor` held.
    private let monitor = Monitor()
    private var value: Value

    package init(_ value: Value) { self.value = value }

    @inline(__always)
    package func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        monitor.lock()
        defer { monitor.unlock() }
        return try body(&value)
    }
}
