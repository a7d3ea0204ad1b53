import Foundation

/// One repetition of one point.
package struct RunResult: Sendable, Codable, Equatable {
    /// Frames the sender handed to the kernel: the ground truth of what was offered.
    package var offered: Int
    package var refusedBySender: Int
    package var queues: [QueueFigures]
    package var cpuSeconds: Double
    package var sendSeconds: Double
    package var duplicated: Int
    package var conserved: Bool
    /// The fwd scenario's figures (nil in the capture scenarios). There, `processed` is what the
    /// sink received, `queues` are the forwarder's own counts where it reports them, and
    /// `cpuSeconds` is the forwarder process's CPU time.
    package var forward: ForwardFigures? = nil
    /// The second half of the run by sequence number (frames are sent in sequence order): frames
    /// offered and frames the handler never processed. For a sustained point this is the steady
    /// state, the buffers' first fill being in the first half. nil where frames carry no sequence
    /// number (a replayed trace).
    package var secondHalf: HalfFigures? = nil
    /// Frames of a flow processed after a later frame of the same flow (FlowOrder), in the order
    /// the handlers ran; nil where frames carry no sequence number, or in the model.
    package var reordered: Int? = nil
    /// The same after restoring each owner queue's order by chunk sequence, as a reader told
    /// every chunk's owner and sequence (`chunkBegins`) can: nil for engines that do not tell.
    package var reorderedRestored: Int? = nil

    /// Frames the handler processed; in the fwd scenario, numbered frames delivered at the sink.
    package var processed: UInt64 { forward.map { UInt64($0.delivered) } ?? queues.reduce(0) { $0 + $1.processed } }
    package var captureDrops: UInt64 { queues.reduce(0) { $0 + $1.captureDrops } }
    package var deliveryDrops: UInt64 { queues.reduce(0) { $0 + $1.deliveryDrops } }
    /// Share of offered frames the handler never processed.
    package var dropRate: Double { offered > 0 ? max(0, Double(offered) - Double(processed)) / Double(offered) : 0 }
    package var cpuNanosecondsPerPacket: Double { processed > 0 ? cpuSeconds / Double(processed) * 1e9 : 0 }

    package init(
        offered: Int, refusedBySender: Int, queues: [QueueFigures], cpuSeconds: Double, sendSeconds: Double, duplicated: Int, conserved: Bool,
        forward: ForwardFigures? = nil, secondHalf: HalfFigures? = nil, reordered: Int? = nil, reorderedRestored: Int? = nil
    ) {
        self.offered = offered
        self.refusedBySender = refusedBySender
        self.queues = queues
        self.cpuSeconds = cpuSeconds
        self.sendSeconds = sendSeconds
        self.duplicated = duplicated
        self.conserved = conserved
        self.forward = forward
        self.secondHalf = secondHalf
        self.reordered = reordered
        self.reorderedRestored = reorderedRestored
    }
}

/// Frames offered in a stretch of a run, and how many of them the handler never processed.
package struct HalfFigures: Sendable, Codable, Equatable {
    package var offered: Int
    package var lost: Int

    package init(offered: Int, lost: Int) {
        self.offered = offered
        self.lost = lost
    }

    package var lossRate: Double { offered > 0 ? Double(lost) / Double(offered) : 0 }
}

