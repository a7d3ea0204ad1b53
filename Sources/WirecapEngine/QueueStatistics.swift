import CWirecapLinux
import Metrics
import Synchronization

/// A snapshot of one queue's counters.
public struct QueueStatistics: Sendable, Equatable {
    public var queue: Int
    /// Packets handed to the application's handler.
    public var received: UInt64 = 0
    /// Packets the kernel dropped because the ring was full (`tp_drops`).
    public var captureDrops: UInt64 = 0
    /// Times the kernel found the ring full and froze the queue (`tp_freeze_q_cnt`).
    public var freezes: UInt64 = 0
    /// Packets the kernel put into the ring (`tp_packets - tp_drops`).
    public var kernelAccepted: UInt64 = 0
    /// Blocks walked.
    public var blocks: UInt64 = 0
    /// CPU seconds the capture thread used (set when the thread ends).
    public var cpuSeconds: Double = 0

    public init(queue: Int) { self.queue = queue }

    /// Accepted by the kernel but not (yet) handed to the handler: in the ring, or left there
    /// when the capture stopped. Zero after a drained stop; never silently lost.
    public var unread: UInt64 { kernelAccepted > received ? kernelAccepted - received : 0 }
}

/// The whole capture's counters.
public struct CaptureStatistics: Sendable, Equatable {
    public var queues: [QueueStatistics]
    public var received: UInt64 { queues.reduce(0) { $0 + $1.received } }
    public var captureDrops: UInt64 { queues.reduce(0) { $0 + $1.captureDrops } }
    public var freezes: UInt64 { queues.reduce(0) { $0 + $1.freezes } }
    public var kernelAccepted: UInt64 { queues.reduce(0) { $0 + $1.kernelAccepted } }
    public var unread: UInt64 { queues.reduce(0) { $0 + $1.unread } }
    public var cpuSeconds: Double { queues.reduce(0) { $0 + $1.cpuSeconds } }
}

/// One queue's counters, shared between its capture thread and whoever asks for a snapshot.
///
/// The capture thread publishes `received` once per block, not per packet. `PACKET_STATISTICS`
/// resets on every read and its counters are 32-bit, so every read is folded into 64-bit totals
/// under a lock; it is read at least once a second, whenever a block says packets were lost,
/// and on every snapshot.
@usableFromInline
final class QueueCounters: Sendable {
    struct KernelTotals {
        var packets: UInt64 = 0
        var drops: UInt64 = 0
        var freezes: UInt64 = 0
        var cpuSeconds: Double = 0
    }

    let queue: Int
    @usableFromInline let received = Atomic<UInt64>(0)
    @usableFromInline let blocks = Atomic<UInt64>(0)
    private let kernel = Mutex(KernelTotals())
    private let dropsCounter: Counter
    private let packetsCounter: Counter

    init(queue: Int, interface: String) {
        self.queue = queue
        let dimensions = [("interface", interface), ("queue", String(queue))]
        dropsCounter = Counter(label: "wirecap_capture_drops", dimensions: dimensions)
        packetsCounter = Counter(label: "wirecap_kernel_packets", dimensions: dimensions)
    }

    /// Folds the kernel's counters since the last read into the totals.
    @usableFromInline
    func refresh(socket fd: Int32) {
        var packets: UInt64 = 0
        var drops: UInt64 = 0
        var freezes: UInt64 = 0
        kernel.withLock { totals in
            guard CWirecapLinux_read_stats(fd, &packets, &drops, &freezes) == 0 else { return }
            totals.packets += packets
            totals.drops += drops
            totals.freezes += freezes
        }
        if drops > 0 { dropsCounter.increment(by: Int64(drops)) }
        if packets > 0 { packetsCounter.increment(by: Int64(packets)) }
    }

    @usableFromInline
    func recordCPU(seconds: Double) {
        kernel.withLock { $0.cpuSeconds = seconds }
    }

    /// `received` is read before the kernel's counters are refreshed: everything handed to the
    /// handler was counted by the kernel first, so `kernelAccepted >= received` in every snapshot.
    @usableFromInline
    func snapshot(socket fd: Int32) -> QueueStatistics {
        var stats = QueueStatistics(queue: queue)
        stats.received = received.load(ordering: .acquiring)
        stats.blocks = blocks.load(ordering: .relaxed)
        refresh(socket: fd)
        kernel.withLock { totals in
            stats.captureDrops = totals.drops
            stats.freezes = totals.freezes
            stats.kernelAccepted = totals.packets - totals.drops
            stats.cpuSeconds = totals.cpuSeconds
        }
        return stats
    }
}
