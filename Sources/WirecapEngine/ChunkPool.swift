#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import CWirecapNuma
import Logging

/// Whether a pool's memory must be locked into RAM.
public enum MemoryLockPolicy: String, CaseIterable, Sendable {
    /// Lock where the limit allows; log a warning where it does not.
    case auto
    /// Lock, or refuse to open the capture.
    case required
    /// Do not lock.
    case off
}

/// One queue's WireCAP ring-buffer pool: R chunks allocated, touched (and locked) at open, on
/// the NUMA node of the queue's CPU.
///
/// WireCAP's operations: **open** takes a free chunk for the capture thread (`take`), **capture**
/// fills it from a retired ring block, **recycle** gives it back from any thread and in any order
/// (`recycle`), **close** frees the memory once the engine and every lease are gone. The free list
/// is a stack under a mutex: one lock round trip per chunk, no allocation after open.
@usableFromInline
package final class ChunkPool: @unchecked Sendable {
    // @unchecked: the memory is handed out chunk by chunk (one owner at a time); the free list
    // and the chunk states are only touched under `monitor`.
    @usableFromInline package let chunkCount: Int
    @usableFromInline package let chunkSize: Int
    package let queue: Int
    package let locked: Bool
    @usableFromInline let memory: UnsafeMutableRawPointer
    private let numaAllocated: Bool
    @usableFromInline let monitor = Monitor()
    private let freeStack: UnsafeMutablePointer<Int32>
    // 0 free, 1 out (captured, queued, in a handler or held). Guards against double recycles.
    private let state: UnsafeMutablePointer<UInt8>
    // Guarded by `monitor`, so the per-access exclusivity checks would only cost time.
    @exclusivity(unchecked) private var freeCount: Int
    @exclusivity(unchecked) private var freeMinimum: Int
    @exclusivity(unchecked) private var waiting = false
    @exclusivity(unchecked) private var taken: UInt64 = 0
    @exclusivity(unchecked) private var recycled: UInt64 = 0

    package init(queue: Int, chunks: Int, chunkSize: Int, node: Int?, lock policy: MemoryLockPolicy, logger: Logger) throws(CaptureError) {
        precondition(chunks > 0 && chunkSize > 0)
        self.queue = queue
        self.chunkCount = chunks
        self.chunkSize = chunkSize
        let bytes = chunks * chunkSize
        var pointer: UnsafeMutableRawPointer? = nil
        var numa = false
        if let node, CPUPlacement.numaAvailable {
            pointer = numa_alloc_onnode(bytes, Int32(node))
            numa = pointer != nil
        }
        if pointer == nil {
            let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            if mapped == MAP_FAILED {
                throw .configuration(.poolAllocationFailed(queue: queue, chunks: chunks, chunkSize: chunkSize))
            }
            pointer = mapped
        }
        memory = pointer!
        numaAllocated = numa
        // Touch every page now, so that no page fault lands on the capture path during a burst.
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        var didLock = false
        if policy != .off {
            if mlock(memory, bytes) == 0 {
                didLock = true
            } else {
                let code = errno
                let limit = CWirecapLinux_memlock_limit()
                if policy == .required {
                    Self.release(memory, bytes: bytes, numa: numa)
                    throw .configuration(
                        .poolLockFailed(queue: queue, bytes: bytes, errno: code, limit: limit == UInt64.max ? nil : limit))
                }
                let limitText = limit == UInt64.max ? "unlimited" : "\(limit) bytes"
                logger.warning(
                    "the \(bytes)-byte pool of queue \(queue) is not locked in memory (\(String(cString: strerror(code))); RLIMIT_MEMLOCK is \(limitText)): continuing unlocked; raise the limit with `ulimit -l`, or run as root, to lock it")
            }
        }
        locked = didLock
        freeStack = .allocate(capacity: chunks)
        for i in 0..<chunks { freeStack[i] = Int32(chunks - 1 - i) }
        state = .allocate(capacity: chunks)
        state.initialize(repeating: 0, count: chunks)
        freeCount = chunks
        freeMinimum = chunks
    }

    deinit {
        let bytes = chunkCount * chunkSize
        if locked { munlock(memory, bytes) }
        Self.release(memory, bytes: bytes, numa: numaAllocated)
        freeStack.deallocate()
        state.deallocate()
    }

    private static func release(_ memory: UnsafeMutableRawPointer, bytes: Int, numa: Bool) {
        if numa { numa_free(memory, bytes) } else { munmap(memory, bytes) }
    }

    @inlinable @inline(__always)
    package func address(of chunk: Int) -> UnsafeMutableRawPointer { memory + chunk &* chunkSize }

    /// Open: a free chunk, or nil when every chunk is out.
    @usableFromInline package func take() -> Int? {
        monitor.lock()
        defer { monitor.unlock() }
        return takeLocked()
    }

    private func takeLocked() -> Int? {
        guard freeCount > 0 else { return nil }
        freeCount -= 1
        if freeCount < freeMinimum { freeMinimum = freeCount }
        let chunk = Int(freeStack[freeCount])
        state[chunk] = 1
        taken &+= 1
        return chunk
    }

    /// Open, waiting up to `nanoseconds` for a recycle when every chunk is out.
    @usableFromInline package func take(waitingUpTo nanoseconds: UInt64) -> Int? {
        monitor.lock()
        defer { monitor.unlock() }
        if let chunk = takeLocked() { return chunk }
        waiting = true
        monitor.wait(nanoseconds: nanoseconds)
        waiting = false
        return takeLocked()
    }

    /// Recycle: from any thread, in any order. Recycling a chunk that is already free is a bug in
    /// the caller and stops the process rather than corrupting the free list.
    @usableFromInline package func recycle(_ chunk: Int) {
        monitor.lock()
        defer { monitor.unlock() }
        precondition(chunk >= 0 && chunk < chunkCount && state[chunk] == 1, "chunk \(chunk) of queue \(queue) recycled twice or never taken")
        state[chunk] = 0
        freeStack[freeCount] = Int32(chunk)
        freeCount += 1
        recycled &+= 1
        if waiting { monitor.broadcast() }
    }

    package struct Snapshot: Sendable, Equatable {
        package var chunks: Int
        package var free: Int
        package var freeMinimum: Int
        package var taken: UInt64
        package var recycled: UInt64
        /// Chunks out of the pool: captured and not yet recycled.
        package var out: Int { chunks - free }
    }

    package func snapshot() -> Snapshot {
        monitor.withLock { Snapshot(chunks: chunkCount, free: freeCount, freeMinimum: freeMinimum, taken: taken, recycled: recycled) }
    }
}
