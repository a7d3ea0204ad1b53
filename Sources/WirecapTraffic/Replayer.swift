import CWirecapLinux
import WirecapEngine

/// How a replay is paced and repeated.
public struct ReplayOptions: Sendable, Equatable {
    public enum Pacing: Sendable, Equatable {
        /// The file's own gaps between packets, divided by `multiplier` (1: as recorded).
        case fileTiming(multiplier: Double)
        /// Evenly spaced, this many packets a second.
        case packetsPerSecond(Double)
        /// As fast as the interface takes frames.
        case topSpeed
    }

    /// `packets` as fast as possible, then `gapNanoseconds` of silence, again and again.
    public struct Burst: Sendable, Equatable {
        public var packets: Int
        public var gapNanoseconds: UInt64
        public init(packets: Int, gapNanoseconds: UInt64) {
            self.packets = packets
            self.gapNanoseconds = gapNanoseconds
        }
    }

    public var pacing: Pacing
    /// Times the whole file is sent.
    public var loops: Int
    public var burst: Burst?
    /// Most frames handed to the kernel by one kick.
    public var batch: Int

    public init(pacing: Pacing = .fileTiming(multiplier: 1), loops: Int = 1, burst: Burst? = nil, batch: Int = 256) {
        self.pacing = pacing
        self.loops = loops
        self.burst = burst
        self.batch = batch
    }
}

/// What a replay did. Every frame the schedule reached is either sent, refused (by reason) or,
/// when the interface stopped taking frames, left unsent.
public struct ReplayReport: Sendable {
    /// Frames the kernel took and gave back as sent.
    public var packets = 0
    public var bytes = 0
    /// From the first frame due to the last one sent.
    public var seconds = 0.0
    public var refused: [FrameRefusal: Int] = [:]
    /// Frames still in the ring when the replay gave up on a stalled interface.
    public var unsent = 0
    /// Frames the schedule reached: packets + refused + unsent.
    public var offered = 0
    /// Stopped early on request (SIGINT).
    public var interrupted = false
    /// Why the replay ended early, if the interface failed.
    public var failure: CaptureError?
    /// Kicks the kernel answered with "busy" (its queue or the socket's budget was full).
    public var busyKicks = 0
    /// CPU time of the sending thread over `seconds`, user and system (on veth this includes the
    /// receiving end's softirq work, which runs in the sender's context).
    public var cpuSeconds = 0.0

    public var refusedTotal: Int { refused.values.reduce(0, +) }
    public var packetsPerSecond: Double { seconds > 0 ? Double(packets) / seconds : 0 }
    /// Frame bytes as captured (no preamble, gap or frame check sequence), in 10^6 bits a second.
    public var megabitsPerSecond: Double { seconds > 0 ? Double(bytes) * 8 / seconds / 1e6 : 0 }
}

/// A progress sample, about once a second.
public struct ReplayProgress: Sendable {
    public var sent: Int
    public var seconds: Double
    /// Over the last interval.
    public var packetsPerSecond: Double
}

/// Sends a loaded trace through a transmit ring on a schedule.
///
/// Every frame has an absolute deadline counted from the start (file timing: the record's place
/// in the file divided by the multiplier, plus one file span per loop; fixed rate: n / rate), so
/// a late wake-up is caught up by the following frames and errors never add up. Frames that are
/// due are put in the ring together and handed over with one kick; the thread sleeps (absolute
/// CLOCK_MONOTONIC deadlines, 1 us timer slack) only when the next frame is not yet due, so at
/// high rates frames go out in batches and at low rates one at a time. Frames the kernel would
/// refuse (over the MTU, runts) are counted before they go into the ring.
public final class Replayer {
    public let trace: LoadedTrace
    public let ring: TxRing
    public let options: ReplayOptions
    /// How often `progress` is called.
    public var progressInterval: UInt64 = 1_000_000_000
    /// How often `shouldStop` is asked.
    public var stopCheckInterval: UInt64 = 10_000_000
    /// How long the interface may take no frame before the replay gives up.
    public var stallNanoseconds: UInt64 = 5_000_000_000

    public init(trace: LoadedTrace, ring: TxRing, options: ReplayOptions) {
        self.trace = trace
        self.ring = ring
        self.options = options
    }

    /// `start` plus `nanoseconds`, saturated at the clock's end: a tiny rate or multiplier (or
    /// a NaN from a caller's arithmetic) makes a deadline that is never reached, never a trap
    /// converting a Double beyond UInt64.
    static func deadline(after start: UInt64, nanoseconds: Double) -> UInt64 {
        guard nanoseconds > 0 else { return start }
        // 2^63 converts exactly; a sum past the clock's end saturates too.
        guard nanoseconds < 9_223_372_036_854_775_808.0 else { return .max }
        let (sum, overflow) = start.addingReportingOverflow(UInt64(nanoseconds))
        return overflow ? .max : sum
    }

