import Metrics
import Synchronization
import WirecapLinux

/// A snapshot of one queue's counters. Packets obey the conservation law
/// `received == processed + deliveryDrops + inFlight` in every snapshot, where `inFlight` is
/// counted in its parts (ring, capture queue, handler); nothing is lost silently.
public struct QueueStatistics: Sendable, Equatable {
    public var queue: Int
    /// Packets the kernel accepted into the ring (`tp_packets - tp_drops`).
    public var received: UInt64 = 0
    /// Packets the kernel dropped because the ring was full (`tp_drops`).
    public var captureDrops: UInt64 = 0
    /// Times the kernel found the ring full and froze the queue (`tp_freeze_q_cnt`).
    public var freezes: UInt64 = 0
    /// Packets lost inside the library after the kernel accepted them. A full pool pushes back
    /// into the ring instead of dropping, so this stays 0 unless that design changes; it is
    /// counted, not assumed.
    public var deliveryDrops: UInt64 = 0
    /// Packets the handler has finished with.
    public var processed: UInt64 = 0
    /// Packets taken out of the ring: the `num_pkts` of every block the capture thread took,
    /// counted by that thread, apart from what later happened to them.
    public var taken: UInt64 = 0
    /// Accepted but not yet taken from the ring (in it, or left there at stop): counted in the
    /// ring's blocks once the capture thread has finished, `received - taken` while it runs.
    public var inRing: UInt64 = 0
    /// Packets in filled chunks waiting in the capture queue (pool mode).
    public var queued: UInt64 = 0
    /// Packets of the chunk a handler is working on (pool mode).
    public var inHandler: UInt64 = 0
    /// Ring blocks taken.
    public var blocks: UInt64 = 0
    /// Pool figures (pool mode; zero otherwise).
    public var poolChunks: Int = 0
    public var poolFree: Int = 0
    /// The fewest free chunks the pool ever had: how close a burst came to exhausting it.
    public var poolFreeMinimum: Int = 0
    public var chunksCaptured: UInt64 = 0
    public var chunksRecycled: UInt64 = 0
    /// Chunks waiting in the capture queue now (pool mode).
    public var backlog: Int = 0
    /// The most chunks ever waiting in the capture queue at once.
    public var backlogMax: Int = 0
    /// The hybrid pool (pool mode): chunks made of ring blocks lent to handlers in place, chunks
    /// the capture thread copied into the pool, loans copied later (a handler kept the chunk, a
    /// reader moved it out of the ring, or a loan still waiting for its consumer was reclaimed
    /// behind a backlog or ahead of the kernel), and times the capture thread
    /// came round the ring to a block still lent (lending then pauses until every loan is
    /// back). Without zero copy every chunk is copied at capture.
    public var blocksLent: UInt64 = 0
    public var blocksCopied: UInt64 = 0
    public var blocksCopiedLater: UInt64 = 0
    public var heldBlockReached: UInt64 = 0
    /// Of the lent blocks, those the queue's work thread took from the ring itself, with nothing
    /// waiting for it (one thread woken for the block instead of two: `RingCursor`).
    public var blocksServedByWorkThread: UInt64 = 0
    /// Times the capture thread woke from its sleep on the ring (a retired block, a stop, a
    /// nudge from the work thread, or its one-second time-out).
    public var captureWakeups: UInt64 = 0
    /// Chunks this queue's capture thread sent to a buddy, and its work thread took from buddies.
    public var offloadedOut: UInt64 = 0
    public var offloadedIn: UInt64 = 0
    /// Kernel rollover (`--rollover`, from PACKET_ROLLOVER_STATS, as counted on this socket):
    /// packets the kernel moved from this queue to another member because this ring was nearly
    /// full, how many of those while the flow was "huge", and packets that found no member with room.
    public var rolledOver: UInt64 = 0
    public var rolloverHuge: UInt64 = 0
    public var rolloverFailed: UInt64 = 0
    /// Errors the kernel posted on the queue's socket (SO_ERROR), and the latest of them:
    /// `.networkDown` when the interface went down. Capture goes on if it comes back up.
    public var socketErrors: UInt64 = 0
    public var lastSocketError: Errno? = nil
    /// CPU seconds of the capture thread and of the work thread (set when each ends).
    public var captureCPUSeconds: Double = 0
    public var workCPUSeconds: Double = 0

    public init(queue: Int) { self.queue = queue }