/// What one run of the fwd scenario measured: at the sender, at the sink, and of the forwarder.
package struct ForwardFigures: Sendable, Codable, Equatable {
    /// The pace asked of the sender in frames/s (nil: flat out), and what it reached.
    package var targetRate: Double?
    package var sendRate: Double
    /// Numbered frames the sink captured, each counted once.
    package var delivered: Int
    package var duplicated: Int
    /// Frames that arrived after a later frame of their flow.
    package var reordered: Int
    /// Frames at the sink that were not the run's numbered, stamped frames.
    package var foreign: Int
    /// Frames per second at the sink, from its first capture to its last.
    package var deliveredRate: Double
    /// One-way latency over the delivered frames: sink capture time stamp minus send stamp.
    package var latencyP50Microseconds: Double
    package var latencyP99Microseconds: Double
    package var latencyMaxMicroseconds: Double
    /// CPU time of the forwarder's process over the run; nil for the kernel bridge (softirq work
    /// that cannot be told apart from the sender's).
    package var forwarderCpuSeconds: Double?
    /// Busy time of the whole machine over the same window (all cores: sender, sink, forwarder,
    /// the kernel, and anything else that ran).
    package var machineCpuSeconds: Double
    /// The forwarder's own counts, where it reports them (wirecap fwd's --stats-json).
    package var forwarder: ForwarderCounts?
    /// What else the forwarder said (netsniff-ng's closing counts).
    package var note: String?

    package init(
        targetRate: Double?, sendRate: Double, delivered: Int, duplicated: Int, reordered: Int, foreign: Int, deliveredRate: Double,
        latencyP50Microseconds: Double, latencyP99Microseconds: Double, latencyMaxMicroseconds: Double, forwarderCpuSeconds: Double?,
        machineCpuSeconds: Double, forwarder: ForwarderCounts? = nil, note: String? = nil
    ) {
        self.targetRate = targetRate
        self.sendRate = sendRate
        self.delivered = delivered
        self.duplicated = duplicated
        self.reordered = reordered
        self.foreign = foreign
        self.deliveredRate = deliveredRate
        self.latencyP50Microseconds = latencyP50Microseconds
        self.latencyP99Microseconds = latencyP99Microseconds
        self.latencyMaxMicroseconds = latencyMaxMicroseconds
        self.forwarderCpuSeconds = forwarderCpuSeconds
        self.machineCpuSeconds = machineCpuSeconds
        self.forwarder = forwarder
        self.note = note
    }

    /// Forwarder CPU per delivered frame, in ns.
    package var forwarderCpuNanosecondsPerFrame: Double? {
        forwarderCpuSeconds.map { delivered > 0 ? $0 / Double(delivered) * 1e9 : 0 }
    }
    package var machineCpuNanosecondsPerFrame: Double { delivered > 0 ? machineCpuSeconds / Double(delivered) * 1e9 : 0 }
}