    /// Replays the trace on the calling thread. `progress` and `shouldStop` run on it too.
    public func run(progress: ((ReplayProgress) -> Void)? = nil, shouldStop: (() -> Bool)? = nil) -> ReplayReport {
        let n = trace.count
        // What the kernel would refuse, decided once per record: 0 send, 1 over the MTU, 2 runt.
        var verdicts = [UInt8](repeating: 0, count: n)
        for k in 0..<n {
            switch ring.refusal(of: trace.record(k)) {
            case nil: verdicts[k] = 0
            case .runt?: verdicts[k] = 2
            default: verdicts[k] = 1
            }
        }
        var preRefused = (overMTU: 0, runt: 0)
        let batch = max(1, min(options.batch, ring.frameCount))
        let loops = max(1, options.loops)
        let span = trace.span
        _ = CWirecapLinux_set_timer_slack_ns(1_000)

        var report = ReplayReport()
        let cpuAtStart = CWirecapLinux_thread_cpu_seconds()
        let start = CWirecapLinux_monotonic_ns()
        var now = start
        var handed = 0
        var nextStopCheck = start + stopCheckInterval
        var nextProgress = start + progressInterval
        var lastProgressSent = 0
        var lastProgressTime = start
        var burstLeft = options.burst?.packets ?? Int.max
        var pauseUntil: UInt64 = 0
        var stopped = false

        /// Stop checks and progress; returns true to stop.
        func tick(_ now: UInt64) -> Bool {
            if now >= nextProgress {
                nextProgress = now + progressInterval
                if let progress {
                    let interval = Double(now - lastProgressTime) / 1e9
                    progress(ReplayProgress(
                        sent: ring.sent, seconds: Double(now - start) / 1e9,
                        packetsPerSecond: interval > 0 ? Double(ring.sent - lastProgressSent) / interval : 0))
                    lastProgressSent = ring.sent
                    lastProgressTime = now
                }
            }
            if now >= nextStopCheck {
                nextStopCheck = now + stopCheckInterval
                if let shouldStop, shouldStop() { return true }
            }
            return false
        }

        /// Sleeps until `deadline`, waking for stop checks and progress; false when told to stop.
        func wait(until deadline: UInt64) -> Bool {
            while true {
                let now = CWirecapLinux_monotonic_ns()
                if now >= deadline { return true }
                if tick(now) { return false }
                _ = CWirecapLinux_sleep_until_ns(min(deadline, nextStopCheck, nextProgress))
            }
        }

        do throws(CaptureError) {
            trace: for loop in 0..<loops {
                // Saturates: many loops of a long trace mean "later than anyone waits", not a trap.
                let loopStart = Int64(loop).multipliedReportingOverflow(by: span).overflow ? Int64.max : Int64(loop) * span
                for k in 0..<n {
                    let verdict = verdicts[k]
                    if verdict != 0 {
                        if verdict == 1 { preRefused.overMTU += 1 } else { preRefused.runt += 1 }
                        continue
                    }
                    var deadline: UInt64
                    switch options.pacing {
                    case .topSpeed:
                        deadline = 0
                    case .packetsPerSecond(let rate):
                        deadline = Self.deadline(after: start, nanoseconds: Double(handed) * 1e9 / rate)
                    case .fileTiming(let multiplier):
                        let (due, overflow) = loopStart.addingReportingOverflow(trace.offset(k))
                        deadline = Self.deadline(after: start, nanoseconds: (overflow ? Double(Int64.max) : Double(due)) / multiplier)
                    }
                    if burstLeft == 0, let burst = options.burst {
                        // A burst is complete: hand it over, then stay silent for the gap.
                        try ring.kick()
                        ring.reclaim()
                        now = CWirecapLinux_monotonic_ns()
                        pauseUntil = now + burst.gapNanoseconds
                        burstLeft = burst.packets
                    }
                    deadline = max(deadline, pauseUntil)
                    if deadline > now {
                        now = CWirecapLinux_monotonic_ns()
                        if deadline > now {
                            // Nothing more is due: send what is queued, then sleep.
                            if ring.unkicked > 0 {
                                try ring.kick()
                                ring.reclaim()
                            }
                            if !wait(until: deadline) {
                                stopped = true
                                break trace
                            }
                            now = CWirecapLinux_monotonic_ns()
                        }
                    }
                    if !ring.hasRoom {
                        try ring.serviceUntil(stallNanoseconds: stallNanoseconds) { ring.hasRoom }
                    }
                    ring.put(trace.record(k))
                    handed += 1
                    burstLeft -= 1
                    if ring.unkicked >= batch {
                        try ring.kick()
                        ring.reclaim()
                        now = CWirecapLinux_monotonic_ns()
                        if now >= nextStopCheck || now >= nextProgress {
                            if tick(now) {
                                stopped = true
                                break trace
                            }
                        }
                    }
                }
            }
            try ring.finish(stallNanoseconds: stallNanoseconds)
        } catch {
            report.failure = error
            report.unsent = ring.inFlight
        }
        let end = CWirecapLinux_monotonic_ns()
        report.packets = ring.sent
        report.bytes = ring.bytes
        report.seconds = Double(end - start) / 1e9
        report.cpuSeconds = CWirecapLinux_thread_cpu_seconds() - cpuAtStart
        report.refused = ring.refused
        if preRefused.overMTU > 0 { report.refused[.overMTU, default: 0] += preRefused.overMTU }
        if preRefused.runt > 0 { report.refused[.runt, default: 0] += preRefused.runt }
        report.offered = handed + preRefused.overMTU + preRefused.runt
        report.interrupted = stopped
        report.busyKicks = ring.busyKicks
        return report
    }
}
