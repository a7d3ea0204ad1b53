import Foundation

/// The human-readable summary: what was run, and per scenario a table of medians with spreads.
package struct Report {
    package let results: ExperimentResults
    package let plots: [String]
    package let notes: [String]

    package init(results: ExperimentResults, plots: [String], notes: [String]) {
        self.results = results
        self.plots = plots
        self.notes = notes
    }

    package func markdown() -> String {
        var out = "# wirecap drop-rate experiment\n\n"
        out += "Run \(results.started) on \(results.host) (\(results.cores) cores); each point repeated \(results.repeats) times, "
        out += "figures are medians with the min-max spread. \"Dropped\" is every frame the sender handed to the kernel that the "
        out += "handler never processed (capture drops, delivery drops, and anything lost before the ring).\n\n"
        for note in notes { out += "- \(note)\n" }
        if !notes.isEmpty { out += "\n" }
        for scenario in ScenarioKind.allCases {
            for simulated in [false, true] {
                let points = results.points.filter { $0.point.scenario == scenario && $0.simulated == simulated }
                guard let first = points.first else { continue }
                out += "## \(scenario.rawValue)\(simulated ? " (discrete-event model)" : "")\n\n"
                out += Self.describe(first.point) + "\n\n"
                out += "| series | \(first.point.variable) | engine | offered | processed | dropped (median, min-max) | capture drops | delivery drops | CPU ns/packet | per queue processed / dropped |\n"
                out += "|---|---|---|---|---|---|---|---|---|---|\n"
                for p in points {
                    let offered = Spread(p.runs.map { Double($0.offered) }).median
                    let captureDrops = Spread(p.runs.map { Double($0.captureDrops) }).median
                    let deliveryDrops = Spread(p.runs.map { Double($0.deliveryDrops) }).median
                    let perQueue = p.queues.map { "q\($0.queue): \(Int($0.processed)) / \(Int($0.captureDrops + $0.deliveryDrops))" }.joined(separator: ", ")
                    out += "| \(p.point.series) | \(ExperimentPoint.format(p.point.value)) | \(Plotter.shortName(p.point)) | \(Int(offered)) | \(Int(p.processed.median)) | "
                    out += String(format: "%.2f %% (%.2f-%.2f)", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
                    out += " | \(Int(captureDrops)) | \(Int(deliveryDrops)) | \(simulated ? "-" : String(format: "%.0f", p.cpuNanosecondsPerPacket.median)) | \(perQueue) |\n"
                }
                out += "\n"
            }
        }
        out += agreement()
        if !plots.isEmpty {
            out += "## Plots\n\n"
            for plot in plots { out += "![\(plot)](\(plot))\n\n" }
        }
        return out
    }

    /// Measured drop rates next to the model's for the same points, and how far apart they are.
    func agreement() -> String {
        let measured = results.points.filter { !$0.simulated }
        let model = results.points.filter(\.simulated)
        var rows: [(String, Double, Double)] = []
        for m in measured {
            if let s = model.first(where: { $0.point == m.point }) { rows.append((m.point.label, m.dropRate.median, s.dropRate.median)) }
        }
        guard !rows.isEmpty else { return "" }
        var out = "## Model against measurement\n\n"
        let differences = rows.map { abs($0.1 - $0.2) * 100 }
        let mean = differences.reduce(0, +) / Double(differences.count)
        let within5 = differences.filter { $0 <= 5 }.count
        out += String(format: "Over %d points the model's drop rate is %.1f percentage points from the measured median on average; %d of %d points agree within 5 points.\n\n", rows.count, mean, within5, rows.count)
        out += "| point | measured | model |\n|---|---|---|\n"
        for row in rows { out += String(format: "| %@ | %.2f %% | %.2f %% |\n", row.0, row.1 * 100, row.2 * 100) }
        return out + "\n"
    }

    static func describe(_ p: ExperimentPoint) -> String {
        let t = p.traffic
        // The ids scenario sweeps the rate: each row says its own.
        let rate = p.scenario == .ids ? "at the rate of each row" : t.rate.map { "\(Int($0)) frames/s" } ?? "as fast as the sender goes"
        let what = t.tracePath.map { "frames of \(URL(fileURLWithPath: $0).lastPathComponent), looped" } ?? "\(t.size)-byte frames over \(t.flows) flows"
        let elephant = t.elephantPercent > 0 ? ", \(t.elephantPercent) % of them in one flow" : ""
        let ring = "\(p.setup.blockCount) x \(p.setup.blockSize / 1024) KiB ring per queue"
        let work =
            p.workMode == ExperimentPoint.idsWorkMode
            ? "the example IDS (wirecap-ids's inspector: flow table and \(ExperimentPoint.idsSignatures.count) byte signatures) as the work in every engine"
            : "\(p.workNanoseconds) ns of \(p.workMode)-mode work per packet in every engine"
        return "\(t.packets) \(what)\(elephant), \(rate); \(p.setup.queues) queue(s) with hash fanout, \(ring); \(work)."
    }
}