/// wirecap fwd's totals and per-queue counts, from its `--stats-json`.
package struct ForwarderCounts: Sendable, Codable, Equatable {
    package var received: UInt64
    package var forwarded: UInt64
    package var captureDrops: UInt64
    package var txErrors: UInt64
    package var txRingFullWaits: UInt64
    package var inFlight: UInt64
    package var conserved: Bool
    package var queues: [QueueFigures]

    package var offloadedOut: UInt64 { queues.reduce(0) { $0 + $1.offloadedOut } }

    /// Reads the keys `wirecap fwd --stats-json` promises (ForwardReport: added to, never renamed).
    init(statsJSON data: Data) throws {
        struct Counts: Decodable {
            var received: UInt64
            var forwarded: UInt64
            var captureDrops: UInt64
            var txErrors: UInt64
            var txRingFullWaits: UInt64
            var inFlight: UInt64
        }
        struct Queue: Decodable {
            var queue: Int
            var counts: Counts
            var offloadedOut: UInt64
            var offloadedIn: UInt64
        }
        struct Report: Decodable {
            var queues: [Queue]
            var total: Counts
            var conserved: Bool
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let report: Report
        do {
            report = try decoder.decode(Report.self, from: data)
        } catch {
            throw LabError.forwarderFailed(engine: "wirecap fwd", reason: "its --stats-json is not what the lab reads: \(error)")
        }
        received = report.total.received
        forwarded = report.total.forwarded
        captureDrops = report.total.captureDrops
        txErrors = report.total.txErrors
        txRingFullWaits = report.total.txRingFullWaits
        inFlight = report.total.inFlight
        conserved = report.conserved
        queues = report.queues.map {
            QueueFigures(
                queue: $0.queue, received: $0.counts.received, captureDrops: $0.counts.captureDrops, deliveryDrops: 0,
                processed: $0.counts.forwarded, inFlight: $0.counts.inFlight, offloadedOut: $0.offloadedOut, offloadedIn: $0.offloadedIn,
                rolledOver: 0, cpuSeconds: 0)
        }
    }
}

/// A median with the spread of the repetitions.
package struct Spread: Sendable, Codable, Equatable {
    package var median: Double
    package var minimum: Double
    package var maximum: Double

    package init(_ values: [Double]) {
        let sorted = values.sorted()
        guard !sorted.isEmpty else {
            median = 0
            minimum = 0
            maximum = 0
            return
        }
        let mid = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        minimum = sorted.first!
        maximum = sorted.last!
    }
}

/// A point with all its repetitions and their summary.
package struct PointResult: Sendable, Codable, Equatable {
    package var point: ExperimentPoint
    package var runs: [RunResult]
    package var dropRate: Spread
    package var processed: Spread
    package var cpuNanosecondsPerPacket: Spread
    /// Per queue: median received, processed, capture and delivery drops.
    package var queues: [QueueSummary]
    /// Source: measured in the sandbox, or the discrete-event model.
    package var simulated: Bool

    package struct QueueSummary: Sendable, Codable, Equatable {
        package var queue: Int
        package var offered: Double
        package var received: Double
        package var processed: Double
        package var captureDrops: Double
        package var deliveryDrops: Double
        package var offloadedOut: Double
        package var offloadedIn: Double
        package var cpuSeconds: Double
    }

    package init(point: ExperimentPoint, runs: [RunResult], simulated: Bool = false) {
        self.point = point
        self.runs = runs
        self.simulated = simulated
        dropRate = Spread(runs.map(\.dropRate))
        processed = Spread(runs.map { Double($0.processed) })
        cpuNanosecondsPerPacket = Spread(runs.map(\.cpuNanosecondsPerPacket))
        let queueCount = runs.map(\.queues.count).max() ?? 0
        queues = (0..<queueCount).map { q in
            func median(_ f: (QueueFigures) -> UInt64) -> Double { Spread(runs.compactMap { $0.queues.count > q ? Double(f($0.queues[q])) : nil }).median }
            return QueueSummary(
                queue: q, offered: median(\.offered), received: median(\.received), processed: median(\.processed),
                captureDrops: median(\.captureDrops), deliveryDrops: median(\.deliveryDrops), offloadedOut: median(\.offloadedOut),
                offloadedIn: median(\.offloadedIn), cpuSeconds: Spread(runs.compactMap { $0.queues.count > q ? $0.queues[q].cpuSeconds : nil }).median)
        }
    }
}

extension PointResult {
    /// The loss over the second half of the runs (the steady state of a sustained point); nil
    /// when no run has it.
    package var secondHalfLoss: Spread? {
        let values = runs.compactMap { $0.secondHalf?.lossRate }
        return values.isEmpty ? nil : Spread(values)
    }

    package var reordered: Spread? {
        let values = runs.compactMap { $0.reordered.map(Double.init) }
        return values.isEmpty ? nil : Spread(values)
    }

    package var reorderedRestored: Spread? {
        let values = runs.compactMap { $0.reorderedRestored.map(Double.init) }
        return values.isEmpty ? nil : Spread(values)
    }

    /// What the point measures, with a flat-out sender at the rate its runs reached.
    package var regime: Regime {
        let rates = runs.filter { $0.sendSeconds > 0 }.map { Double($0.offered) / $0.sendSeconds }
        return point.regime(senderRate: rates.isEmpty ? 800_000 : Spread(rates).median)
    }

    /// The median and spread of one of the fwd scenario's figures over the runs that have it; nil
    /// when none has (a capture scenario, or the bridge's forwarder CPU).
    package func forwardSpread(_ figure: (ForwardFigures) -> Double?) -> Spread? {
        let values = runs.compactMap { $0.forward.flatMap(figure) }
        return values.isEmpty ? nil : Spread(values)
    }
}

/// Everything one `wirecap experiment` run produced.
package struct ExperimentResults: Sendable, Codable {
    package var started: String
    package var host: String
    package var cores: Int
    package var repeats: Int
    package var points: [PointResult]

    package init(started: String, host: String, cores: Int, repeats: Int, points: [PointResult]) {
        self.started = started
        self.host = host
        self.cores = cores
        self.repeats = repeats
        self.points = points
    }

    package func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// One row per point and queue, medians with the spread of the drop rate.
    package func csv() -> String {
        var lines = [
            "source,scenario,series,variable,value,engine,queues,pool_chunks,threshold,work_ns,work_mode,repeats,queue,offered,received,processed,capture_drops,delivery_drops,offloaded_out,offloaded_in,cpu_seconds,drop_rate_median,drop_rate_min,drop_rate_max,cpu_ns_per_packet_median,"
                + "send_rate_median,delivered_rate_median,forwarder_cpu_ns_per_frame_median,machine_cpu_ns_per_frame_median,reordered_median,latency_p50_us_median,latency_p99_us_median"
        ]
        // The capture scenarios' rows end with empty fwd columns.
        let noForwarding = String(repeating: ",", count: 7)
        for p in points {
            let s = p.point.setup
            if p.point.scenario == .fwd {
                // One row per point: the sink's figures are for the whole forwarder.
                func median(_ figure: (ForwardFigures) -> Double?, _ format: String) -> String {
                    p.forwardSpread(figure).map { String(format: format, $0.median) } ?? ""
                }
                func counts(_ value: (ForwarderCounts) -> UInt64) -> String {
                    let values = p.runs.compactMap { $0.forward?.forwarder.map { Double(value($0)) } }
                    return values.isEmpty ? "" : f(Spread(values).median)
                }
                let fields: [String] = [
                    "measured", p.point.scenario.rawValue, p.point.series, p.point.variable, ExperimentPoint.format(p.point.value),
                    s.engine.rawValue, String(s.queues), String(s.poolChunks), String(s.threshold), "0", p.point.workMode, String(p.runs.count),
                    "all", f(Spread(p.runs.map { Double($0.offered) }).median), counts(\.received), f(p.processed.median),
                    counts(\.captureDrops), "", counts(\.offloadedOut), "", median(\.forwarderCpuSeconds, "%.4f"),
                    String(format: "%.5f", p.dropRate.median), String(format: "%.5f", p.dropRate.minimum), String(format: "%.5f", p.dropRate.maximum),
                    median(\.forwarderCpuNanosecondsPerFrame, "%.1f"), median({ $0.sendRate }, "%.0f"), median({ $0.deliveredRate }, "%.0f"),
                    median(\.forwarderCpuNanosecondsPerFrame, "%.1f"), median({ $0.machineCpuNanosecondsPerFrame }, "%.1f"),
                    median({ Double($0.reordered) }, "%.0f"), median({ $0.latencyP50Microseconds }, "%.1f"), median({ $0.latencyP99Microseconds }, "%.1f"),
                ]
                lines.append(fields.joined(separator: ","))
                continue
            }
            for q in p.queues {
                let fields: [String] = [
                    p.simulated ? "simulated" : "measured", p.point.scenario.rawValue, p.point.series, p.point.variable,
                    ExperimentPoint.format(p.point.value), s.engine.rawValue, String(s.queues), String(s.poolChunks), String(s.threshold),
                    String(p.point.workNanoseconds), p.point.workMode, String(p.runs.count), String(q.queue), f(q.offered), f(q.received),
                    f(q.processed), f(q.captureDrops), f(q.deliveryDrops), f(q.offloadedOut), f(q.offloadedIn), String(format: "%.4f", q.cpuSeconds),
                    String(format: "%.5f", p.dropRate.median), String(format: "%.5f", p.dropRate.minimum),
                    String(format: "%.5f", p.dropRate.maximum), String(format: "%.1f", p.cpuNanosecondsPerPacket.median),
                ]
                lines.append(fields.joined(separator: ",") + noForwarding)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func f(_ value: Double) -> String { String(Int(value.rounded())) }
}
