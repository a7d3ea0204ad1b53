import Foundation
import WirecapEngine

/// `--stats-interval`'s line for a person on standard error: every queue's packets a second
/// since the last line, its capture drops in that time (and in all), its backlog and the chunks
/// it offloaded, then the totals, after the wall-clock time:
///
///     2026-12-03 12:00:05.000 q0 74012 pkt/s 0 drops (0) backlog 1 off 0/3 | q1 ... | all 150318 pkt/s 0 drops (0)
///
/// The rates are differences of the engine's counters (`received`, the kernel's count of what it
/// accepted, and `captureDrops`), so a line costs one statistics snapshot and no work on the
/// capture threads. `extra` adds a tool's own per-queue figures (the forwarder's).
public struct IntervalLine {
    private var last: [QueueStatistics]? = nil
    private var lastTime: UInt64 = 0

    public init() {}

    /// The line for `queues` at monotonic time `now` (ns); the first line's rates count from the
    /// start of the capture, `since`.
    public mutating func line(_ queues: [QueueStatistics], now: UInt64, since start: UInt64, extra: (Int) -> String = { _ in "" }) -> String {
        let previous = last ?? queues.map { QueueStatistics(queue: $0.queue) }
        let seconds = max(1e-9, Double(now &- (last == nil ? start : lastTime)) / 1e9)
        last = queues
        lastTime = now
        var parts: [String] = []
        var rate = 0.0
        var drops: UInt64 = 0
        for (q, before) in zip(queues, previous) {
            let received = q.received &- min(q.received, before.received)
            let dropped = q.captureDrops &- min(q.captureDrops, before.captureDrops)
            rate += Double(received) / seconds
            drops += dropped
            var part = "q\(q.queue) \(Int((Double(received) / seconds).rounded())) pkt/s \(dropped) drops (\(q.captureDrops))"
            if q.poolChunks > 0 { part += " backlog \(q.backlog)" }
            if q.offloadedOut + q.offloadedIn > 0 { part += " off \(q.offloadedOut)/\(q.offloadedIn)" }
            part += extra(q.queue)
            parts.append(part)
        }
        let total = queues.reduce(UInt64(0)) { $0 + $1.captureDrops }
        parts.append("all \(Int(rate.rounded())) pkt/s \(drops) drops (\(total))")
        return LinkRun.clock() + " " + parts.joined(separator: " | ")
    }
}

/// When the next `--stats-interval` line is due: at the first turn, then every interval; a turn
/// that comes late moves the schedule on rather than printing a burst of lines to catch up.
public struct IntervalSchedule {
    private let nanoseconds: UInt64
    private var next: UInt64 = 0

    public init(seconds: Double) { nanoseconds = UInt64(seconds * 1e9) }

    public mutating func isDue(now: UInt64) -> Bool {
        if next == 0 { next = now }
        guard now >= next else { return false }
        next = max(next + nanoseconds, now + nanoseconds / 2)
        return true
    }
}