    /// Sets `inRing`: the ring's own count once the capture thread has finished (`counted`),
    /// so that a packet the kernel accepted that is neither taken nor in the ring breaks the law.
    /// While blocks are being taken the ring cannot be counted consistently with `taken`: then
    /// the kernel's accepted count minus what was taken, never clamped into agreement (if more
    /// was taken than accepted, 0, and `isConserved` says so).
    package mutating func settleRing(counted: UInt64?) {
        if let counted {
            inRing = counted
        } else {
            inRing = received >= taken ? received - taken : 0
        }
    }

    public var inFlight: UInt64 { inRing + queued + inHandler }
    /// Blocks copied (at capture, or later) per block that became a chunk: 0 when every
    /// chunk was a lent ring block, 1 when every one was copied (pool mode; 0 without a pool).
    public var copyRate: Double {
        let chunks = blocksLent + blocksCopied
        return chunks == 0 ? 0 : Double(blocksCopied + blocksCopiedLater) / Double(chunks)
    }
    public var cpuSeconds: Double { captureCPUSeconds + workCPUSeconds }
    /// Chunks out of the pool that are neither waiting nor in a handler: kept by the application.
    public var chunksHeld: Int { max(0, poolChunks - poolFree) }
    /// The conservation law, checked on counters that are kept apart, in two halves that can
    /// each fail: the ring (the kernel's accepted count is what the capture thread took plus
    /// what is still in the ring, so it can never have taken more) and the library (every packet
    /// taken is processed, dropped on delivery and counted, waiting in the capture queue, or in
    /// a handler). Deriving `inRing` as the remainder of the whole sum, as before, made the law
    /// an identity that only a negative remainder could break: a packet taken from the ring and
    /// then lost uncounted vanished into `inRing`.
    public var isConserved: Bool {
        received >= taken && received == taken + inRing
            && taken == processed + deliveryDrops + queued + inHandler
    }
}

/// The whole capture's counters: per queue and summed.
public struct CaptureStatistics: Sendable, Equatable {
    public var queues: [QueueStatistics]
    public var received: UInt64 { queues.reduce(0) { $0 + $1.received } }
    public var captureDrops: UInt64 { queues.reduce(0) { $0 + $1.captureDrops } }
    public var freezes: UInt64 { queues.reduce(0) { $0 + $1.freezes } }
    public var deliveryDrops: UInt64 { queues.reduce(0) { $0 + $1.deliveryDrops } }
    public var processed: UInt64 { queues.reduce(0) { $0 + $1.processed } }
    public var inFlight: UInt64 { queues.reduce(0) { $0 + $1.inFlight } }
    public var taken: UInt64 { queues.reduce(0) { $0 + $1.taken } }
    public var cpuSeconds: Double { queues.reduce(0) { $0 + $1.cpuSeconds } }
    public var isConserved: Bool { queues.allSatisfy(\.isConserved) }
    /// Everything offered to the interface after readiness: accepted or dropped by the kernel.
    public var offered: UInt64 { received + captureDrops }
}

/// One queue's counters, shared between its threads and whoever asks for a snapshot.
///
/// The capture thread publishes `taken` once per block, not per packet. `PACKET_STATISTICS`
/// resets on every read and its counters are 32-bit, so every read is folded into 64-bit totals
/// under a lock; it is read at least once a second, whenever a block says packets were lost,
/// and on every snapshot.
@usableFromInline
final class QueueCounters: Sendable {
    struct KernelTotals {
        var packets: UInt64 = 0
        var drops: UInt64 = 0
        var freezes: UInt64 = 0
        var captureCPU: Double = 0
        var workCPU: Double = 0
    }

    let queue: Int
    /// Packets taken out of the ring (walked in plain mode, copied into chunks in pool mode).
    @usableFromInline let taken = Atomic<UInt64>(0)
    @usableFromInline let blocks = Atomic<UInt64>(0)
    @usableFromInline let captureWakeups = Atomic<UInt64>(0)
    /// Blocks the work thread took from the ring itself (`ReceiveQueue.serveWorkThread`).
    @usableFromInline let servedByWorkThread = Atomic<UInt64>(0)
    /// Errors posted on the socket, and the latest one's errno (0: none yet).
    let socketErrors = Atomic<UInt64>(0)
    let lastSocketError = Atomic<Int32>(0)
    /// Set when the capture thread has left its loop: from then on the ring can be counted.
    @usableFromInline let captureFinished = Atomic<Bool>(false)
    private let kernel = Locked(KernelTotals())
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
    func refresh(socket: PacketSocket) {
        let read = kernel.withLock { totals -> PacketSocket.Statistics? in
            guard let read = try? socket.statistics() else { return nil }
            totals.packets += read.packets
            totals.drops += read.drops
            totals.freezes += read.freezes
            return read
        }
        guard let read else { return }
        if read.drops > 0 { dropsCounter.increment(by: Int64(read.drops)) }
        if read.packets > 0 { packetsCounter.increment(by: Int64(read.packets)) }
    }

