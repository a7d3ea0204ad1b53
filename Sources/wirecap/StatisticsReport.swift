import Foundation
import WirecapCommandLine
import WirecapEngine

/// The `--stats-json` object. Keys are a contract other tools read; add, never rename.
struct StatisticsReport: StatisticsJSON {
    struct Queue: Encodable {
        let queue: Int
        let received: UInt64
        let captureDrops: UInt64
        let freezes: UInt64
        let deliveryDrops: UInt64
        let processed: UInt64
        let inFlight: UInt64
        let poolChunks: Int
        let poolFreeMin: Int
        let chunksCaptured: UInt64
        let chunksRecycled: UInt64
        let backlogMax: Int
        let offloadedOut: UInt64
        let offloadedIn: UInt64
        let blocksLent: UInt64
        let blocksCopied: UInt64
        let blocksCopiedLater: UInt64
        let copyRate: Double
        let heldBlockReached: UInt64
        let blocksServedByWorkThread: UInt64
        let captureWakeups: UInt64
        let rolledOver: UInt64
        let rolloverHuge: UInt64
        let rolloverFailed: UInt64
        let captureCpuSeconds: Double
        let workCpuSeconds: Double

        init(_ q: QueueStatistics) {
            queue = q.queue
            received = q.received
            captureDrops = q.captureDrops
            freezes = q.freezes
            deliveryDrops = q.deliveryDrops
            processed = q.processed
            inFlight = q.inFlight
            poolChunks = q.poolChunks
            poolFreeMin = q.poolFreeMinimum
            chunksCaptured = q.chunksCaptured
            chunksRecycled = q.chunksRecycled
            backlogMax = q.backlogMax
            offloadedOut = q.offloadedOut
            offloadedIn = q.offloadedIn
            blocksLent = q.blocksLent
            blocksCopied = q.blocksCopied
            blocksCopiedLater = q.blocksCopiedLater
            copyRate = q.copyRate
            heldBlockReached = q.heldBlockReached
            blocksServedByWorkThread = q.blocksServedByWorkThread
            captureWakeups = q.captureWakeups
            rolledOver = q.rolledOver
            rolloverHuge = q.rolloverHuge
            rolloverFailed = q.rolloverFailed
            captureCpuSeconds = q.captureCPUSeconds
            workCpuSeconds = q.workCPUSeconds
        }
    }
    struct Total: Encodable {
        let received: UInt64
        let captureDrops: UInt64
        let freezes: UInt64
        let deliveryDrops: UInt64
        let processed: UInt64
        let inFlight: UInt64
        let captured: UInt64
        let cpuSeconds: Double
    }
    let interface: String
    let queues: [Queue]
    let total: Total
    let seconds: Double
    /// Whether the conservation law holds on every queue.
    let conserved: Bool
    /// --reconnect: capture groups opened again after a lost link, and the seconds without one.
    let reconnects: Int
    let gapSeconds: Double

    /// `captured` is what the application kept (written to -w, counted against -c).
    init(interface: String, statistics: CaptureStatistics, captured: UInt64, seconds: Double, reconnects: Int = 0, gapSeconds: Double = 0) {
        self.interface = interface
        queues = statistics.queues.map(Queue.init)
        total = Total(
            received: statistics.received, captureDrops: statistics.captureDrops, freezes: statistics.freezes,
            deliveryDrops: statistics.deliveryDrops, processed: statistics.processed, inFlight: statistics.inFlight,
            captured: captured, cpuSeconds: statistics.cpuSeconds)
        self.seconds = seconds
        conserved = statistics.isConserved
        self.reconnects = reconnects
        self.gapSeconds = gapSeconds
    }
}
