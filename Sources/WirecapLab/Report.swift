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
                if scenario == .fwd {
                    out += Self.forwarding(points)
                    continue
                }
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

    /// The fwd scenario's table: per forwarder and load, what the sink received and how late.
    static func forwarding(_ points: [PointResult]) -> String {
        guard let first = points.first?.point else { return "" }
        let t = first.traffic
        var out = "## fwd\n\n"
        out += "\(t.packets) numbered \(t.size)-byte frames over \(t.flows) flows, sender -> forwarder -> sink (three namespaces, veth), "
        out += "each frame stamped with CLOCK_REALTIME when its batch of \(ForwardLab.senderBatch) is sent; the sink (wirecap's engine, one "
        out += "queue) takes the kernel's capture time stamp (CLOCK_REALTIME, the same clock in every namespace). \"flat out\": as fast as "
        out += "the sender goes; \"half rate\": paced at half the median rate it reached flat out through the bridge. wirecap fwd: "
        out += "\(first.setup.queues) queues, rings of \(ForwardLab.blockCount) x \(ForwardLab.blockSize / 1024) KiB blocks with a "
        out += "\(ForwardLab.blockTimeoutMilliseconds) ms block timeout, R pool chunks per queue; netsniff-ng: one socket, the same ring "
        out += "size (`-S`). Forwarder CPU: the forwarder process's threads (scheduler run time) per delivered frame; none for the "
        out += "bridge, whose work is softirq on the receiving core (on veth inside the sender's send call). Machine CPU: busy "
        out += "time of all cores (/proc/stat) per delivered frame: sender, sink and forwarder together. Reordered: frames that "
        out += "arrived after a later frame of their flow. Medians of the runs, min-max in brackets.\n\n"
        out += "| load | engine | sent | send rate | delivered | loss (median, min-max) | delivered rate | forwarder CPU ns/frame | machine CPU ns/frame | reordered | latency p50 us | latency p99 us |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        func cell(_ spread: Spread?, _ format: String) -> String {
            guard let spread else { return "n/a" }
            return String(format: format, spread.median) + (spread.minimum == spread.maximum ? "" : String(format: " (" + format + "-" + format + ")", spread.minimum, spread.maximum))
        }
        var notes: [String] = []
        for p in points {
            let sent = Spread(p.runs.map { Double($0.offered) })
            out += "| \(p.point.series) | \(Plotter.shortName(p.point)) | \(Int(sent.median)) | \(cell(p.forwardSpread { $0.sendRate }, "%.0f")) | "
            out += "\(Int(p.processed.median)) | " + String(format: "%.2f %% (%.2f-%.2f)", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            out += " | \(cell(p.forwardSpread { $0.deliveredRate }, "%.0f")) | \(cell(p.forwardSpread(\.forwarderCpuNanosecondsPerFrame), "%.0f")) | "
            out += "\(cell(p.forwardSpread { $0.machineCpuNanosecondsPerFrame }, "%.0f")) | \(cell(p.forwardSpread { Double($0.reordered) }, "%.0f")) | "
            out += "\(cell(p.forwardSpread { $0.latencyP50Microseconds }, "%.0f")) | \(cell(p.forwardSpread { $0.latencyP99Microseconds }, "%.0f")) |\n"
            for (i, run) in p.runs.enumerated() {
                if let note = run.forward?.note { notes.append("\(p.point.label), run \(i + 1): \(note)") }
                if let foreign = run.forward?.foreign, foreign > 0 {
                    notes.append("\(p.point.label), run \(i + 1): \(foreign) frames at the sink that were not the run's numbered frames")
                }
                if let counts = run.forward?.forwarder, counts.captureDrops > 0 || counts.offloadedOut > 0 || counts.txErrors > 0 {
                    notes.append("\(p.point.label), run \(i + 1): forwarder received \(counts.received), forwarded \(counts.forwarded), capture drops \(counts.captureDrops), TX errors \(counts.txErrors), chunks offloaded \(counts.offloadedOut)")
                }
            }
        }
        out += "\n"
        for note in notes { out += "- \(note)\n" }
        return out + (notes.isEmpty ? "" : "\n")
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
