import WirecapEngine
import WirecapForward

// With --reconnect a run is several incarnations, each with counters from zero; the summary and
// --stats-json give the whole run, so the counts of each are added queue by queue. The laws are
// sums, so they hold for the sum if they hold for each part.

extension QueueStatistics {
    /// Counts added; the pool's low-water mark is the lowest, the backlog's high-water mark the
    /// highest; the latest socket error is `later`'s if it had one.
    public func adding(_ later: QueueStatistics) -> QueueStatistics {
        var sum = self
        sum.received += later.received
        sum.captureDrops += later.captureDrops
        sum.freezes += later.freezes
        sum.deliveryDrops += later.deliveryDrops
        sum.processed += later.processed
        sum.taken += later.taken
        sum.inRing += later.inRing
        sum.queued += later.queued
        sum.inHandler += later.inHandler
        sum.blocks += later.blocks
        sum.poolChunks = max(poolChunks, later.poolChunks)
        sum.poolFree = later.poolFree
        sum.poolFreeMinimum = min(poolFreeMinimum, later.poolFreeMinimum)
        sum.chunksCaptured += later.chunksCaptured
        sum.chunksRecycled += later.chunksRecycled
        sum.backlogMax = max(backlogMax, later.backlogMax)
        sum.backlog = later.backlog
        sum.blocksLent += later.blocksLent
        sum.blocksCopied += later.blocksCopied
        sum.blocksCopiedLater += later.blocksCopiedLater
        sum.heldBlockReached += later.heldBlockReached
        sum.blocksServedByWorkThread += later.blocksServedByWorkThread
        sum.captureWakeups += later.captureWakeups
        sum.offloadedOut += later.offloadedOut
        sum.offloadedIn += later.offloadedIn
        sum.rolledOver += later.rolledOver
        sum.rolloverHuge += later.rolloverHuge
        sum.rolloverFailed += later.rolloverFailed
        sum.socketErrors += later.socketErrors
        sum.lastSocketError = later.lastSocketError ?? lastSocketError
        sum.captureCPUSeconds += later.captureCPUSeconds
        sum.workCPUSeconds += later.workCPUSeconds
        return sum
    }
}

extension CaptureStatistics {
    /// The whole of two runs over the same queues (`nil` + later is later).
    public static func + (earlier: CaptureStatistics?, later: CaptureStatistics) -> CaptureStatistics {
        guard var sum = earlier else { return later }
        sum.queues = zip(sum.queues, later.queues).map { $0.adding($1) }
        return sum
    }
}

extension ForwardStatistics {
    public static func + (earlier: ForwardStatistics?, later: ForwardStatistics) -> ForwardStatistics {
        guard var sum = earlier else { return later }
        sum.queues = zip(sum.queues, later.queues).map { a, b in
            var q = a
            q.capture = a.capture.adding(b.capture)
            q.forwarded += b.forwarded
            q.verdictDrops += b.verdictDrops
            q.tooBig += b.tooBig
            q.txRingFullWaits += b.txRingFullWaits
            q.txErrors += b.txErrors
            q.inTransmitRing += b.inTransmitRing
            q.parked += b.parked
            q.chunksParked += b.chunksParked
            q.tapCopies += b.tapCopies
            q.tapDrops += b.tapDrops
            return q
        }
        return sum
    }
}
