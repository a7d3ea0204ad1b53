#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Synchronization

/// One WireCAP receive queue: a fanout member socket with its ring, and its counters.
///
/// `run` is the capture thread's loop: take the next block in ring order once the kernel has
/// retired it, walk it, give it back, and sleep in `poll` when there is nothing to take. Blocks
/// go back strictly in ring order and right after the walk, so the ring never waits on user space
/// longer than one handler pass over one block.
public final class CaptureQueue: Sendable {
    public let index: Int
    public let cpu: Int?
    @usableFromInline let ring: RxRing
    @usableFromInline let counters: QueueCounters
    @usableFromInline let snapLength: Int
    @usableFromInline let reinsertVLAN: Bool
    @usableFromInline let blockTimeoutMilliseconds: Int

    init(index: Int, cpu: Int?, ring: RxRing, interface: String, snapLength: Int, reinsertVLAN: Bool, blockTimeoutMilliseconds: Int) {
        self.index = index
        self.cpu = cpu
        self.ring = ring
        self.counters = QueueCounters(queue: index, interface: interface)
        self.snapLength = snapLength
        self.reinsertVLAN = reinsertVLAN
        self.blockTimeoutMilliseconds = blockTimeoutMilliseconds
    }

    public func statistics() -> QueueStatistics { counters.snapshot(socket: ring.fd) }

    /// The member socket, for `poll`/`select` integration and diagnostics. Owned by the engine.
    public var socketDescriptor: Int32 { ring.fd }

    /// How long a stop waits for the kernel to retire the block it is filling: the retire timer
    /// fires after the block timeout (8 ms when the kernel picks), so twice that plus slack.
    @usableFromInline var drainWindowNanoseconds: UInt64 {
        UInt64(max(blockTimeoutMilliseconds, 8) * 2 + 100) * 1_000_000
    }

    @inlinable
    public func run<H: PacketHandler>(handler: inout H, control: CaptureControl) {
        let statsInterval: UInt64 = 1_000_000_000
        var nextStats = CWirecapLinux_monotonic_coarse_ns() + statsInterval
        var index = 0
        var received: UInt64 = 0
        var blocks: UInt64 = 0
        // Once a stop is seen: no new packets may enter (drop-all filter), and we keep taking
        // blocks until everything the kernel accepted has been handed over, or the window ends.
        var drainTarget: UInt64? = nil
        var drainDeadline: UInt64 = 0
        var fds = (
            pollfd(fd: ring.fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0))

        while true {
            let block = ring.block(index)
            let status = CWirecapLinux_block_status_acquire(block)
            if status & BlockWalk.statusUser != 0 {
                received &+= UInt64(
                    BlockWalk.walk(block: block, queue: self.index, snapLength: snapLength, reinsertVLAN: reinsertVLAN, handler: &handler))
                blocks &+= 1
                CWirecapLinux_block_release(block)
                index = index + 1 == ring.blockCount ? 0 : index + 1
                counters.received.store(received, ordering: .releasing)
                counters.blocks.store(blocks, ordering: .relaxed)
                let now = CWirecapLinux_monotonic_coarse_ns()
                if status & BlockWalk.statusLosing != 0 || now >= nextStats {
                    counters.refresh(socket: ring.fd)
                    nextStats = now + statsInterval
                }
                continue
            }
            if drainTarget == nil && control.isStopping {
                try? ring.setReturnFilter(0)
                let accepted = counters.snapshot(socket: ring.fd).kernelAccepted
                drainTarget = accepted
                drainDeadline = CWirecapLinux_monotonic_ns() + drainWindowNanoseconds
            }
            if let target = drainTarget {
                if received >= target || CWirecapLinux_monotonic_ns() >= drainDeadline { break }
                // Only the ring now: the wake-up fd stays readable after a stop.
                fds.0.revents = 0
                _ = poll(&fds.0, 1, 5)
                continue
            }
            fds.0.revents = 0
            fds.1.revents = 0
            withUnsafeMutablePointer(to: &fds) { pair in
                pair.withMemoryRebound(to: pollfd.self, capacity: 2) { _ = poll($0, 2, 1000) }
            }
            let now = CWirecapLinux_monotonic_coarse_ns()
            if now >= nextStats {
                counters.refresh(socket: ring.fd)
                nextStats = now + statsInterval
            }
        }
        counters.refresh(socket: ring.fd)
        counters.recordCPU(seconds: CWirecapLinux_thread_cpu_seconds())
    }
}
