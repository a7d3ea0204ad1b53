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

    package var processed: UInt64 { queues.reduce(0) { $0 + $1.processed } }
    package var captureDrops: UInt64 { queues.reduce(0) { $0 + $1.captureDrops } }
    package var deliveryDrops: UInt64 { queues.reduce(0) { $0 + $1.deliveryDrops } }
    /// Share of offered frames the handler never processed.
    package var dropRate: Double { offered > 0 ? max(0, Double(offered) - Double(processed)) / Double(offered) : 0 }
    package var cpuNanosecondsPerPacket: Double { processed > 0 ? cpuSeconds / Double(processed) * 1e9 : 0 }
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
            "source,scenario,series,variable,value,engine,queues,pool_chunks,threshold,work_ns,work_mode,repeats,queue,offered,received,processed,capture_drops,delivery_drops,offloaded_out,offloaded_in,cpu_seconds,drop_rate_median,drop_rate_min,drop_rate_max,cpu_ns_per_packet_median"
        ]
        for p in points {
            let s = p.point.setup
            for q in p.queues {
                let fields: [String] = [
                    p.simulated ? "simulated" : "measured", p.point.scenario.rawValue, p.point.series, p.point.variable,
                    ExperimentPoint.format(p.point.value), s.engine.rawValue, String(s.queues), String(s.poolChunks), String(s.threshold),
                    String(p.point.workNanoseconds), p.point.workMode, String(p.runs.count), String(q.queue), f(q.offered), f(q.received),
                    f(q.processed), f(q.captureDrops), f(q.deliveryDrops), f(q.offloadedOut), f(q.offloadedIn), String(format: "%.4f", q.cpuSeconds),
                    String(format: "%.5f", p.dropRate.median), String(format: "%.5f", p.dropRate.minimum),
                    String(format: "%.5f", p.dropRate.maximum), String(format: "%.1f", p.cpuNanosecondsPerPacket.median),
                ]
                lines.append(fields.joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func f(_ value: Double) -> String { String(Int(value.rounded())) }
}