    /// Packets accepted into the ring so far, as of the last refresh.
    @usableFromInline
    var kernelAccepted: UInt64 { kernel.withLock { $0.packets - $0.drops } }

    @usableFromInline
    func noteSocketError(_ error: Errno) {
        lastSocketError.store(error.rawValue, ordering: .relaxed)
        socketErrors.add(1, ordering: .releasing)
    }

    /// The latest error posted on the socket, if any was.
    var socketError: Errno? {
        socketErrors.load(ordering: .acquiring) == 0 ? nil : Errno(rawValue: lastSocketError.load(ordering: .relaxed))
    }

    @usableFromInline
    func recordCaptureCPU(seconds: Double) { kernel.withLock { $0.captureCPU = seconds } }

    @usableFromInline
    func recordWorkCPU(seconds: Double) { kernel.withLock { $0.workCPU = seconds } }

    /// What the library counted is read before the kernel's counters are refreshed: the kernel
    /// counted every packet before we could take it, so `received >= taken` in every snapshot.
    @usableFromInline
    func snapshot(ring: RxRing, exchange: ChunkExchange?) -> QueueStatistics {
        let socket = ring.socket
        // Read first: once the capture thread is gone nobody takes a block, so the ring's own
        // count is exact (the drop-all filter of the drain keeps new packets out).
        let finished = captureFinished.load(ordering: .acquiring)
        var stats = QueueStatistics(queue: queue)
        var takenFromRing: UInt64
        let pooled = exchange?.snapshot(of: queue)
        if let (_, counts) = pooled {
            takenFromRing = counts.captured
            stats.queued = counts.queued
            stats.inHandler = counts.inHandler
            stats.processed = counts.processed
            stats.backlogMax = counts.backlogMax
            stats.backlog = counts.backlog
            stats.offloadedOut = counts.offloadedOut
            stats.offloadedIn = counts.offloadedIn
        } else {
            takenFromRing = taken.load(ordering: .acquiring)
            stats.processed = takenFromRing
        }
        if let (pool, _) = pooled {
            let p = pool.snapshot()
            stats.poolChunks = p.chunks
            stats.poolFree = p.free
            stats.poolFreeMinimum = p.freeMinimum
            stats.chunksCaptured = p.taken
            stats.chunksRecycled = p.recycled
        }
        if let loans = exchange?.loans(of: queue) {
            let l = loans.snapshot()
            stats.blocksLent = l.lent
            stats.blocksCopied = l.copiedAtCapture
            stats.blocksCopiedLater = l.copiedLater
            stats.heldBlockReached = l.heldBlockReached
        } else if let (_, counts) = pooled {
            stats.blocksCopied = counts.chunksCaptured
        }
        stats.blocks = blocks.load(ordering: .relaxed)
        stats.captureWakeups = captureWakeups.load(ordering: .relaxed)
        stats.blocksServedByWorkThread = servedByWorkThread.load(ordering: .relaxed)
        stats.socketErrors = socketErrors.load(ordering: .acquiring)
        stats.lastSocketError = socketError
        // Fails (EINVAL) unless the group was joined with rollover: then the counts stay 0.
        if let rollover = try? socket.rolloverStatistics() {
            stats.rolledOver = rollover.all
            stats.rolloverHuge = rollover.huge
            stats.rolloverFailed = rollover.failed
        }
        refresh(socket: socket)
        kernel.withLock { totals in
            stats.captureDrops = totals.drops
            stats.freezes = totals.freezes
            stats.received = totals.packets - totals.drops
            stats.captureCPUSeconds = totals.captureCPU
            stats.workCPUSeconds = totals.workCPU
        }
        stats.taken = takenFromRing
        stats.settleRing(counted: finished ? ring.packetsHeld() : nil)
        return stats
    }
}
